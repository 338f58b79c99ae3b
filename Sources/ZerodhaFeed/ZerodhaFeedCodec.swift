import BrokerKit
import Logging
import MarketData
import NIOCore

/// Kite Ticker as a ``FeedSupervisor`` speaks it: `subscribe` + `mode` JSON per batch,
/// `unsubscribe` when the hub lets go, binary frames decoded into ticks for the instrument and
/// mode each token is subscribed at. Heartbeats (1-byte frames) carry no ticks, but the
/// supervisor counts every message as data, so they keep the stall detector quiet while the
/// market is closed.
///
/// Kite keeps no subscriptions across connections; the supervisor replays them through
/// ``messages(for:)``, which is also where this codec learns which token means which instrument.
package struct ZerodhaFeedCodec: BrokerFeedCodec {
    private let master: SymbolMaster
    private let logger: Logger
    private var subscribed: [UInt32: (instrument: Instrument, mode: SubscriptionMode)] = [:]

    /// - Parameter master: resolves the hub's instruments to Kite tokens; instruments it does not
    ///   know are left out of the messages (the adapter refuses them before they get here).
    package init(master: SymbolMaster, logger: Logger) {
        self.master = master
        self.logger = logger
    }

    package mutating func messages(for batch: SubscriptionBatch) -> [WebSocketMessage] {
        var tokens: [UInt32] = []
        tokens.reserveCapacity(batch.instruments.count)
        for instrument in batch.instruments {
            guard let entry = self.master.entry(for: instrument), let token = UInt32(entry.token) else { continue }
            tokens.append(token)
            switch batch.change {
            case .subscribe(let mode, _): self.subscribed[token] = (instrument, mode)
            case .unsubscribe: self.subscribed[token] = nil
            }
        }
        guard !tokens.isEmpty else { return [] }
        switch batch.change {
        case .subscribe(let mode, _): return ZerodhaRequest.subscribeMessages(tokens, mode: mode).map { .text($0) }
        case .unsubscribe: return ZerodhaRequest.unsubscribeMessages(tokens).map { .text($0) }
        }
    }

    package mutating func decode(_ message: WebSocketMessage, into sink: any FeedEventSink) -> BrokerMessageOutcome {
        switch message {
        case .binary(let buffer):
            let frame: ZerodhaFrame
            do {
                frame = try ZerodhaTickDecoder.decode(frame: buffer)
            } catch {
                self.logger.warning("skipping a malformed Kite frame", metadata: ["error": "\(error)", "bytes": "\(buffer.readableBytes)"])
                return .accepted
            }
            guard !frame.isHeartbeat, frame.packetCount > 0 else { return .accepted }
            let receivedAt = WallClock.epochMilliseconds()
            for packet in frame {
                guard let subscription = self.subscribed[packet.instrumentToken] else { continue }
                sink.receive(
                    ZerodhaTickNormalizer.tick(from: packet, instrument: subscription.instrument, mode: subscription.mode, receivedAt: receivedAt)
                )
            }
            if frame.skippedPacketCount > 0 {
                self.logger.debug("skipped Kite packets of undocumented sizes", metadata: ["count": "\(frame.skippedPacketCount)"])
            }
        case .text(let text):
            // Kite's text messages: order updates (not market data), `message`s, and `error`s,
            // which the reference only logs.
            if text.contains("\"error\"") {
                self.logger.warning("Kite sent an error", metadata: ["message": "\(text.prefix(500))"])
            } else {
                self.logger.debug("Kite text message", metadata: ["message": "\(text.prefix(200))"])
            }
        }
        return .accepted
    }

    /// A refused upgrade with 401/403 means the api_key or access_token is wrong or expired:
    /// another attempt with the same token cannot succeed, so the feed fails and says so.
    package func shouldRetry(after error: BrokerWebSocketError) -> Bool {
        !error.isAuthenticationFailure
    }
}
