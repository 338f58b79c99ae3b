import BrokerKit
import Logging
import MarketData
import NIOCore

/// Dhan's Live Market Feed v2 (the 5-level socket) as a ``FeedSupervisor`` speaks it: JSON
/// requests by RequestCode (Ticker 15, Quote 17, Full 21; unsubscribe is the code plus one), at
/// most 100 instruments each, and binary frames of packets back to back decoded into ticks for
/// the instrument and mode each security is streamed at.
///
/// Dhan keeps a subscription per instrument and request code, so a mode change is sent as an
/// unsubscribe at the old code followed by a subscribe at the new one. A disconnect packet (code
/// 50) ends the session; see ``DhanSession/outcome(forDisconnect:)``.
package struct DhanFeedCodec: BrokerFeedCodec {
    private struct Streaming {
        var instrument: Instrument
        var mode: SubscriptionMode
        var feedMode: DhanFeedMode
    }

    private let master: SymbolMaster
    private let logger: Logger
    private var streaming: [DhanSecurityKey: Streaming] = [:]

    /// - Parameter master: resolves the hub's instruments to Dhan segments and security ids;
    ///   instruments it does not know are left out of requests.
    package init(master: SymbolMaster, logger: Logger) {
        self.master = master
        self.logger = logger
    }

    /// A new connection streams nothing until the replay that follows subscribes it again.
    package mutating func openingMessages() -> [WebSocketMessage] {
        self.streaming.removeAll(keepingCapacity: true)
        return []
    }

    package mutating func messages(for batch: SubscriptionBatch) -> [WebSocketMessage] {
        var stops: [DhanFeedMode: [DhanInstrumentReference]] = [:]
        var starts: [DhanInstrumentReference] = []
        var startMode = DhanFeedMode.ticker
        for instrument in batch.instruments {
            guard let (key, reference) = DhanSecurityKey.resolve(instrument, in: self.master) else { continue }
            let previous = self.streaming[key]
            switch batch.change {
            case .subscribe(let mode, _):
                let feedMode = DhanFeedMode(mode)
                startMode = feedMode
                if let previous, previous.feedMode != feedMode { stops[previous.feedMode, default: []].append(reference) }
                if previous?.feedMode != feedMode { starts.append(reference) }
                self.streaming[key] = Streaming(instrument: instrument, mode: mode, feedMode: feedMode)
            case .unsubscribe:
                guard let previous else { continue }
                stops[previous.feedMode, default: []].append(reference)
                self.streaming[key] = nil
            }
        }
        var messages: [WebSocketMessage] = []
        for (mode, references) in stops.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            messages += DhanRequest.unsubscribeMessages(references, mode: mode).map { .text($0) }
        }
        messages += DhanRequest.subscribeMessages(starts, mode: startMode).map { .text($0) }
        return messages
    }

    package mutating func decode(_ message: WebSocketMessage, into sink: any FeedEventSink) -> BrokerMessageOutcome {
        guard case .binary(let buffer) = message else {
            self.logger.debug("Dhan text message", metadata: ["message": "\(message)"])
            return .accepted
        }
        let frame: DhanFrame
        do {
            frame = try DhanTickDecoder.decode(frame: buffer)
        } catch {
            self.logger.warning("skipping a malformed Dhan frame", metadata: ["error": "\(error)", "bytes": "\(buffer.readableBytes)"])
            return .accepted
        }
        let receivedAt = WallClock.epochMilliseconds()
        for packet in frame {
            let header = packet.header
            if case .disconnect(_, let reason) = packet { return DhanSession.outcome(forDisconnect: reason) }
            guard let streaming = self.streaming[DhanSecurityKey(segment: header.exchangeSegment, securityID: header.securityID)],
                let tick = DhanTickNormalizer.tick(from: packet, instrument: streaming.instrument, mode: streaming.mode, receivedAt: receivedAt)
            else { continue }
            sink.receive(tick)
        }
        return .accepted
    }

    /// A refused upgrade with 401/403 means the client id or token is wrong or expired; the
    /// same credentials will be refused again.
    package func shouldRetry(after error: BrokerWebSocketError) -> Bool {
        !error.isAuthenticationFailure
    }
}

/// Dhan's 20-level depth socket as a ``FeedSupervisor`` speaks it: RequestCode 23 to subscribe
/// and 25 to unsubscribe, at most 50 instruments each, and bid and ask packets that
/// ``DhanDepthBookAssembler`` pairs into one Depth tick per book (no prices besides the book, as
/// that socket sends none).
package struct DhanDepthFeedCodec: BrokerFeedCodec {
    private let master: SymbolMaster
    private let logger: Logger
    private var streaming: [DhanSecurityKey: Instrument] = [:]
    private var books = DhanDepthBookAssembler()

    package init(master: SymbolMaster, logger: Logger) {
        self.master = master
        self.logger = logger
    }

    /// A new connection streams nothing, and half-received books from the old one are dropped.
    package mutating func openingMessages() -> [WebSocketMessage] {
        self.streaming.removeAll(keepingCapacity: true)
        self.books = DhanDepthBookAssembler()
        return []
    }

    package mutating func messages(for batch: SubscriptionBatch) -> [WebSocketMessage] {
        var references: [DhanInstrumentReference] = []
        for instrument in batch.instruments {
            guard let (key, reference) = DhanSecurityKey.resolve(instrument, in: self.master) else { continue }
            switch batch.change {
            case .subscribe:
                if self.streaming.updateValue(instrument, forKey: key) == nil { references.append(reference) }
            case .unsubscribe:
                guard self.streaming.removeValue(forKey: key) != nil else { continue }
                self.books.discard(exchangeSegment: key.segment, securityID: key.securityID)
                references.append(reference)
            }
        }
        guard !references.isEmpty else { return [] }
        switch batch.change {
        case .subscribe: return DhanRequest.depthSubscribeMessages(references).map { .text($0) }
        case .unsubscribe: return DhanRequest.depthUnsubscribeMessages(references).map { .text($0) }
        }
    }

    package mutating func decode(_ message: WebSocketMessage, into sink: any FeedEventSink) -> BrokerMessageOutcome {
        guard case .binary(let buffer) = message else {
            self.logger.debug("Dhan depth text message", metadata: ["message": "\(message)"])
            return .accepted
        }
        let frame: DhanDepthFrame
        do {
            frame = try DhanDepthDecoder.decode(frame: buffer)
        } catch {
            self.logger.warning("skipping a malformed Dhan depth frame", metadata: ["error": "\(error)", "bytes": "\(buffer.readableBytes)"])
            return .accepted
        }
        for packet in frame {
            if case .disconnect(_, _, let reason) = packet { return DhanSession.outcome(forDisconnect: reason) }
            guard let book = self.books.receive(packet),
                let instrument = self.streaming[DhanSecurityKey(segment: book.exchangeSegment, securityID: book.securityID)]
            else { continue }
            sink.receive(DhanTickNormalizer.tick(fromTwentyLevelDepth: book.depth, instrument: instrument, receivedAt: WallClock.epochMilliseconds()))
        }
        return .accepted
    }

    package func shouldRetry(after error: BrokerWebSocketError) -> Bool {
        !error.isAuthenticationFailure
    }
}

/// How Dhan's packets name an instrument: the segment byte and the security id.
struct DhanSecurityKey: Hashable {
    var segment: UInt8
    var securityID: UInt32

    /// The key packets carry and the reference requests use for `instrument`, if the master
    /// knows it on a segment Dhan streams.
    static func resolve(_ instrument: Instrument, in master: SymbolMaster) -> (DhanSecurityKey, DhanInstrumentReference)? {
        guard let entry = master.entry(for: instrument), let segment = DhanExchangeSegment(rawValue: entry.feedSegment),
            let securityID = UInt32(entry.token)
        else { return nil }
        return (
            DhanSecurityKey(segment: entry.feedSegment, securityID: securityID),
            DhanInstrumentReference(exchangeSegment: segment, securityID: entry.token)
        )
    }
}

/// What Dhan's disconnect packet means for the session.
package enum DhanSession {
    /// Reason codes another attempt cannot fix (spec §3.1): 805 too many connections (other
    /// programs hold Dhan's five), 806 no Data API subscription, 807 token expired, 808 client
    /// id invalid, 809 authentication failed. Retrying them would only repeat the refusal, so
    /// the feed fails and says why; other codes reconnect with backoff.
    package static let fatalReasons: ClosedRange<UInt16> = 805...809

    /// The supervisor's outcome for a disconnect packet with `reason`.
    package static func outcome(forDisconnect reason: UInt16) -> BrokerMessageOutcome {
        var message = "Dhan ended the session: \(DhanTickDecoder.disconnectReason(reason)) (code \(reason))"
        if reason == 805 { message += "; close other Dhan market-feed connections (Dhan allows 5 per client) and connect again" }
        return .closeConnection(reason: message, retry: !self.fatalReasons.contains(reason))
    }
}
