import MarketData

/// One row of a broker's instrument master, resolved to OpenAlgo's naming.
///
/// It carries both directions an adapter needs: what to put in a subscribe request (``token``,
/// ``brokerExchange``) and how to recognise the instrument in a binary packet (``feedSegment`` with
/// ``token``).
package struct BrokerInstrument: Sendable, Hashable {
    /// The instrument as OpenAlgo clients name it (`NFO`, `NIFTY28DEC2425000CE`).
    package var instrument: Instrument
    /// The broker's identifier in requests and packets, as text (`738561`, `2885`, `99926000`).
    package var token: String
    /// The broker's exchange or segment name (`NSE` for Kite and Angel, `NSE_EQ`/`IDX_I` for Dhan).
    package var brokerExchange: String
    /// The segment code packets carry next to the token: Kite's token low byte, Angel's exchange
    /// type, Dhan's exchange segment byte.
    package var feedSegment: UInt8
    /// The broker's own trading symbol, kept for logs and order APIs.
    package var brokerSymbol: String
    /// `EQ`, `FUT`, `CE`, `PE`, `INDEX` or the broker's own type name.
    package var instrumentType: String
    package var lotSize: Int

    package init(
        instrument: Instrument,
        token: String,
        brokerExchange: String,
        feedSegment: UInt8,
        brokerSymbol: String,
        instrumentType: String,
        lotSize: Int
    ) {
        self.instrument = instrument
        self.token = token
        self.brokerExchange = brokerExchange
        self.feedSegment = feedSegment
        self.brokerSymbol = brokerSymbol
        self.instrumentType = instrumentType
        self.lotSize = lotSize
    }
}

/// Maps OpenAlgo instruments to a broker's tokens and back, built from the broker's daily master.
///
/// Both directions are dictionary lookups because masters hold over 100 000 rows and the reverse
/// direction runs for incoming packets. When two rows resolve to the same OpenAlgo instrument or the
/// same token, the first one wins, as a database lookup on the reference's table would return it;
/// ``duplicateCount`` says how many rows lost so a surprising master shows up in logs.
package struct SymbolMaster: Sendable {
    private struct TokenKey: Hashable {
        var segment: UInt8
        var token: String
    }

    private var byInstrument: [Instrument: BrokerInstrument] = [:]
    private var byToken: [TokenKey: Instrument] = [:]
    package private(set) var duplicateCount = 0

    package init() {}

    package init(_ entries: some Sequence<BrokerInstrument>) {
        for entry in entries { self.insert(entry) }
    }

    package var count: Int { self.byInstrument.count }

    package mutating func insert(_ entry: BrokerInstrument) {
        if self.byInstrument[entry.instrument] == nil {
            self.byInstrument[entry.instrument] = entry
        } else {
            self.duplicateCount += 1
        }
        let key = TokenKey(segment: entry.feedSegment, token: entry.token)
        if self.byToken[key] == nil {
            self.byToken[key] = entry.instrument
        }
    }

    /// The broker's row for an OpenAlgo instrument; `nil` means the reference's "Symbol not found" ack.
    package func entry(for instrument: Instrument) -> BrokerInstrument? {
        self.byInstrument[instrument]
    }

    /// The broker's row for a token seen in a packet of `feedSegment`.
    package func entry(feedSegment: UInt8, token: String) -> BrokerInstrument? {
        guard let instrument = self.byToken[TokenKey(segment: feedSegment, token: token)] else { return nil }
        return self.byInstrument[instrument]
    }
}

/// A master file the parser cannot use at all (a missing column, an empty file). Rows that are merely
/// odd (unknown exchange, unparsable numbers) are skipped instead, as the reference drops them.
package struct SymbolMasterError: Error, Sendable, Hashable, CustomStringConvertible {
    package var message: String

    package init(_ message: String) {
        self.message = message
    }

    package var description: String { self.message }
}
