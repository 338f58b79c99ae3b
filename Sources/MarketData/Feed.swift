import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a feed delivers what it produces. The hub implements it; feeds call it from any thread.
///
/// A sink rather than an `AsyncStream`: feeds produce thousands of ticks a second and the hub
/// batches them onto its event loop, so a task hop and a continuation resume per tick would be
/// pure overhead.
public protocol FeedEventSink: Sendable {
    /// A tick from the feed; the hub fans it out.
    func receive(_ tick: Tick)
    /// The feed's connection changed state.
    func feedStateChanged(_ state: FeedConnectionState)
    /// An order update for the account, already shaped as the `order_update` frame clients get
    /// (the ZeroMQ bus relays OpenAlgo's); the hub passes it to clients that asked for orders.
    func receiveOrderUpdate(_ message: ByteBuffer)
    /// Runs `body` once the ticks given so far have been taken in: a feed that can produce faster
    /// than the hub fans out (replay at full speed) waits for it to bound the backlog.
    func afterPendingTicks(_ body: @escaping @Sendable () -> Void)
}

extension FeedEventSink {
    /// Market-data feeds have no order stream; sinks that do not relay orders ignore them.
    public func receiveOrderUpdate(_ message: ByteBuffer) {}

    /// For sinks that take ticks synchronously: nothing is pending.
    public func afterPendingTicks(_ body: @escaping @Sendable () -> Void) {
        body()
    }
}

/// The state of a feed's upstream connection, as clients see it in `broker_info`.
public enum FeedConnectionState: Sendable, Equatable, CustomStringConvertible {
    case disconnected
    case connecting
    case connected
    case reconnecting(attempt: Int)
    case failed(reason: String)

    /// The word used on the wire (`adapter_status`, `broker_status`).
    public var description: String {
        switch self {
        case .disconnected: return "disconnected"
        case .connecting: return "connecting"
        case .connected: return "connected"
        case .reconnecting: return "reconnecting"
        case .failed: return "failed"
        }
    }
}

/// A feed's answer to a subscription request for one instrument.
public enum SubscribeOutcome: Sendable, Equatable {
    /// Subscribed; `actualDepth` is set when the feed serves another depth than was asked for.
    case subscribed(actualDepth: Int?)
    /// Refused, with the text the reference puts in the ack (`Symbol X not found for exchange Y`).
    case refused(message: String)
}

/// Wall-clock time for timestamps on the wire.
public enum WallClock {
    /// Milliseconds since the Unix epoch, the unit of `timestamp` in market data.
    public static func epochMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// A feed's epoch timestamp in milliseconds, whatever unit it came in. Brokers send
    /// milliseconds, OpenAlgo's adapters sometimes seconds, and publishers on the ZeroMQ bus (the
    /// benchmark's injector among them) nanoseconds; the unit is told apart by magnitude, which
    /// is unambiguous for any date between 1973 and 5138. A timestamp of zero or below is no
    /// date at all (a feed may send anything), so it has no value in milliseconds: `nil`.
    @inlinable
    public static func milliseconds(fromEpochTimestamp timestamp: Int64) -> Int64? {
        switch timestamp {
        case 100_000_000_000_000_000...: return timestamp / 1_000_000
        case 100_000_000_000_000...: return timestamp / 1000
        case 100_000_000_000...: return timestamp
        case 1...: return timestamp * 1000
        default: return nil
        }
    }

    /// Nanoseconds since the Unix epoch, the unit of a recording's receive times.
    public static func epochNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}
