import BrokerKit
import Logging
import MarketData
import NIOCore

/// SmartAPI WebSocket 2.0 as a ``FeedSupervisor`` speaks it: JSON subscribe and unsubscribe
/// requests by mode and exchange type, one binary packet per frame decoded into ticks for the
/// instrument and mode each token is streamed at, and the text `pong` that answers the client's
/// `ping` (the supervisor counts it as data, so an idle market does not look like a stall).
///
/// SmartAPI keeps a subscription per token *and mode* (LTP, Quote and SnapQuote of one token are
/// three of the session's 1000). The agent streams one mode per instrument, so a mode change is
/// sent as an unsubscribe at the old mode followed by a subscribe at the new one; the budget then
/// counts each instrument once.
///
/// A Depth subscription the adapter served twenty levels deep (``FeedSubscription/depth`` 20)
/// uses SmartAPI's Depth-20 mode (4); any other Depth uses SnapQuote (3), five levels.
package struct AngelOneFeedCodec: BrokerFeedCodec {
    private struct TokenKey: Hashable {
        var exchangeType: UInt8
        var token: String
    }

    private struct Streaming {
        var instrument: Instrument
        var mode: SubscriptionMode
        var angelMode: AngelOneMode
    }

    private let master: SymbolMaster
    private let logger: Logger
    private var streaming: [TokenKey: Streaming] = [:]
    private var requestCount: UInt64 = 0

    /// - Parameter master: resolves the hub's instruments to SmartAPI tokens; instruments it does
    ///   not know are left out of requests (the adapter refuses them before they get here).
    package init(master: SymbolMaster, logger: Logger) {
        self.master = master
        self.logger = logger
    }

    /// The SmartAPI mode that serves `mode` at `depth` levels.
    package static func angelMode(for mode: SubscriptionMode, depth: Int) -> AngelOneMode {
        mode == .depth && depth >= AngelOneDepth20.levelCount ? .depth20 : AngelOneMode(mode)
    }

    /// A new connection streams nothing until the replay that follows subscribes it again.
    package mutating func openingMessages() -> [WebSocketMessage] {
        self.streaming.removeAll(keepingCapacity: true)
        return []
    }

    package mutating func messages(for batch: SubscriptionBatch) -> [WebSocketMessage] {
        var stops: [AngelOneMode: [(exchangeType: AngelOneExchangeType, token: String)]] = [:]
        var starts: [(exchangeType: AngelOneExchangeType, token: String)] = []
        var startMode = AngelOneMode.ltp
        for instrument in batch.instruments {
            guard let entry = self.master.entry(for: instrument), let exchangeType = AngelOneExchangeType(rawValue: entry.feedSegment) else {
                continue
            }
            let key = TokenKey(exchangeType: entry.feedSegment, token: entry.token)
            let previous = self.streaming[key]
            switch batch.change {
            case .subscribe(let mode, let depth):
                let angelMode = Self.angelMode(for: mode, depth: depth)
                startMode = angelMode
                if let previous, previous.angelMode != angelMode {
                    stops[previous.angelMode, default: []].append((exchangeType, entry.token))
                }
                if previous?.angelMode != angelMode { starts.append((exchangeType, entry.token)) }
                self.streaming[key] = Streaming(instrument: instrument, mode: mode, angelMode: angelMode)
            case .unsubscribe:
                guard let previous else { continue }
                stops[previous.angelMode, default: []].append((exchangeType, entry.token))
                self.streaming[key] = nil
            }
        }
        var messages: [WebSocketMessage] = []
        for (mode, tokens) in stops.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let id = self.nextCorrelationID(prefix: "u")
            messages.append(.text(AngelOneRequest.unsubscribe(mode: mode, groups: AngelOneRequest.groups(tokens), correlationID: id)))
        }
        if !starts.isEmpty {
            let id = self.nextCorrelationID(prefix: "s")
            messages.append(.text(AngelOneRequest.subscribe(mode: startMode, groups: AngelOneRequest.groups(starts), correlationID: id)))
        }
        return messages
    }

    package mutating func decode(_ message: WebSocketMessage, into sink: any FeedEventSink) -> BrokerMessageOutcome {
        switch message {
        case .binary(let buffer):
            let packet: AngelOnePacket
            do {
                packet = try AngelOneTickDecoder.decode(frame: buffer)
            } catch {
                self.logger.warning("skipping a malformed SmartAPI frame", metadata: ["error": "\(error)", "bytes": "\(buffer.readableBytes)"])
                return .accepted
            }
            let header = packet.header
            guard let streaming = self.streaming[TokenKey(exchangeType: header.exchangeType, token: header.token)] else {
                return .accepted
            }
            sink.receive(
                AngelOneTickNormalizer.tick(
                    from: packet,
                    instrument: streaming.instrument,
                    mode: streaming.mode,
                    receivedAt: WallClock.epochMilliseconds()
                )
            )
        case .text(let text):
            if text == "pong" { return .accepted }
            // SmartAPI's error replies: {"correlationID":…,"errorCode":"E1001|E1002","errorMessage":…};
            // they concern one request, not the session.
            if text.contains("\"errorCode\"") {
                self.logger.warning("SmartAPI refused a request", metadata: ["reply": "\(text.prefix(500))"])
            } else {
                self.logger.debug("SmartAPI text message", metadata: ["message": "\(text.prefix(200))"])
            }
        }
        return .accepted
    }

    /// SmartAPI answers bad tokens with HTTP 401 and an `x-error-message`; the same tokens will
    /// be refused again, so the feed fails with that message instead of retrying.
    package func shouldRetry(after error: BrokerWebSocketError) -> Bool {
        !error.isAuthenticationFailure
    }

    /// Ten characters, as SmartAPI's documentation asks of a correlationID.
    private mutating func nextCorrelationID(prefix: Character) -> String {
        self.requestCount &+= 1
        let digits = String(self.requestCount % 1_000_000_000)
        return String(prefix) + String(repeating: "0", count: 9 - digits.count) + digits
    }
}
