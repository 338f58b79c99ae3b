import BrokerKit
import FakeBrokers
import MarketData
import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket

/// Collects what a feed reports.
final class RecordingSink: FeedEventSink {
    let ticks = NIOLockedValueBox<[Tick]>([])
    let states = NIOLockedValueBox<[FeedConnectionState]>([])

    func receive(_ tick: Tick) {
        self.ticks.withLockedValue { $0.append(tick) }
    }

    func feedStateChanged(_ state: FeedConnectionState) {
        self.states.withLockedValue { $0.append(state) }
    }

    var reportedStates: [FeedConnectionState] { self.states.withLockedValue { $0 } }
    var receivedTicks: [Tick] { self.ticks.withLockedValue { $0 } }
}

/// Collects what a ``BrokerWebSocketConnection`` delivers.
final class RecordingDelegate: BrokerWebSocketDelegate {
    struct Record: Sendable {
        var messages: [WebSocketMessage] = []
        var controlFrames: [WebSocketOpcode] = []
        var closed = false
        var closeError: BrokerWebSocketError?
    }

    let record = NIOLockedValueBox(Record())

    var snapshot: Record { self.record.withLockedValue { $0 } }

    func webSocket(_ connection: BrokerWebSocketConnection, didReceive message: WebSocketMessage) {
        self.record.withLockedValue { $0.messages.append(message) }
    }

    func webSocket(_ connection: BrokerWebSocketConnection, didReceiveControlFrame opcode: WebSocketOpcode) {
        self.record.withLockedValue { $0.controlFrames.append(opcode) }
    }

    func webSocket(_ connection: BrokerWebSocketConnection, didCloseWith error: BrokerWebSocketError?) {
        self.record.withLockedValue {
            precondition(!$0.closed, "close reported twice")
            $0.closed = true
            $0.closeError = error
        }
    }
}

/// A made-up text protocol standing in for a broker's codec:
/// - out: `sub <mode> <depth> NSE:A,NSE:B`, `unsub NSE:A`, and `hello` when a connection opens;
/// - in: `tick NSE:A 101.5` becomes an LTP tick, `bye <reason>` ends the session (no retry),
///   anything else is ignored.
struct LineCodec: BrokerFeedCodec {
    var greets = false

    func openingMessages() -> [WebSocketMessage] {
        self.greets ? [.text("hello")] : []
    }

    func messages(for batch: SubscriptionBatch) -> [WebSocketMessage] {
        let instruments = batch.instruments.map(\.description).joined(separator: ",")
        switch batch.change {
        case .subscribe(let mode, let depth): return [.text("sub \(mode.rawValue) \(depth) \(instruments)")]
        case .unsubscribe: return [.text("unsub \(instruments)")]
        }
    }

    func decode(_ message: WebSocketMessage, into sink: any FeedEventSink) -> BrokerMessageOutcome {
        guard case .text(let text) = message else { return .accepted }
        let words = text.split(separator: " ")
        if words.first == "bye" { return .closeConnection(reason: words.dropFirst().joined(separator: " "), retry: false) }
        guard words.count == 3, words[0] == "tick" else { return .accepted }
        let parts = words[1].split(separator: ":")
        var tick = Tick(instrument: Instrument(exchange: String(parts[0]), symbol: String(parts[1])), mode: .ltp)
        tick.ltp = Double(words[2])
        sink.receive(tick)
        return .accepted
    }

    func shouldRetry(after error: BrokerWebSocketError) -> Bool {
        !error.isAuthenticationFailure
    }
}
