import MarketData
import NIOCore
import WireJSON

/// Turns the JSON body an OpenAlgo adapter published into a ``Tick`` that encodes back to the
/// fields the adapter sent.
///
/// Keys the agent models (`ltp`, `ltt`, `timestamp`, `open`, ..., `depth`) fill the tick's fields
/// when their value fits the field exactly; every other key, and a modelled key whose value does
/// not fit (a `timestamp` beyond 64 bits, a float `volume`, a `null`, a book with extra keys),
/// is kept unchanged in ``Tick/extraFields``. `symbol`, `exchange` and `mode` come from the topic,
/// as the reference's envelope takes them.
package enum ZeroMQTickDecoder {
    /// Why a body was not turned into a tick.
    package enum Failure: Error, Sendable, Equatable {
        case invalidJSON(JSONParseError)
        /// The body parsed, but is not a JSON object.
        case notAnObject
    }

    /// Reads the body straight from its bytes (``AdapterTickBodyScanner``) and, for a body the
    /// scanner does not vouch for, through the generic parser, which also names what is wrong.
    package static func tick(instrument: Instrument, mode: SubscriptionMode, body: ByteBuffer) throws(Failure) -> Tick {
        if let tick = body.withUnsafeReadableBytes({ AdapterTickBodyScanner.tick(instrument: instrument, mode: mode, body: $0) }) {
            return tick
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(body)
        } catch {
            throw .invalidJSON(error)
        }
        guard case .object(let object) = value else { throw .notAnObject }
        return self.tick(instrument: instrument, mode: mode, fields: object)
    }

    /// The tick for an already parsed body.
    package static func tick(instrument: Instrument, mode: SubscriptionMode, fields object: JSONObject) -> Tick {
        var assembly = AdapterTickAssembly(instrument: instrument, mode: mode)
        for (key, value) in object.entries {
            if let modelled = AdapterTickKey(key) {
                assembly.take(modelled, value)
            } else {
                assembly.keep(key, value)
            }
        }
        return assembly.finish()
    }
}
