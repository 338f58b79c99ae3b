/// When each tick of a fixed-rate injection is due, and for which symbol.
///
/// Tick `k` is due `k / rate` seconds after the start, always computed from the start rather than
/// by adding an interval to the previous deadline, so rounding never accumulates into drift and a
/// late injector catches up by sending every tick that has fallen due.
public struct InjectionSchedule: Sendable, Equatable {
    /// Ticks per second over the whole universe.
    public let ticksPerSecond: Double
    /// How many symbols the ticks are spread over, round-robin.
    public let universe: Int

    public init(ticksPerSecond: Double, universe: Int) {
        precondition(ticksPerSecond > 0 && universe > 0, "an injection needs a positive rate and at least one symbol")
        self.ticksPerSecond = ticksPerSecond
        self.universe = universe
    }

    /// Nanoseconds from the start at which tick `index` is due.
    public func dueOffsetNanoseconds(ofTick index: Int) -> Int64 {
        Int64((Double(index) * 1e9 / self.ticksPerSecond).rounded(.up))
    }

    /// How many ticks (counted from tick 0) are due `elapsed` nanoseconds after the start.
    public func ticksDue(afterNanoseconds elapsed: Int64) -> Int {
        guard elapsed >= 0 else { return 0 }
        var count = Int((Double(elapsed) * self.ticksPerSecond / 1e9).rounded(.down)) + 1
        // The division above may round either way at an exact deadline; settle it on the due time.
        while count > 0 && self.dueOffsetNanoseconds(ofTick: count - 1) > elapsed { count -= 1 }
        while self.dueOffsetNanoseconds(ofTick: count) <= elapsed { count += 1 }
        return count
    }

    /// The symbol (0-based, within the universe) tick `index` is for.
    public func symbolIndex(ofTick index: Int) -> Int {
        index % self.universe
    }
}
