import MarketData
import NIOCore
import WireJSON
import ZeroMQ

/// Why a message on the bus was dropped. The reference logs and drops the same messages (and
/// for a body that is not JSON, also pauses its listener for a second; the agent does not).
package enum ZeroMQSkipReason: String, Sendable, CaseIterable, CustomStringConvertible {
    case notTwoFrames = "not a two-frame message"
    case topicNotUTF8 = "topic is not UTF-8"
    case malformedTopic = "topic is not EXCHANGE_SYMBOL_MODE"
    case unknownMode = "unknown mode in topic"
    case invalidJSON = "body is not valid JSON"
    case notAnObject = "body is not a JSON object"
    case orderUpdateWithoutUser = "order update without user_id"

    package var description: String { self.rawValue }
}

/// Counts of what came off the bus, logged when the feed stops.
package struct ZeroMQFeedStatistics: Sendable, Equatable {
    package var messages: UInt64 = 0
    package var ticks: UInt64 = 0
    package var orderUpdates: UInt64 = 0
    /// Cache-invalidation and account (`_positions`, `_margins`) messages, which the agent has no use for.
    package var ignored: UInt64 = 0
    package var skipped: [ZeroMQSkipReason: UInt64] = [:]

    package init() {}
}

/// Decodes messages from OpenAlgo's ZeroMQ bus (`[topic, JSON body]`) and counts them.
package struct ZeroMQBusDecoder: Sendable {
    /// What one message is for the agent.
    package enum Outcome: Sendable, Equatable {
        case tick(Tick)
        /// The body, unchanged: the reference's publisher already shaped it as the client frame.
        case orderUpdate(ByteBuffer)
        /// A known topic the agent has no use for (cache invalidation, positions, margins).
        case ignored
        case skipped(ZeroMQSkipReason)
    }

    package private(set) var statistics = ZeroMQFeedStatistics()

    package init() {}

    /// Decodes and counts one received message.
    package mutating func decode(_ message: ZeroMQMessage) -> Outcome {
        let outcome = message.frameCount == 2 ? Self.decode(topic: message[0], body: message[1]) : .skipped(.notTwoFrames)
        self.statistics.messages += 1
        switch outcome {
        case .tick: self.statistics.ticks += 1
        case .orderUpdate: self.statistics.orderUpdates += 1
        case .ignored: self.statistics.ignored += 1
        case .skipped(let reason): self.statistics.skipped[reason, default: 0] += 1
        }
        return outcome
    }

    /// Decodes one message from its two frames.
    package static func decode(topic topicBytes: ByteBuffer, body: ByteBuffer) -> Outcome {
        guard let topic = topicBytes.withUnsafeReadableBytes({ ZeroMQTopic(utf8: $0) }) else { return .skipped(.topicNotUTF8) }
        switch topic {
        case .cacheInvalidation, .accountEvent:
            return .ignored
        case .orderUpdate:
            return Self.orderUpdate(body)
        case .malformed:
            return .skipped(.malformedTopic)
        case .unknownMode:
            return .skipped(.unknownMode)
        case .marketData(let instrument, let mode):
            do {
                return .tick(try ZeroMQTickDecoder.tick(instrument: instrument, mode: mode, body: body))
            } catch {
                switch error {
                case .invalidJSON: return .skipped(.invalidJSON)
                case .notAnObject: return .skipped(.notAnObject)
                }
            }
        }
    }

    /// The reference relays an order update to the subscribers of the body's `user_id` and drops
    /// one without it; the agent serves one user, so only the presence is checked.
    private static func orderUpdate(_ body: ByteBuffer) -> Outcome {
        guard let value = try? JSONParser.parse(body) else { return .skipped(.invalidJSON) }
        guard case .object(let object) = value else { return .skipped(.notAnObject) }
        guard let user = object["user_id"], user.isTruthy else { return .skipped(.orderUpdateWithoutUser) }
        return .orderUpdate(body)
    }
}
