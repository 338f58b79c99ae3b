import NIOCore

/// How long a feed waits before each reconnect attempt, and when it gives up.
///
/// The delay before attempt `n` (1-based) is `initialDelay × multiplier^(n-1)`, capped at
/// ``maximumDelay``, then shortened by a random fraction of up to ``jitter`` so that many agents
/// dropped by the same broker outage do not all come back in the same instant. Jitter only ever
/// shortens a delay, so the cap is a true upper bound.
///
/// Pure: the random source is a parameter, so tests pass a seeded generator and get the same
/// delays every run.
package struct ReconnectPolicy: Sendable, Equatable {
    /// The delay before the first attempt.
    package var initialDelay: TimeAmount
    /// How much each delay grows over the previous one.
    package var multiplier: Double
    /// No delay is longer than this.
    package var maximumDelay: TimeAmount
    /// Attempts after a drop (or a failed first connect) before the feed reports `failed`.
    package var maximumAttempts: Int
    /// The largest fraction (0...1) taken off a delay at random.
    package var jitter: Double

    /// The agent's documented default: 1 s doubling, at most 30 s, 5 attempts, up to 20 % jitter.
    package init(
        initialDelay: TimeAmount = .seconds(1),
        multiplier: Double = 2,
        maximumDelay: TimeAmount = .seconds(30),
        maximumAttempts: Int = 5,
        jitter: Double = 0.2
    ) {
        precondition(initialDelay >= .zero && maximumDelay >= initialDelay, "delays must be non-negative and the cap at least the first delay")
        precondition(multiplier >= 1, "a backoff multiplier below 1 would shrink delays")
        precondition(maximumAttempts >= 0, "attempts cannot be negative")
        precondition((0...1).contains(jitter), "jitter is a fraction from 0 to 1")
        self.initialDelay = initialDelay
        self.multiplier = multiplier
        self.maximumDelay = maximumDelay
        self.maximumAttempts = maximumAttempts
        self.jitter = jitter
    }

    /// The delay before attempt `attempt` (1-based) without jitter: what the jittered delay
    /// approaches from below.
    package func nominalDelay(beforeAttempt attempt: Int) -> TimeAmount {
        precondition(attempt >= 1, "attempts are numbered from 1")
        let cap = Double(self.maximumDelay.nanoseconds)
        var delay = Double(self.initialDelay.nanoseconds)
        var step = 1
        while step < attempt && delay < cap {
            delay *= self.multiplier
            step += 1
        }
        return .nanoseconds(Int64(min(delay, cap)))
    }

    /// The delay before attempt `attempt` (1-based), or `nil` once the attempts are used up.
    package func delay(beforeAttempt attempt: Int, using random: inout some RandomNumberGenerator) -> TimeAmount? {
        guard attempt <= self.maximumAttempts else { return nil }
        let nominal = Double(self.nominalDelay(beforeAttempt: attempt).nanoseconds)
        let cut = self.jitter > 0 ? Double.random(in: 0..<self.jitter, using: &random) : 0
        return .nanoseconds(Int64(nominal * (1 - cut)))
    }
}
