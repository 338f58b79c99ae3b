import MarketData
import NIOConcurrencyHelpers
import NIOCore

/// Lets an adapter's `connect` wait for the outcome of its first connection attempt, as the
/// reference's Zerodha adapter waits up to 15 s for the socket to open, so that `ws_connect`
/// and the agent's start-up can say *why* a broker is unusable (HTTP 403: bad token) instead of
/// succeeding and failing a moment later.
///
/// It sits between a ``FeedSupervisor`` and the feed's real sink. Ticks always pass. States pass
/// too, except a `failed` that ends the first attempt: that one is held back and returned by
/// ``firstOutcome(within:on:)``, because the adapter turns it into the error its `connect`
/// throws (and the agent reports the failure from that error, once). After ``mute()`` nothing
/// passes: the adapter is tearing down a feed that never started.
package final class InitialConnectGate: FeedEventSink {
    /// How the first attempt ended.
    package enum Outcome: Sendable, Equatable {
        case connected
        /// The first attempt failed but the supervisor is retrying; the feed keeps reporting.
        case retrying
        /// The supervisor gave up (an error not worth retrying, or no attempts allowed).
        case failed(reason: String)
        /// Nothing happened within the wait; the feed keeps trying and reporting.
        case undecided
    }

    private struct State {
        var outcome: Outcome?
        var waiter: CheckedContinuation<Outcome, Never>?
        var muted = false
    }

    private let downstream: any FeedEventSink
    private let state = NIOLockedValueBox(State())

    package init(forwardingTo downstream: any FeedEventSink) {
        self.downstream = downstream
    }

    package func receive(_ tick: Tick) {
        self.downstream.receive(tick)
    }

    package func feedStateChanged(_ feedState: FeedConnectionState) {
        let (forward, resume) = self.state.withLockedValue { state -> (Bool, (CheckedContinuation<Outcome, Never>, Outcome)?) in
            if state.muted { return (false, nil) }
            guard state.outcome == nil else { return (true, nil) }
            let outcome: Outcome
            switch feedState {
            case .connected: outcome = .connected
            case .reconnecting: outcome = .retrying
            case .failed(let reason): outcome = .failed(reason: reason)
            case .connecting, .disconnected: return (true, nil)
            }
            return (!Self.isFailure(outcome), Self.decide(&state, outcome))
        }
        // Forward before waking the waiter: whoever `connect` returns to must find the hub told.
        if forward { self.downstream.feedStateChanged(feedState) }
        if let (waiter, outcome) = resume { waiter.resume(returning: outcome) }
    }

    /// Waits until the first attempt has an outcome, or `timeout` has passed (``Outcome/undecided``).
    package func firstOutcome(within timeout: TimeAmount, on eventLoop: any EventLoop) async -> Outcome {
        let timer = eventLoop.scheduleTask(in: timeout) { self.settle(.undecided) }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let outcome = self.state.withLockedValue { state -> Outcome? in
                if let outcome = state.outcome { return outcome }
                state.waiter = continuation
                return nil
            }
            if let outcome { continuation.resume(returning: outcome) }
        }
    }

    /// Stops forwarding anything: the adapter is stopping a feed whose connect failed.
    package func mute() {
        self.state.withLockedValue { $0.muted = true }
    }

    private func settle(_ outcome: Outcome) {
        let waiter = self.state.withLockedValue { Self.decide(&$0, outcome) }
        if let (waiter, outcome) = waiter { waiter.resume(returning: outcome) }
    }

    private static func decide(_ state: inout State, _ outcome: Outcome) -> (CheckedContinuation<Outcome, Never>, Outcome)? {
        guard state.outcome == nil else { return nil }
        state.outcome = outcome
        defer { state.waiter = nil }
        return state.waiter.map { ($0, outcome) }
    }

    private static func isFailure(_ outcome: Outcome) -> Bool {
        if case .failed = outcome { return true }
        return false
    }
}

/// A feed that could not be started; the message says why (the broker's own words when it gave any).
package struct BrokerFeedError: Error, Sendable, Equatable, CustomStringConvertible {
    package var message: String

    package init(_ message: String) {
        self.message = message
    }

    package var description: String { self.message }
}
