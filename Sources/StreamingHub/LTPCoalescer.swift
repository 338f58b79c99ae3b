/// Limits LTP frames for one instrument to one per window without ever losing the last price.
///
/// The original design throttled LTP to 50 ms per symbol and dropped what came in between, so the
/// final price of a burst could be lost until the next trade. Here the first tick of a quiet period
/// goes out at once; ticks inside the window are held (the newest replacing older ones) and the
/// newest is delivered when the window ends.
///
/// Pure logic on explicit times, so the hub supplies the clock and schedules the flush.
public struct LTPCoalescer: Sendable, Equatable {
    public enum Decision: Sendable, Equatable {
        /// Deliver the tick now.
        case sendNow
        /// Hold the tick and schedule a flush at the given time (nanoseconds, the caller's clock).
        case holdAndScheduleFlush(at: Int64)
        /// Hold the tick; a flush is already scheduled.
        case hold
    }

    /// The window in nanoseconds; 0 disables coalescing.
    public let windowNanoseconds: Int64
    private var lastSent: Int64?
    private var flushScheduled = false
    /// Whether a held tick waits for the flush.
    public private(set) var hasPending = false

    public init(windowNanoseconds: Int64) {
        self.windowNanoseconds = windowNanoseconds
    }

    /// Decides what to do with a tick arriving at `now`.
    public mutating func offer(now: Int64) -> Decision {
        if self.flushScheduled {
            self.hasPending = true
            return .hold
        }
        if let lastSent, now - lastSent < self.windowNanoseconds {
            self.hasPending = true
            self.flushScheduled = true
            return .holdAndScheduleFlush(at: lastSent + self.windowNanoseconds)
        }
        self.lastSent = now
        return .sendNow
    }

    /// The scheduled flush fired at `now`; returns whether the held tick must be delivered.
    public mutating func flush(now: Int64) -> Bool {
        self.flushScheduled = false
        guard self.hasPending else { return false }
        self.hasPending = false
        self.lastSent = now
        return true
    }
}
