import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore
import OrderedCollections

/// Settings of the hub.
public struct HubConfiguration: Sendable {
    /// Reported to clients as `broker` in every frame and ack.
    public var brokerName: String
    /// The LTP coalescing window; `.zero` disables coalescing.
    public var ltpThrottle: TimeAmount
    /// How a failed feed is started again while anyone holds a subscription.
    public var feedRestart: FeedReconcilerStateMachine.Configuration
    /// How long after a fan-out the next one waits, so that ticks arriving meanwhile go out
    /// together: one write per client for all of them instead of one per tick. A tick that
    /// arrives when the window has passed goes out at once. `.zero` fans out every burst at once.
    public var tickBatchWindow: TimeAmount

    public init(
        brokerName: String,
        ltpThrottle: TimeAmount = .milliseconds(50),
        tickBatchWindow: TimeAmount = .zero,
        feedRestart: FeedReconcilerStateMachine.Configuration = .init()
    ) {
        self.brokerName = brokerName
        self.ltpThrottle = ltpThrottle
        self.tickBatchWindow = tickBatchWindow
        self.feedRestart = feedRestart
    }
}

/// The heart of the agent: the subscription index, the reference counts that drive the feed, and
/// the fan-out of every tick to every subscriber.
///
/// The hub is confined to one event loop. Subscribers on that loop (local clients, recordings) get
/// their frames by a plain method call. Subscribers on other loops (WebSocket clients, spread over
/// the cores) are served in per-loop batches: the fan-out collects each loop's frames while it walks
/// the index and hands every loop one task per batch of ticks, never one per client, so nothing on
/// the hot path takes a lock. Feeds on other threads hand ticks over through ``makeSink()``, which
/// batches them into one loop turn; requests to the feed leave through a ``FeedCommandQueue`` and
/// their answers come back to the loop.
///
/// Every method must be called on ``eventLoop``; subscribers on other loops reach it through a
/// ``HubConnector``.
public final class StreamingHub {
    public let eventLoop: any EventLoop
    public private(set) var configuration: HubConfiguration
    private let commands: FeedCommandQueue
    private let logger: Logger
    private let allocator = ByteBufferAllocator()

    private var index = SubscriptionIndex<Member>()
    private var clients: [SubscriberID: ClientState] = [:]
    private var coalescers: [Instrument: CoalescerSlot] = [:]
    private var touched: [any MarketDataSubscriber] = []
    /// One per event loop other than the hub's that has subscribers, in the order they appeared.
    private var loopBatches: [LoopBatch] = []
    /// Counters that subscribers on any loop update without a hop to the hub.
    let sharedCounters = SharedHubCounters()
    /// The broker name and feed state, readable from any loop.
    public let published: PublishedHubState
    private let subscriberIDs: SubscriberIDGenerator
    /// ``HubConfiguration/tickBatchWindow`` in nanoseconds, shared with the inboxes on feed threads.
    private let tickBatchWindow: NIOLockedValueBox<Int64>
    /// The desired state's other half beside the index: requests waiting for the feed, per
    /// instrument in arrival order, and the subscribe calls they belong to.
    private var waiters: [Instrument: [Waiter]] = [:]
    private var pendingSubscribes: [UInt64: PendingSubscribe] = [:]
    private var nextRequestNumber: UInt64 = 0
    /// The actual state: what the feed streams, and its restarts.
    private var reconciler: FeedReconcilerStateMachine
    private var counters = HubMetrics()
    private var observers: [ObjectIdentifier: any HubObserver] = [:]
    private var taps: [Instrument: [any TickTap]] = [:]
    /// The last tick of each streamed instrument, for the snapshot a new local subscriber gets first.
    private var latestTicks: [Instrument: Tick] = [:]
    private let startedAt = NIODeadline.now()
    private var lastTickAt: NIODeadline?

    /// The feed's connection state as last reported.
    public private(set) var feedState: FeedConnectionState = .connecting

    public init(eventLoop: any EventLoop, configuration: HubConfiguration, commands: FeedCommandQueue, logger: Logger) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.commands = commands
        self.logger = logger
        self.published = PublishedHubState(brokerName: configuration.brokerName, feedState: .connecting)
        self.subscriberIDs = SubscriberIDGenerator()
        self.tickBatchWindow = NIOLockedValueBox(configuration.tickBatchWindow.nanoseconds)
        self.reconciler = FeedReconcilerStateMachine(configuration: configuration.feedRestart, phase: .starting(pending: 0, attempt: 0))
    }

    /// How subscribers on any event loop reach this hub.
    public var connector: HubConnector {
        HubConnector(hub: NIOLoopBound(self, eventLoop: self.eventLoop), subscriberIDs: self.subscriberIDs)
    }

    /// The entry point for feeds: thread-safe, batching ticks into the hub's loop. Call once.
    public func makeSink() -> any FeedEventSink {
        HubInbox(hub: self, batchWindow: self.tickBatchWindow)
    }

    /// The broker named in every frame and ack.
    public var brokerName: String { self.configuration.brokerName }

    /// Names another broker in frames and acks, after the feed was switched to it.
    public func setBrokerName(_ name: String) {
        self.configuration.brokerName = name
        self.published.update(brokerName: name)
    }

    /// Changes the LTP coalescing window (a configuration reload); windows in progress are dropped.
    public func setLTPThrottle(_ throttle: TimeAmount) {
        guard throttle != self.configuration.ltpThrottle else { return }
        self.configuration.ltpThrottle = throttle
        self.coalescers.removeAll()
    }

    /// Changes the tick batching window (a configuration reload); it applies from the next batch.
    public func setTickBatchWindow(_ window: TimeAmount) {
        self.configuration.tickBatchWindow = window
        self.tickBatchWindow.withLockedValue { $0 = window.nanoseconds }
    }

    /// A snapshot of the counters.
    public var metrics: HubMetrics {
        var snapshot = self.counters
        snapshot.framesConflated = self.sharedCounters.framesConflated
        snapshot.slowConsumersClosed = self.sharedCounters.slowConsumersClosed
        snapshot.subscribers = self.clients.count
        snapshot.instruments = self.index.instrumentCount
        return snapshot
    }

    /// The agent's state for `status`.
    public func status() -> HubStatus {
        var webSocketClients = 0
        var ipcClients = 0
        var subscriptions = 0
        for state in self.clients.values {
            subscriptions += state.subscriptions.count
            switch state.subscriber.describe().kind {
            case .webSocket: webSocketClients += 1
            case .ipc: ipcClients += 1
            case .recorder: break
            }
        }
        let now = NIODeadline.now()
        return HubStatus(
            brokerName: self.configuration.brokerName,
            feedState: self.feedState,
            instruments: self.index.instrumentCount,
            subscriptions: subscriptions,
            webSocketClients: webSocketClients,
            ipcClients: ipcClients,
            lastTickAgeMilliseconds: self.lastTickAt.map { (now - $0).nanoseconds / 1_000_000 },
            uptimeSeconds: (now - self.startedAt).nanoseconds / 1_000_000_000
        )
    }

    /// Every registered subscriber with its subscriptions, in connection order.
    public func clientList() -> [(
        id: SubscriberID, client: SubscriberDescription, subscriptions: [(instrument: Instrument, mode: SubscriptionMode)]
    )] {
        self.clients.sorted { $0.key.rawValue < $1.key.rawValue }.map { id, state in
            (id, state.subscriber.describe(), state.subscriptions.map { ($0.instrument, $0.mode) })
        }
    }

    /// The registered subscriber with `id`, if it is still connected.
    public func subscriber(withID id: SubscriberID) -> (any MarketDataSubscriber)? {
        self.clients[id]?.subscriber
    }

    /// A new subscriber id, unique across the WebSocket and local servers.
    public func makeSubscriberID() -> SubscriberID {
        self.subscriberIDs.next()
    }

    /// What the feed streams, instrument by instrument, with subscriber counts per mode.
    public func indexSummary() -> [InstrumentSubscriptionSummary] {
        self.index.summary().sorted { $0.instrument.description < $1.instrument.description }
    }

    /// The latest known tick of `instrument` as a frame for a subscriber at `mode`, if one arrived
    /// at that mode or higher: live fan-out never gives a holder of `mode` a tick of a lower one.
    public func latestFrame(for instrument: Instrument, mode: SubscriptionMode) -> ByteBuffer? {
        guard let tick = self.latestTicks[instrument], tick.mode >= mode else { return nil }
        return MarketDataEnvelope.frame(for: tick, outerMode: mode, broker: self.configuration.brokerName, allocator: self.allocator)
    }

    // MARK: Observers

    /// Starts telling `observer` about feed state and index changes, until ``removeObserver(_:)``.
    public func addObserver(_ observer: any HubObserver) {
        self.eventLoop.preconditionInEventLoop()
        self.observers[ObjectIdentifier(observer)] = observer
    }

    public func removeObserver(_ observer: any HubObserver) {
        self.observers[ObjectIdentifier(observer)] = nil
    }

    private func notifyBrokerSubscription(_ action: BrokerSubscriptionUpdate.Action, _ instrument: Instrument, _ mode: SubscriptionMode) {
        guard !self.observers.isEmpty else { return }
        let update = BrokerSubscriptionUpdate(action: action, instrument: instrument, mode: mode)
        for observer in self.observers.values {
            observer.brokerSubscriptionChanged(update)
        }
    }

    // MARK: Taps

    /// Starts handing `tap` every tick of `instruments`, until ``removeTap(_:)``.
    public func addTap(_ tap: any TickTap, for instruments: [Instrument]) {
        self.eventLoop.preconditionInEventLoop()
        for instrument in Set(instruments) {
            self.taps[instrument, default: []].append(tap)
        }
    }

    /// Stops handing `tap` ticks, for every instrument it was added for.
    public func removeTap(_ tap: any TickTap) {
        self.eventLoop.preconditionInEventLoop()
        for instrument in Array(self.taps.keys) {
            self.taps[instrument]?.removeAll { $0 === tap }
            if self.taps[instrument]?.isEmpty == true { self.taps[instrument] = nil }
        }
    }

    // MARK: Subscribers

    /// Makes `subscriber` known to the hub. Subscriptions of an unregistered subscriber are refused.
    public func register(_ subscriber: any MarketDataSubscriber) {
        self.eventLoop.preconditionInEventLoop()
        self.clients[subscriber.subscriberID] = ClientState(subscriber: subscriber, loopBatch: self.loopBatchIndex(for: subscriber))
    }

    /// Which of ``loopBatches`` serves `subscriber`, or `nil` for a subscriber on the hub's loop.
    private func loopBatchIndex(for subscriber: any MarketDataSubscriber) -> Int? {
        guard let loop = subscriber.deliveryEventLoop, loop !== self.eventLoop else { return nil }
        if let index = self.loopBatches.firstIndex(where: { $0.eventLoop === loop }) { return index }
        self.loopBatches.append(LoopBatch(eventLoop: loop))
        return self.loopBatches.count - 1
    }

    /// The subscriber as the index stores it, if it is registered.
    private func member(_ subscriber: any MarketDataSubscriber) -> Member? {
        self.clients[subscriber.subscriberID].map { Member(subscriber, loopBatch: $0.loopBatch) }
    }

    /// Forgets `subscriber` and releases all its subscriptions and requests (a disconnect).
    public func remove(_ subscriber: any MarketDataSubscriber) {
        _ = self.unsubscribeAll(subscriber)
        self.clients[subscriber.subscriberID] = nil
    }

    /// Subscribes `subscriber` to each instrument at `mode` (with `depth` levels at Depth).
    ///
    /// An instrument the feed already serves at this mode and depth or more is confirmed at once;
    /// the others wait until the feed has really taken them, joining any request already on its
    /// way. `completion` runs on the loop with one outcome per instrument, in order, once all are
    /// known; a subscribed outcome carries the depth the feed serves when it is not the one asked.
    public func subscribe(
        _ subscriber: any MarketDataSubscriber,
        to instruments: [Instrument],
        mode: SubscriptionMode,
        depth: Int,
        completion: @escaping ([SubscribeOutcome]) -> Void
    ) {
        self.eventLoop.preconditionInEventLoop()
        guard let member = self.member(subscriber) else {
            completion(instruments.map { _ in .refused(message: "Subscription failed") })
            return
        }
        guard self.reconciler.acceptsSubscriptions else {
            completion(instruments.map { _ in .refused(message: "Broker feed is not connected") })
            return
        }
        let target = FeedTarget(mode: mode, depth: depth)
        var outcomes = [SubscribeOutcome?](repeating: nil, count: instruments.count)
        var waiting: [Int] = []
        for (position, instrument) in instruments.enumerated() {
            if let served = self.reconciler.serves(instrument, target) {
                self.hold(member, instrument, target: target)
                outcomes[position] = Self.outcome(of: served, for: target)
            } else {
                waiting.append(position)
            }
        }
        guard !waiting.isEmpty else {
            completion(outcomes.map { $0! })
            return
        }
        self.nextRequestNumber += 1
        let number = self.nextRequestNumber
        self.pendingSubscribes[number] = PendingSubscribe(outcomes: outcomes, unresolved: waiting.count, completion: completion)
        for position in waiting {
            self.waiters[instruments[position], default: []].append(
                Waiter(request: number, position: position, member: member, target: target)
            )
        }
        self.updateDesired(waiting.map { instruments[$0] })
    }

    /// The outcome for a holder of `target` of what the feed serves.
    private static func outcome(of served: FeedReconcilerStateMachine.Served, for target: FeedTarget) -> SubscribeOutcome {
        guard target.mode == .depth else { return .subscribed(actualDepth: nil) }
        let levels = served.levels ?? served.target.depth
        return .subscribed(actualDepth: levels == target.depth ? nil : levels)
    }

    private func hold(_ member: Member, _ instrument: Instrument, target: FeedTarget) {
        self.index.add(member, instrument, target.mode, depth: target.depth)
        self.clients[member.id]?.subscriptions.append(SubscriptionKey(instrument: instrument, mode: target.mode))
    }

    /// Removes one subscription of `subscriber`, or cancels its request still waiting for the
    /// feed (whose outcome is then a refusal); returns whether either existed.
    @discardableResult
    public func unsubscribe(_ subscriber: any MarketDataSubscriber, from instrument: Instrument, mode: SubscriptionMode) -> Bool {
        self.eventLoop.preconditionInEventLoop()
        guard let member = self.member(subscriber) else { return false }
        let removed = self.index.remove(member, instrument, mode)
        if removed { self.clients[member.id]?.subscriptions.remove(SubscriptionKey(instrument: instrument, mode: mode)) }
        let cancelled = self.cancelWaiters(of: member.id, on: instrument) { $0.target.mode == mode }
        guard removed || cancelled else { return false }
        self.updateDesired([instrument])
        return true
    }

    /// Removes every subscription and waiting request of `subscriber`; returns them, the
    /// subscriptions in the order they were made.
    public func unsubscribeAll(_ subscriber: any MarketDataSubscriber) -> [(instrument: Instrument, mode: SubscriptionMode)] {
        self.eventLoop.preconditionInEventLoop()
        guard let state = self.clients[subscriber.subscriberID] else { return [] }
        let member = Member(subscriber, loopBatch: state.loopBatch)
        self.clients[member.id]?.subscriptions.removeAll()
        var released = state.subscriptions.map { ($0.instrument, $0.mode) }
        for key in state.subscriptions {
            self.index.remove(member, key.instrument, key.mode)
        }
        let requested = self.requests(of: member.id)
        for instrument in Set(requested.map(\.instrument)) {
            self.cancelWaiters(of: member.id, on: instrument) { _ in true }
        }
        released += requested.filter { request in !released.contains { $0 == (request.instrument, request.mode) } }
        self.updateDesired(released.map(\.0))
        return released
    }

    /// The subscriptions `subscriber` holds, in the order they were made.
    public func subscriptions(of subscriber: any MarketDataSubscriber) -> [(instrument: Instrument, mode: SubscriptionMode)] {
        self.clients[subscriber.subscriberID]?.subscriptions.map { ($0.instrument, $0.mode) } ?? []
    }

    /// What `subscriber` holds or has asked for and still waits for: what an unsubscribe can end.
    public func requestedSubscriptions(of subscriber: any MarketDataSubscriber) -> [(instrument: Instrument, mode: SubscriptionMode)] {
        let held = self.subscriptions(of: subscriber)
        return held + self.requests(of: subscriber.subscriberID).filter { request in !held.contains { $0 == request } }
    }

    private func requests(of id: SubscriberID) -> [(instrument: Instrument, mode: SubscriptionMode)] {
        self.waiters.flatMap { instrument, list in list.filter { $0.member.id == id }.map { (instrument, $0.target.mode) } }
    }

    /// Refuses `id`'s waiting requests on `instrument` that match; returns whether there were any.
    @discardableResult
    private func cancelWaiters(of id: SubscriberID, on instrument: Instrument, where matches: (Waiter) -> Bool) -> Bool {
        guard let list = self.waiters[instrument] else { return false }
        let cancelled = list.filter { $0.member.id == id && matches($0) }
        let kept = list.filter { !($0.member.id == id && matches($0)) }
        guard !cancelled.isEmpty else { return false }
        self.waiters[instrument] = kept.isEmpty ? nil : kept
        for waiter in cancelled {
            self.resolve(waiter, .refused(message: "Unsubscribed before the broker confirmed the subscription"))
        }
        return true
    }

    private func resolve(_ waiter: Waiter, _ outcome: SubscribeOutcome) {
        guard var pending = self.pendingSubscribes[waiter.request] else { return }
        pending.outcomes[waiter.position] = outcome
        pending.unresolved -= 1
        if pending.unresolved > 0 {
            self.pendingSubscribes[waiter.request] = pending
        } else {
            self.pendingSubscribes[waiter.request] = nil
            pending.completion(pending.outcomes.map { $0! })
        }
    }

    // MARK: Desired state and the feed

    /// What the feed must serve for `instrument`: what its holders and its waiting requests need.
    private func desiredTarget(_ instrument: Instrument) -> FeedTarget? {
        var target = self.index.heldTarget(instrument)
        for waiter in self.waiters[instrument] ?? [] {
            target = target.map { $0.union(waiter.target) } ?? waiter.target
        }
        return target
    }

    private func updateDesired(_ instruments: [Instrument]) {
        var seen = Set<Instrument>()
        let changes = instruments.compactMap { instrument in seen.insert(instrument).inserted ? (instrument, self.desiredTarget(instrument)) : nil }
        self.carryOut(self.reconciler.setDesired(changes, now: .now()))
    }

    /// Starts the feed afresh (`oactl connect`, a broker switch, the agent's start); every
    /// subscription is asked of the new feed at its real mode and depth once it is up.
    /// `completion` runs on the loop after that.
    public func connectFeed(_ request: FeedStartRequest, completion: @escaping (Result<Void, FeedStartFailure>) -> Void) {
        self.eventLoop.preconditionInEventLoop()
        self.reconciler.startRequested()
        self.sendStart(request, completion: completion)
    }

    /// Stops the feed until the next ``connectFeed(_:completion:)``; the subscriptions stay, and
    /// requests waiting for the feed are refused. `completion` runs on the loop once it stopped.
    public func disconnectFeed(completion: @escaping () -> Void) {
        self.eventLoop.preconditionInEventLoop()
        self.carryOut(self.reconciler.stopped())
        let hub = NIOLoopBound(self, eventLoop: self.eventLoop)
        let done = LoopTransfer(completion)
        self.commands.send(.stop(reply: { hub.eventLoop.execute { done.value() } }))
    }

    /// The credentials may have changed (a configuration reload): a failed feed retries at once.
    public func credentialsChanged() {
        self.eventLoop.preconditionInEventLoop()
        self.carryOut(self.reconciler.credentialsChanged(now: .now()))
    }

    private func sendStart(_ request: FeedStartRequest, completion: ((Result<Void, FeedStartFailure>) -> Void)?) {
        let hub = NIOLoopBound(self, eventLoop: self.eventLoop)
        let done = completion.map { LoopTransfer($0) }
        self.commands.send(
            .start(
                request,
                reply: { result in
                    hub.eventLoop.execute {
                        let failure: String?
                        switch result {
                        case .success: failure = nil
                        case .failure(let error): failure = error.reason
                        }
                        hub.value.carryOut(hub.value.reconciler.startFinished(failure: failure, now: .now()))
                        done?.value(result)
                    }
                }
            )
        )
    }

    /// Carries out the reconciler's decisions.
    private func carryOut(_ actions: [FeedReconcilerStateMachine.Action]) {
        let hub = NIOLoopBound(self, eventLoop: self.eventLoop)
        for action in actions {
            switch action {
            case .subscribe(let instruments, let target):
                self.commands.send(
                    .subscribe(
                        instruments,
                        target.mode,
                        depth: target.requestedDepth,
                        reply: { outcomes in
                            hub.eventLoop.execute {
                                let hub = hub.value
                                hub.carryOut(hub.reconciler.subscribeAnswered(instruments, target: target, outcomes: outcomes, now: .now()))
                            }
                        }
                    )
                )
            case .unsubscribe(let instruments):
                for instrument in instruments {
                    self.coalescers[instrument] = nil
                    self.latestTicks[instrument] = nil
                    self.notifyBrokerSubscription(.unsubscribed, instrument, self.reconciler.served(instrument)?.target.mode ?? .ltp)
                }
                self.commands.send(
                    .unsubscribe(
                        instruments,
                        reply: {
                            hub.eventLoop.execute { hub.value.carryOut(hub.value.reconciler.unsubscribed(instruments, now: .now())) }
                        }
                    )
                )
            case .startFeed:
                self.logger.notice("starting the feed again", metadata: ["broker": "\(self.configuration.brokerName)"])
                self.sendStart(FeedStartRequest(), completion: nil)
            case .scheduleRestart(let deadline):
                self.eventLoop.scheduleTask(deadline: deadline) {
                    hub.value.carryOut(hub.value.reconciler.restartDue(now: .now()))
                }
            case .checkCredentials(let delay):
                self.eventLoop.scheduleTask(in: delay) {
                    hub.value.commands.send(
                        .checkCredentials(reply: { changed in
                            hub.eventLoop.execute { hub.value.carryOut(hub.value.reconciler.credentialsChecked(changed: changed, now: .now())) }
                        })
                    )
                }
            case .answered(let instrument, let answer):
                if case .served(let served) = answer { self.notifyBrokerSubscription(.subscribed, instrument, served.target.mode) }
                self.answerWaiters(on: instrument, answer)
            case .refuseWaiting(let reason):
                let instruments = Array(self.waiters.keys)
                for instrument in instruments {
                    self.answerWaiters(on: instrument, .refused(message: reason))
                }
            }
        }
    }

    /// Resolves the requests waiting for `instrument` that `answer` settles: held when what the
    /// feed now serves covers them, refused with the feed's message when it refused; the others
    /// wait for the next request, which the reconciler sends for what they still need.
    private func answerWaiters(on instrument: Instrument, _ answer: FeedReconcilerStateMachine.Answer) {
        guard let list = self.waiters.removeValue(forKey: instrument) else { return }
        var kept: [Waiter] = []
        for waiter in list {
            if let served = self.reconciler.serves(instrument, waiter.target) {
                self.hold(waiter.member, instrument, target: waiter.target)
                self.resolve(waiter, Self.outcome(of: served, for: waiter.target))
            } else if case .refused(let message) = answer {
                self.resolve(waiter, .refused(message: message))
            } else {
                kept.append(waiter)
            }
        }
        if !kept.isEmpty { self.waiters[instrument] = kept }
        self.updateDesired([instrument])
    }

    // MARK: Counters reported by connections

    /// A connection dropped frames in favour of newer ones.
    public func recordConflated(_ count: Int) {
        self.sharedCounters.recordConflated(count)
    }

    /// A connection was closed for being too slow.
    public func recordSlowConsumerClosed() {
        self.sharedCounters.recordSlowConsumerClosed()
    }

    // MARK: Fan-out

    /// Delivers a batch of ticks and flushes each receiving connection once.
    public func publish(_ ticks: [Tick]) {
        self.eventLoop.preconditionInEventLoop()
        let deadline = NIODeadline.now()
        let now = Int64(truncatingIfNeeded: deadline.uptimeNanoseconds)
        let wallClock = WallClock.epochMilliseconds()
        self.lastTickAt = deadline
        let receivedAt = self.taps.isEmpty ? 0 : WallClock.epochNanoseconds()
        for var tick in ticks {
            self.counters.ticksReceived += 1
            if let timestamp = tick.timestamp {
                // Both are positive, so the difference cannot overflow; a timestamp that is no date
                // is delivered as sent and left out of the latency.
                if let sentAt = WallClock.milliseconds(fromEpochTimestamp: timestamp) {
                    self.counters.feedLatency.record(milliseconds: wallClock - sentAt)
                }
            } else if !tick.hasTimestamp {
                tick.timestamp = wallClock
            }
            if self.index.holds(tick.instrument) {
                self.latestTicks[tick.instrument] = tick
            }
            if !self.taps.isEmpty, let taps = self.taps[tick.instrument] {
                for tap in taps { tap.tapped(tick, receivedAt: receivedAt) }
            }
            self.deliver(tick, now: now)
        }
        self.flushTouched()
    }

    /// Passes an order update from the feed to the observers that relay it (the WebSocket server).
    func publishOrderUpdate(_ message: ByteBuffer) {
        self.eventLoop.preconditionInEventLoop()
        self.counters.orderUpdatesReceived += 1
        for observer in self.observers.values {
            observer.orderUpdateReceived(message)
        }
    }

    func feedStateChanged(_ state: FeedConnectionState) {
        guard state != self.feedState else { return }
        self.logger.info("feed state changed", metadata: ["broker": "\(self.configuration.brokerName)", "state": "\(state)"])
        self.feedState = state
        self.published.update(feedState: state)
        switch state {
        case .disconnected: self.latestTicks.removeAll()
        case .reconnecting: self.counters.feedReconnects += 1
        case .failed(let reason): self.carryOut(self.reconciler.feedFailed(reason: reason, now: .now()))
        case .connecting, .connected: break
        }
        guard !self.observers.isEmpty else { return }
        let status = self.status()
        for observer in self.observers.values {
            observer.feedStateChanged(status)
        }
    }

    private func deliver(_ tick: Tick, now: Int64) {
        var frames = TickFrames(tick: tick)
        let coalesce = self.configuration.ltpThrottle.nanoseconds > 0
        var ltpDecision: Bool?
        self.index.forEachRecipient(of: tick.instrument, tickMode: tick.mode) { member, mode in
            guard member.subscriber.takesFrames else { return }
            if mode == .ltp && coalesce {
                if ltpDecision == nil { ltpDecision = self.offerLTP(tick, now: now) }
                guard ltpDecision == true else {
                    self.counters.ltpFramesCoalesced += 1
                    return
                }
            }
            let frame = frames.frame(for: mode, broker: self.configuration.brokerName, allocator: self.allocator)
            self.send(frame, to: member, instrument: tick.instrument, mode: mode)
        }
    }

    private func send(_ frame: ByteBuffer, to member: Member, instrument: Instrument, mode: SubscriptionMode) {
        self.counters.framesDelivered += 1
        if let batch = member.loopBatch {
            self.loopBatches[batch].frames.append(LoopDelivery.Frame(frame: frame, subscriber: member.subscriber, instrument: instrument, mode: mode))
        } else if member.subscriber.enqueue(frame, instrument: instrument, mode: mode) {
            self.touched.append(member.subscriber)
        }
    }

    /// Flushes the subscribers on the hub's loop, then hands each other loop its frames of this
    /// batch in one task.
    private func flushTouched() {
        for subscriber in self.touched {
            subscriber.flushEnqueued()
        }
        self.touched.removeAll(keepingCapacity: true)
        for index in self.loopBatches.indices where !self.loopBatches[index].frames.isEmpty {
            let delivery = LoopDelivery(frames: self.loopBatches[index].frames)
            self.loopBatches[index].frames.removeAll(keepingCapacity: true)
            self.loopBatches[index].eventLoop.execute { delivery.deliver() }
        }
    }

    /// Whether LTP subscribers get this tick now; if not, it is held and a flush is scheduled.
    private func offerLTP(_ tick: Tick, now: Int64) -> Bool {
        var slot =
            self.coalescers[tick.instrument]
            ?? CoalescerSlot(coalescer: LTPCoalescer(windowNanoseconds: self.configuration.ltpThrottle.nanoseconds))
        let decision = slot.coalescer.offer(now: now)
        switch decision {
        case .sendNow:
            break
        case .hold:
            slot.pending = tick
        case .holdAndScheduleFlush(let deadline):
            slot.pending = tick
            let instrument = tick.instrument
            let hub = NIOLoopBound(self, eventLoop: self.eventLoop)
            self.eventLoop.scheduleTask(deadline: .uptimeNanoseconds(UInt64(max(0, deadline)))) {
                hub.value.flushLTP(instrument)
            }
        }
        self.coalescers[tick.instrument] = slot
        return decision == .sendNow
    }

    private func flushLTP(_ instrument: Instrument) {
        guard var slot = self.coalescers[instrument] else { return }
        let now = Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds)
        let due = slot.coalescer.flush(now: now)
        let pending = slot.pending
        slot.pending = nil
        self.coalescers[instrument] = slot
        guard due, let tick = pending else { return }
        var frames = TickFrames(tick: tick)
        self.index.forEachRecipient(of: instrument, tickMode: tick.mode) { member, mode in
            guard mode == .ltp, member.subscriber.takesFrames else { return }
            let frame = frames.frame(for: .ltp, broker: self.configuration.brokerName, allocator: self.allocator)
            self.send(frame, to: member, instrument: instrument, mode: .ltp)
        }
        self.flushTouched()
    }
}

@available(*, unavailable)
extension StreamingHub: Sendable {}

/// A subscriber as the index stores it: compared by identity, holding the reference for delivery.
private struct Member: Hashable {
    let id: SubscriberID
    let subscriber: any MarketDataSubscriber
    /// The subscriber's entry in the hub's loop batches; `nil` when it lives on the hub's loop.
    let loopBatch: Int?

    init(_ subscriber: any MarketDataSubscriber, loopBatch: Int?) {
        self.id = subscriber.subscriberID
        self.subscriber = subscriber
        self.loopBatch = loopBatch
    }

    static func == (lhs: Member, rhs: Member) -> Bool { lhs.id == rhs.id }
    func hash(into hasher: inout Hasher) { hasher.combine(self.id) }
}

private struct SubscriptionKey: Hashable {
    var instrument: Instrument
    var mode: SubscriptionMode
}

private struct ClientState {
    let subscriber: any MarketDataSubscriber
    let loopBatch: Int?
    var subscriptions: OrderedSet<SubscriptionKey> = []
}

/// The frames of the current batch of ticks for the subscribers of one event loop.
private struct LoopBatch {
    let eventLoop: any EventLoop
    var frames: [LoopDelivery.Frame] = []
}

/// One loop's share of a batch of ticks, delivered on that loop: every frame enqueued, then each
/// subscriber that took one flushed once.
///
/// `@unchecked Sendable`: the subscribers travel to the loop they live on and are touched only
/// there; the frames are shared read-only, and `ByteBuffer` counts its references atomically.
private struct LoopDelivery: @unchecked Sendable {
    struct Frame {
        let frame: ByteBuffer
        let subscriber: any MarketDataSubscriber
        let instrument: Instrument
        let mode: SubscriptionMode
    }

    let frames: [Frame]

    func deliver() {
        var touched: [any MarketDataSubscriber] = []
        for item in self.frames where item.subscriber.enqueue(item.frame, instrument: item.instrument, mode: item.mode) {
            touched.append(item.subscriber)
        }
        for subscriber in touched {
            subscriber.flushEnqueued()
        }
    }
}

private struct CoalescerSlot {
    var coalescer: LTPCoalescer
    var pending: Tick?
}

/// A subscribe call with instruments still waiting for the feed.
private struct PendingSubscribe {
    var outcomes: [SubscribeOutcome?]
    var unresolved: Int
    let completion: ([SubscribeOutcome]) -> Void
}

/// One instrument of a subscribe call, waiting for the feed to serve it.
private struct Waiter {
    let request: UInt64
    /// Its place in the call's instruments and outcomes.
    let position: Int
    let member: Member
    let target: FeedTarget
}

/// The frames of one tick: its `data` encoded once, and one envelope per receiver mode (with its
/// WebSocket header in front, see ``PreframedText``), built the first time a receiver at that mode
/// needs it and then shared by all of them.
private struct TickFrames {
    let tick: Tick
    private var data: ByteBuffer?
    private var ltpFrame: ByteBuffer?
    private var quoteFrame: ByteBuffer?
    private var depthFrame: ByteBuffer?

    init(tick: Tick) {
        self.tick = tick
    }

    mutating func frame(for mode: SubscriptionMode, broker: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        switch mode {
        case .ltp: if let existing = self.ltpFrame { return existing }
        case .quote: if let existing = self.quoteFrame { return existing }
        case .depth: if let existing = self.depthFrame { return existing }
        }
        if self.data == nil {
            var buffer = allocator.buffer(capacity: self.tick.depth == nil ? 384 : 1536)
            MarketDataEnvelope.writeData(of: self.tick, into: &buffer)
            self.data = buffer
        }
        let data = self.data!
        var frame = allocator.buffer(capacity: PreframedText.headroom + data.readableBytes + self.tick.instrument.symbol.utf8.count * 2 + 96)
        PreframedText.reserveHeadroom(in: &frame)
        MarketDataEnvelope.writeFrame(instrument: self.tick.instrument, outerMode: mode, data: data, broker: broker, into: &frame)
        PreframedText.writeHeader(into: &frame)
        switch mode {
        case .ltp: self.ltpFrame = frame
        case .quote: self.quoteFrame = frame
        case .depth: self.depthFrame = frame
        }
        return frame
    }
}

/// Hands ticks from feed threads to the hub's loop, one loop turn per burst rather than per tick.
///
/// With a batching window, a burst that starts within the window after the last fan-out waits for
/// the window's end, so that what arrives meanwhile goes out with it.
private final class HubInbox: FeedEventSink {
    private struct State {
        var ticks: [Tick] = []
        var drainScheduled = false
        /// When the last drain ran, in uptime nanoseconds.
        var lastDrain: Int64 = 0
        /// Work that must run once the ticks received before it have been fanned out.
        var afterDrain: [@Sendable () -> Void] = []
    }

    private let eventLoop: any EventLoop
    private let hub: NIOLoopBound<StreamingHub>
    private let batchWindow: NIOLockedValueBox<Int64>
    private let state = NIOLockedValueBox(State())

    init(hub: StreamingHub, batchWindow: NIOLockedValueBox<Int64>) {
        self.eventLoop = hub.eventLoop
        self.hub = NIOLoopBound(hub, eventLoop: hub.eventLoop)
        self.batchWindow = batchWindow
    }

    func receive(_ tick: Tick) {
        // Only the first tick of a burst schedules the drain; the others just join it.
        let lastDrain: Int64? = self.state.withLockedValue { state in
            state.ticks.append(tick)
            guard !state.drainScheduled else { return nil }
            state.drainScheduled = true
            return state.lastDrain
        }
        guard let lastDrain else { return }
        let window = self.batchWindow.withLockedValue { $0 }
        let delay = window > 0 ? lastDrain + window - Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds) : 0
        if delay > 0 {
            self.eventLoop.scheduleTask(in: .nanoseconds(delay)) { self.drain() }
        } else {
            self.eventLoop.execute { self.drain() }
        }
    }

    /// Reported after the ticks received before it, so that a disconnect is never followed by
    /// ticks from before it.
    func feedStateChanged(_ state: FeedConnectionState) {
        let hub = self.hub
        self.afterPendingTicks { hub.value.feedStateChanged(state) }
    }

    func receiveOrderUpdate(_ message: ByteBuffer) {
        let hub = self.hub
        self.eventLoop.execute { hub.value.publishOrderUpdate(message) }
    }

    /// Runs once the ticks received so far have been fanned out: after the drain already
    /// scheduled, if any, or on the hub's loop at once.
    func afterPendingTicks(_ body: @escaping @Sendable () -> Void) {
        let waitsForDrain = self.state.withLockedValue { state in
            if state.drainScheduled { state.afterDrain.append(body) }
            return state.drainScheduled
        }
        if !waitsForDrain {
            self.eventLoop.execute(body)
        }
    }

    private func drain() {
        let (ticks, afterDrain) = self.state.withLockedValue { state in
            state.drainScheduled = false
            state.lastDrain = Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds)
            let ticks = state.ticks
            state.ticks = []
            state.ticks.reserveCapacity(ticks.count)
            defer { state.afterDrain.removeAll() }
            return (ticks, state.afterDrain)
        }
        self.hub.value.publish(ticks)
        for body in afterDrain { body() }
    }
}

extension StreamingHub {
    /// ``connectFeed(_:completion:)`` from any task.
    public static func connectFeed(_ hub: NIOLoopBound<StreamingHub>, _ request: FeedStartRequest) async -> Result<Void, FeedStartFailure> {
        let promise = hub.eventLoop.makePromise(of: Result<Void, FeedStartFailure>.self)
        hub.eventLoop.execute { hub.value.connectFeed(request) { promise.succeed($0) } }
        return (try? await promise.futureResult.get()) ?? .failure(FeedStartFailure(reason: "The agent is shutting down."))
    }

    /// ``disconnectFeed(completion:)`` from any task.
    public static func disconnectFeed(_ hub: NIOLoopBound<StreamingHub>) async {
        let promise = hub.eventLoop.makePromise(of: Void.self)
        hub.eventLoop.execute { hub.value.disconnectFeed { promise.succeed() } }
        try? await promise.futureResult.get()
    }
}
