import MarketData

/// One recorded tick: the tick as the hub received it, and when it arrived.
///
/// The receive time drives replay timing: replaying at 1× reproduces the gaps the agent saw, not
/// the gaps between the exchange's own timestamps, which brokers fill in inconsistently.
public struct TickRecord: Sendable, Equatable {
    /// When the hub received the tick, in nanoseconds since the Unix epoch (UTC).
    public var receivedAt: Int64
    public var tick: Tick

    public init(receivedAt: Int64, tick: Tick) {
        self.receivedAt = receivedAt
        self.tick = tick
    }
}
