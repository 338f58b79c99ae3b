import MarketData

/// What the feed must stream for one instrument: a mode and, at Depth, the levels asked for.
///
/// Holders of one instrument ask for different things (a chart LTP, a depth widget 20 levels);
/// the feed streams the least target that covers them all, and a new request is answered at once
/// only when what the feed already serves covers it.
public struct FeedTarget: Sendable, Hashable, CustomStringConvertible {
    public let mode: SubscriptionMode
    /// The depth levels asked for at ``SubscriptionMode/depth``; 0 at the other modes, where
    /// depth means nothing.
    public let depth: Int

    public init(mode: SubscriptionMode, depth: Int) {
        self.mode = mode
        self.depth = mode == .depth ? max(depth, 0) : 0
    }

    /// Whether streaming this gives a holder of `other` everything it asked for: a higher mode,
    /// or the same mode with at least as many levels.
    public func covers(_ other: FeedTarget) -> Bool {
        self.mode == other.mode ? self.depth >= other.depth : self.mode > other.mode
    }

    /// The least target that covers both.
    public func union(_ other: FeedTarget) -> FeedTarget {
        FeedTarget(mode: max(self.mode, other.mode), depth: max(self.depth, other.depth))
    }

    /// The depth to pass to a feed with this target's mode (five levels at the modes without depth,
    /// as the reference's default).
    public var requestedDepth: Int { self.mode == .depth ? self.depth : 5 }

    public var description: String { self.mode == .depth ? "Depth \(self.depth)" : self.mode.label }
}
