import MarketData
import NIOCore

/// The decisions that keep the feed streaming what clients want, without I/O or clocks: it is
/// told what is desired (by the hub, which owns who holds what), what the feed answered and how
/// the feed fares, with the time, and answers with ``Action``s for its driver (the hub) to carry
/// out.
///
/// It owns the actual state: per instrument, what the feed was last confirmed to serve and the
/// one request on its way there. Whenever desired and actual differ and nothing is in flight for
/// an instrument, it asks the feed for the desired target; requests for the same target go
/// together. A feed that (re)starts serves nothing, so every desired instrument is asked for
/// again at its real mode and depth.
///
/// Feed lifecycle: `starting` → `running`; a start that fails, or a running feed that reports
/// `failed`, goes to `failed`, from which the feed is started again by itself while anyone wants
/// an instrument: after a backoff (``Configuration/restartDelays``, by attempt), at once when new
/// demand arrives or the credentials changed. A feed that fails sooner than
/// ``Configuration/stableRun`` after it started counts as one more failed attempt, so a flapping
/// broker backs off instead of being hammered. `stopped` (on request) starts nothing by itself.
public struct FeedReconcilerStateMachine {
    public struct Configuration: Sendable, Equatable {
        /// The delay before restart attempt `n` (1…) is `initialRestartDelay × 2^(n-1)`, at most
        /// `maximumRestartDelay`.
        public var initialRestartDelay: TimeAmount
        public var maximumRestartDelay: TimeAmount
        /// How long a feed must run before its failure starts the attempt count afresh.
        public var stableRun: TimeAmount
        /// How often a failed feed's credentials are checked for a change.
        public var credentialsCheckInterval: TimeAmount

        public init(
            initialRestartDelay: TimeAmount = .seconds(5),
            maximumRestartDelay: TimeAmount = .seconds(60),
            stableRun: TimeAmount = .seconds(30),
            credentialsCheckInterval: TimeAmount = .seconds(1)
        ) {
            self.initialRestartDelay = initialRestartDelay
            self.maximumRestartDelay = max(maximumRestartDelay, initialRestartDelay)
            self.stableRun = stableRun
            self.credentialsCheckInterval = credentialsCheckInterval
        }

        /// The backoff before restart attempt `attempt` (1…).
        public func restartDelay(beforeAttempt attempt: Int) -> TimeAmount {
            let doublings = min(max(attempt - 1, 0), 30)
            let (delay, overflow) = self.initialRestartDelay.nanoseconds.multipliedReportingOverflow(by: Int64(1) << doublings)
            return overflow ? self.maximumRestartDelay : min(.nanoseconds(delay), self.maximumRestartDelay)
        }
    }

    /// What the feed confirmed it streams for an instrument.
    public struct Served: Sendable, Equatable {
        /// What it was asked for.
        public var target: FeedTarget
        /// The levels it actually serves at Depth, when it said (Kite serves 5 whatever is asked).
        public var levels: Int?

        public init(target: FeedTarget, levels: Int? = nil) {
            self.target = target
            self.levels = levels
        }
    }

    /// How a request for an instrument ended.
    public enum Answer: Sendable, Equatable {
        case served(Served)
        case refused(message: String)
    }

    public enum Phase: Sendable, Equatable {
        /// Starts are on their way (`pending` of them); their outcome decides.
        case starting(pending: Int, attempt: Int)
        case running(since: NIODeadline, attempt: Int)
        /// Waiting to start again; `retryAt` is `nil` while nobody wants anything.
        case failed(reason: String, attempt: Int, retryAt: NIODeadline?)
        case stopped
    }

    public enum Action: Sendable, Equatable {
        /// Ask the feed to stream `instruments` at `target`; report with ``subscribeAnswered(_:target:outcomes:now:)``.
        case subscribe([Instrument], FeedTarget)
        /// Ask the feed to stop streaming; report with ``unsubscribed(_:now:)``.
        case unsubscribe([Instrument])
        /// Start the feed with its current settings; report with ``startFinished(failure:now:)``.
        case startFeed
        /// Call ``restartDue(now:)`` at this time.
        case scheduleRestart(at: NIODeadline)
        /// Ask the feed whether its credentials changed after this delay; report with
        /// ``credentialsChecked(changed:now:)``.
        case checkCredentials(after: TimeAmount)
        /// A request for the instrument ended: resolve the requests waiting for it.
        case answered(Instrument, Answer)
        /// The feed cannot serve anything now: refuse every request waiting for it with this reason.
        case refuseWaiting(reason: String)
    }

    private enum Request: Equatable {
        case subscribe(FeedTarget)
        case unsubscribe
    }

    private struct InstrumentState {
        var desired: FeedTarget?
        var served: Served?
        var inFlight: Request?
        /// The target the feed last refused: not asked again until desire or the feed changes, so
        /// a refusal never loops.
        var refused: FeedTarget?

        var isIdle: Bool { self.desired == nil && self.served == nil && self.inFlight == nil }
    }

    public let configuration: Configuration
    public private(set) var phase: Phase
    private var instruments: [Instrument: InstrumentState] = [:]
    /// Whether a `.checkCredentials` is on its way, so that failing again never starts a second
    /// round of checks beside it.
    private var credentialsCheckPending = false

    /// - Parameter phase: `starting` when the driver starts the feed itself right away.
    public init(configuration: Configuration = Configuration(), phase: Phase = .starting(pending: 1, attempt: 0)) {
        self.configuration = configuration
        self.phase = phase
    }

    // MARK: Queries

    /// Whether a holder of `target` on `instrument` is served now: the feed confirmed a target
    /// that covers it, and no request in flight may take that away.
    public func serves(_ instrument: Instrument, _ target: FeedTarget) -> Served? {
        guard case .running = self.phase, let state = self.instruments[instrument], let served = state.served,
            served.target.covers(target)
        else { return nil }
        switch state.inFlight {
        case .none: return served
        case .subscribe(let next) where next.covers(target): return served
        case .subscribe, .unsubscribe: return nil
        }
    }

    /// What the feed was last confirmed to stream for `instrument`.
    public func served(_ instrument: Instrument) -> Served? {
        self.instruments[instrument]?.served
    }

    /// Whether new subscriptions can be served at all (the feed was not stopped on request).
    public var acceptsSubscriptions: Bool {
        if case .stopped = self.phase { return false }
        return true
    }

    private var hasDemand: Bool { self.instruments.values.contains { $0.desired != nil } }

    // MARK: Desire

    /// The hub's new desired targets (`nil`: nobody wants the instrument any more).
    public mutating func setDesired(_ changes: [(Instrument, FeedTarget?)], now: NIODeadline) -> [Action] {
        var rising = false
        var touched: [Instrument] = []
        for (instrument, target) in changes {
            var state = self.instruments[instrument] ?? InstrumentState()
            guard state.desired != target else { continue }
            if let target, state.desired.map({ !$0.covers(target) }) ?? true { rising = true }
            state.desired = target
            if state.refused != target { state.refused = nil }
            self.instruments[instrument] = state
            touched.append(instrument)
        }
        if rising, case .failed(_, let attempt, _) = self.phase {
            // New demand is a reason to try now, as a client reconnecting after a failure expects.
            self.phase = .starting(pending: 1, attempt: attempt)
            return [.startFeed]
        }
        if case .failed(let reason, let attempt, nil) = self.phase, self.hasDemand {
            let retryAt = now + self.configuration.restartDelay(beforeAttempt: attempt)
            self.phase = .failed(reason: reason, attempt: attempt, retryAt: retryAt)
            return [.scheduleRestart(at: retryAt)] + self.reconcile(touched)
        }
        return self.reconcile(touched)
    }

    // MARK: Answers

    /// The feed answered `.subscribe(instruments, target)`, one outcome per instrument.
    public mutating func subscribeAnswered(
        _ instruments: [Instrument],
        target: FeedTarget,
        outcomes: [SubscribeOutcome],
        now: NIODeadline
    ) -> [Action] {
        var actions: [Action] = []
        for (offset, instrument) in instruments.enumerated() {
            guard var state = self.instruments[instrument], state.inFlight == .subscribe(target) else { continue }
            state.inFlight = nil
            let outcome = offset < outcomes.count ? outcomes[offset] : .refused(message: "Subscription failed")
            switch outcome {
            case .subscribed(let actualDepth):
                let served = Served(target: target, levels: actualDepth)
                state.served = served
                state.refused = nil
                actions.append(.answered(instrument, .served(served)))
            case .refused(let message):
                state.refused = target
                actions.append(.answered(instrument, .refused(message: message)))
            }
            self.instruments[instrument] = state
        }
        return actions + self.reconcile(instruments)
    }

    /// The feed carried out `.unsubscribe(instruments)`.
    public mutating func unsubscribed(_ instruments: [Instrument], now: NIODeadline) -> [Action] {
        for instrument in instruments {
            guard var state = self.instruments[instrument], state.inFlight == .unsubscribe else { continue }
            state.inFlight = nil
            state.served = nil
            self.instruments[instrument] = state
        }
        return self.reconcile(instruments)
    }

    // MARK: The feed's life

    /// Someone asked to (re)start the feed (a connect, a broker switch): the driver starts it
    /// and reports with ``startFinished(failure:now:)``.
    public mutating func startRequested() {
        switch self.phase {
        case .starting(let pending, let attempt): self.phase = .starting(pending: pending + 1, attempt: attempt)
        case .running(_, let attempt), .failed(_, let attempt, _): self.phase = .starting(pending: 1, attempt: attempt)
        case .stopped: self.phase = .starting(pending: 1, attempt: 0)
        }
    }

    /// A start ended; `failure` is its reason when it did not connect.
    public mutating func startFinished(failure: String?, now: NIODeadline) -> [Action] {
        guard case .starting(let pending, let attempt) = self.phase else { return [] }
        guard pending <= 1 else {
            self.phase = .starting(pending: pending - 1, attempt: attempt)
            return []
        }
        // Whatever the old feed streamed, the new one (or none) streams nothing yet, and answers
        // nothing it was not asked: every request sent before the start was answered before it.
        let instruments = self.instruments.keys.sorted { $0.description < $1.description }
        for instrument in instruments {
            self.instruments[instrument]?.served = nil
            self.instruments[instrument]?.refused = nil
            self.instruments[instrument]?.inFlight = nil
        }
        guard let failure else {
            self.phase = .running(since: now, attempt: attempt)
            return self.reconcile(instruments)
        }
        return [.refuseWaiting(reason: failure)] + self.fail(reason: failure, attempt: attempt + 1, now: now)
    }

    /// The running feed reported `failed` (it gave up reconnecting).
    public mutating func feedFailed(reason: String, now: NIODeadline) -> [Action] {
        guard case .running(let since, let attempt) = self.phase else { return [] }
        for instrument in Array(self.instruments.keys) {
            self.instruments[instrument]?.served = nil
        }
        let next = now - since >= self.configuration.stableRun ? 1 : attempt + 1
        return [.refuseWaiting(reason: reason)] + self.fail(reason: reason, attempt: next, now: now)
    }

    /// The feed was stopped on request; it stays off until a start is requested.
    public mutating func stopped() -> [Action] {
        self.phase = .stopped
        for instrument in Array(self.instruments.keys) {
            self.instruments[instrument]?.served = nil
            self.instruments[instrument]?.inFlight = nil
        }
        self.instruments = self.instruments.filter { !$0.value.isIdle }
        return [.refuseWaiting(reason: "Broker feed is not connected")]
    }

    /// The backoff asked for by `.scheduleRestart` is over (or an earlier one: stale timers are ignored).
    public mutating func restartDue(now: NIODeadline) -> [Action] {
        guard case .failed(_, let attempt, let retryAt?) = self.phase, now >= retryAt, self.hasDemand else { return [] }
        self.phase = .starting(pending: 1, attempt: attempt)
        return [.startFeed]
    }

    /// The answer to `.checkCredentials`: a failed feed with new credentials starts again at once.
    public mutating func credentialsChecked(changed: Bool, now: NIODeadline) -> [Action] {
        self.credentialsCheckPending = false
        guard case .failed(_, let attempt, _) = self.phase else { return [] }
        guard changed, self.hasDemand else { return self.checkCredentials() }
        self.phase = .starting(pending: 1, attempt: attempt)
        return [.startFeed]
    }

    /// The credentials were changed (a reload): a failed feed starts again at once.
    public mutating func credentialsChanged(now: NIODeadline) -> [Action] {
        guard case .failed(_, let attempt, _) = self.phase, self.hasDemand else { return [] }
        self.phase = .starting(pending: 1, attempt: attempt)
        return [.startFeed]
    }

    private mutating func checkCredentials() -> [Action] {
        guard !self.credentialsCheckPending else { return [] }
        self.credentialsCheckPending = true
        return [.checkCredentials(after: self.configuration.credentialsCheckInterval)]
    }

    private mutating func fail(reason: String, attempt: Int, now: NIODeadline) -> [Action] {
        self.instruments = self.instruments.filter { !$0.value.isIdle }
        guard self.hasDemand else {
            self.phase = .failed(reason: reason, attempt: attempt, retryAt: nil)
            return self.checkCredentials()
        }
        let retryAt = now + self.configuration.restartDelay(beforeAttempt: attempt)
        self.phase = .failed(reason: reason, attempt: attempt, retryAt: retryAt)
        return [.scheduleRestart(at: retryAt)] + self.checkCredentials()
    }

    // MARK: Reconciling

    /// Asks the feed for whatever `instruments` need and nothing is in flight for, grouping
    /// subscriptions by target; forgets instruments nobody wants and the feed no longer serves.
    private mutating func reconcile(_ instruments: [Instrument]) -> [Action] {
        var subscriptions: [FeedTarget: [Instrument]] = [:]
        var order: [FeedTarget] = []
        var unsubscriptions: [Instrument] = []
        for instrument in instruments {
            guard var state = self.instruments[instrument] else { continue }
            if state.isIdle {
                self.instruments[instrument] = nil
                continue
            }
            guard case .running = self.phase, state.inFlight == nil else { continue }
            switch (state.desired, state.served) {
            case (nil, nil):
                continue
            case (nil, .some):
                state.inFlight = .unsubscribe
                unsubscriptions.append(instrument)
            case (let desired?, let served):
                guard served?.target != desired, state.refused != desired else { continue }
                state.inFlight = .subscribe(desired)
                if subscriptions[desired] == nil { order.append(desired) }
                subscriptions[desired, default: []].append(instrument)
            }
            self.instruments[instrument] = state
        }
        var actions = order.map { Action.subscribe(subscriptions[$0]!, $0) }
        if !unsubscriptions.isEmpty { actions.append(.unsubscribe(unsubscriptions)) }
        return actions
    }
}
