import MarketData
import NIOCore

/// The decisions of a feed supervisor, without I/O or clocks: it is told what happened (with the
/// time) and answers with ``Action``s for its driver, ``FeedSupervisor``, to carry out.
///
/// Lifecycle: `idle` → `connecting` → `connected`; a lost connection, a failed connect or a stall
/// goes to `waitingToReconnect(attempt)` with a ``ReconnectPolicy`` delay, then `connecting`
/// again. The attempt counter restarts once a connection has stayed up for
/// ``Configuration/stableConnection``: a broker that accepts and drops at once (an expired session
/// some brokers close only after the upgrade) uses up the attempts and the feed fails, instead of
/// being retried forever while looking connected. When the policy runs out
/// (or an error is not worth retrying) the machine is `failed` and stays there until started
/// again. `stop()` ends everything from any state.
///
/// It owns the set of active subscriptions (instrument → mode and depth, as the hub last asked),
/// because that set is what must be replayed after each reconnect: brokers keep no subscriptions
/// across connections.
///
/// Stall detection: while at least one subscription is active, a connection that delivers no
/// data for ``Configuration/stallTimeout`` is closed and reconnected. Messages only set a flag
/// (``dataReceived()``); the periodic ``stallCheck(now:)`` turns the flag into a time, so the
/// hot path never reads a clock. A stall is therefore detected between `stallTimeout` and
/// `stallTimeout + stallCheckInterval` after the last message.
package struct FeedSupervisorStateMachine {
    package struct Configuration: Sendable, Equatable {
        package var reconnect: ReconnectPolicy
        /// Silence (with subscriptions active) that counts as a dead feed; `nil` disables the check.
        package var stallTimeout: TimeAmount?
        /// How often silence is checked.
        package var stallCheckInterval: TimeAmount
        /// How long a connection must stay up before its drop counts as a new problem rather than
        /// one more failed attempt.
        package var stableConnection: TimeAmount

        /// OpenAlgo's watchdog values (spec §0.3): 90 s of silence, checked every 30 s.
        package init(
            reconnect: ReconnectPolicy = ReconnectPolicy(),
            stallTimeout: TimeAmount? = .seconds(90),
            stallCheckInterval: TimeAmount = .seconds(30),
            stableConnection: TimeAmount = .seconds(5)
        ) {
            precondition(stallCheckInterval > .zero, "the stall check interval must be positive")
            self.reconnect = reconnect
            self.stallTimeout = stallTimeout
            self.stallCheckInterval = stallCheckInterval
            self.stableConnection = stableConnection
        }
    }

    /// Where the machine is.
    package enum State: Sendable, Equatable {
        case idle
        /// Opening a connection; `attempt` 0 is the first connect, 1… are reconnects.
        case connecting(attempt: Int)
        case connected
        /// Waiting out the backoff before reconnect attempt `attempt`.
        case waitingToReconnect(attempt: Int)
        case failed(reason: String)
        case stopped
    }

    /// What the driver must do, in order.
    package enum Action: Sendable, Equatable {
        /// Tell the sink (`FeedEventSink.feedStateChanged`).
        case report(FeedConnectionState)
        /// Open a connection (building a fresh request: tokens may have changed).
        case connect
        /// Call ``backoffElapsed()`` after this delay.
        case scheduleReconnect(after: TimeAmount)
        /// Call ``stallCheck(now:)`` after this delay (replacing any check already scheduled).
        case scheduleStallCheck(after: TimeAmount)
        /// Cancel the scheduled reconnect and stall check.
        case cancelTimers
        /// Close the current connection (or the one being opened); its close is expected and
        /// must not be reported back as lost.
        case closeConnection
        /// A new connection is up: send the broker's opening messages, then subscribe to all of
        /// these (the whole active set, in the order they were first requested).
        case replay([FeedSubscription])
        /// Hand the change to the batcher for the current connection.
        case forward(SubscriptionChange, [Instrument])
    }

    package let configuration: Configuration
    package private(set) var state: State = .idle
    private var random: any RandomNumberGenerator
    private var subscriptions: [Instrument: (mode: SubscriptionMode, depth: Int, sequence: Int)] = [:]
    private var nextSequence = 0
    private var lastActivity = NIODeadline.uptimeNanoseconds(0)
    /// When the current connection opened, and the attempt that opened it (0 for the first connect).
    private var currentConnection = (openedAt: NIODeadline.uptimeNanoseconds(0), attempt: 0)
    private var sawDataSinceCheck = false

    /// - Parameter random: the jitter source; pass a seeded generator for repeatable delays.
    package init(configuration: Configuration = Configuration(), random: some RandomNumberGenerator = SystemRandomNumberGenerator()) {
        self.configuration = configuration
        self.random = random
    }

    /// The active subscriptions, in the order they were first requested.
    package var activeSubscriptions: [FeedSubscription] {
        self.subscriptions.sorted { $0.value.sequence < $1.value.sequence }.map {
            FeedSubscription(instrument: $0.key, mode: $0.value.mode, depth: $0.value.depth)
        }
    }

    /// Starts connecting (from `idle`, `failed` or `stopped`); ignored while already running.
    package mutating func start() -> [Action] {
        switch self.state {
        case .idle, .failed, .stopped:
            self.state = .connecting(attempt: 0)
            return [.report(.connecting), .connect]
        case .connecting, .connected, .waitingToReconnect:
            return []
        }
    }

    /// The connection asked for by `.connect` is open.
    package mutating func connectSucceeded(now: NIODeadline) -> [Action] {
        guard case .connecting(let attempt) = self.state else { return [.closeConnection] }
        self.state = .connected
        self.currentConnection = (now, attempt)
        self.lastActivity = now
        self.sawDataSinceCheck = false
        var actions: [Action] = [.report(.connected), .replay(self.activeSubscriptions)]
        if self.configuration.stallTimeout != nil { actions.append(.scheduleStallCheck(after: self.configuration.stallCheckInterval)) }
        return actions
    }

    /// The connection asked for by `.connect` could not be opened.
    ///
    /// - Parameter retryable: `false` for errors another attempt cannot fix (the broker said the
    ///   account may not stream); the feed fails at once.
    package mutating func connectFailed(reason: String, retryable: Bool = true) -> [Action] {
        guard case .connecting(let attempt) = self.state else { return [] }
        return self.retry(after: attempt, reason: reason, retryable: retryable)
    }

    /// The open connection ended without being asked to. Sooner than
    /// ``Configuration/stableConnection`` after it opened, that counts as its attempt failing.
    package mutating func connectionLost(reason: String, retryable: Bool = true, now: NIODeadline) -> [Action] {
        guard case .connected = self.state else { return [] }
        let stable = now - self.currentConnection.openedAt >= self.configuration.stableConnection
        return [.cancelTimers] + self.retry(after: stable ? 0 : self.currentConnection.attempt, reason: reason, retryable: retryable)
    }

    /// The backoff asked for by `.scheduleReconnect` is over.
    package mutating func backoffElapsed() -> [Action] {
        guard case .waitingToReconnect(let attempt) = self.state else { return [] }
        self.state = .connecting(attempt: attempt)
        return [.connect]
    }

    /// A data message arrived. Cheap: called for every message.
    package mutating func dataReceived() {
        self.sawDataSinceCheck = true
    }

    /// The check asked for by `.scheduleStallCheck` is due.
    package mutating func stallCheck(now: NIODeadline) -> [Action] {
        guard case .connected = self.state, let timeout = self.configuration.stallTimeout else { return [] }
        if self.sawDataSinceCheck || self.subscriptions.isEmpty {
            self.sawDataSinceCheck = false
            self.lastActivity = now
        } else if now - self.lastActivity >= timeout {
            let reason = "no data from the broker for \(timeout.secondsDescription) while subscribed"
            return [.cancelTimers, .closeConnection] + self.retry(after: 0, reason: reason, retryable: true)
        }
        return [.scheduleStallCheck(after: self.configuration.stallCheckInterval)]
    }

    /// The hub wants `instruments` at `mode` (new, upgraded or downgraded).
    package mutating func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int, now: NIODeadline) -> [Action] {
        guard !instruments.isEmpty else { return [] }
        if self.subscriptions.isEmpty {
            self.lastActivity = now
            self.sawDataSinceCheck = false
        }
        for instrument in instruments {
            if let existing = self.subscriptions[instrument] {
                self.subscriptions[instrument] = (mode, depth, existing.sequence)
            } else {
                self.subscriptions[instrument] = (mode, depth, self.nextSequence)
                self.nextSequence += 1
            }
        }
        guard case .connected = self.state else { return [] }
        return [.forward(.subscribe(mode: mode, depth: depth), instruments)]
    }

    /// The hub no longer wants `instruments`; unknown ones are ignored.
    package mutating func unsubscribe(_ instruments: [Instrument]) -> [Action] {
        let removed = instruments.filter { self.subscriptions.removeValue(forKey: $0) != nil }
        guard case .connected = self.state, !removed.isEmpty else { return [] }
        return [.forward(.unsubscribe, removed)]
    }

    /// Ends everything and forgets the subscriptions (the adapter is being disconnected).
    package mutating func stop() -> [Action] {
        let previous = self.state
        self.state = .stopped
        self.subscriptions.removeAll()
        switch previous {
        case .idle, .stopped:
            return []
        case .failed:
            return [.report(.disconnected)]
        case .waitingToReconnect:
            return [.cancelTimers, .report(.disconnected)]
        case .connecting, .connected:
            return [.cancelTimers, .closeConnection, .report(.disconnected)]
        }
    }

    private mutating func retry(after attempt: Int, reason: String, retryable: Bool) -> [Action] {
        let next = attempt + 1
        guard retryable, let delay = self.configuration.reconnect.delay(beforeAttempt: next, using: &self.random) else {
            let attempts = self.configuration.reconnect.maximumAttempts
            let sentence =
                retryable ? "gave up after \(attempts) reconnect attempt\(attempts == 1 ? "" : "s"): \(reason)" : reason
            self.state = .failed(reason: sentence)
            return [.report(.failed(reason: sentence))]
        }
        self.state = .waitingToReconnect(attempt: next)
        return [.report(.reconnecting(attempt: next)), .scheduleReconnect(after: delay)]
    }
}
