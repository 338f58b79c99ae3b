import MarketData
import NIOCore

/// Identifies a subscriber (a WebSocket or IPC connection) for the lifetime of the process.
public struct SubscriberID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public var description: String { "client-\(self.rawValue)" }
}

/// A receiver of market-data frames, driven by the hub on the hub's event loop.
///
/// The hub calls ``enqueue(_:instrument:mode:)`` for every frame of a batch of ticks, then
/// ``flushEnqueued()`` once, so a connection does one write system call per batch however many
/// ticks arrived together. Both must return quickly and never block: a subscriber that cannot
/// keep up conflates or closes itself, it never slows the hub. Neither may call back into the hub
/// (subscribe, unsubscribe, remove) while it runs: the hub is in the middle of its fan-out, so such
/// work belongs on the next loop turn.
public protocol MarketDataSubscriber: AnyObject {
    var subscriberID: SubscriberID { get }
    /// Takes one encoded `market_data` frame (shared with other subscribers; do not mutate it).
    ///
    /// - Returns: `true` when this frame is the first of the batch that needs ``flushEnqueued()``,
    ///   so the hub keeps a list of subscribers to flush without a set lookup per frame.
    func enqueue(_ frame: ByteBuffer, instrument: Instrument, mode: SubscriptionMode) -> Bool
    /// Flushes what ``enqueue(_:instrument:mode:)`` wrote since the last flush.
    func flushEnqueued()
}

/// What the hub needs from a feed: streaming instruments at a mode, and stopping.
///
/// The hub calls these one at a time, in order, from a single task, so an implementation never
/// sees an unsubscribe overtake the subscribe before it.
public protocol FeedControl: Sendable {
    /// Streams each instrument at `mode` (which may upgrade or downgrade an existing subscription).
    func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) async -> [SubscribeOutcome]
    /// Stops streaming the instruments.
    func unsubscribe(_ instruments: [Instrument]) async
}

/// Counters of the hub's work, for benchmarks, tests and `status`.
public struct HubMetrics: Sendable, Equatable {
    public var ticksReceived: UInt64 = 0
    public var framesDelivered: UInt64 = 0
    /// LTP frames not sent because a newer price replaced them within the coalescing window.
    public var ltpFramesCoalesced: UInt64 = 0
    /// Frames replaced in a slow client's outbox by newer ones.
    public var framesConflated: UInt64 = 0
    /// Clients closed because they could not keep up (budget or deadline exceeded).
    public var slowConsumersClosed: UInt64 = 0
    public var subscribers = 0
    public var instruments = 0

    public init() {}
}
