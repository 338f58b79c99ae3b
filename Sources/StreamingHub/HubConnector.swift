import MarketData
import NIOConcurrencyHelpers
import NIOCore

/// How a subscriber on any event loop reaches the hub, which is confined to its own loop.
///
/// Each call runs on the hub's loop: at once when the caller is already there (local clients,
/// recordings), otherwise as a task on that loop. Completions come back on the subscriber's
/// ``MarketDataSubscriber/deliveryEventLoop``. A subscriber's calls run in the order it made them,
/// and frames the hub sent before a completion arrive before it, so an acknowledgement is never
/// overtaken by market data sent before it, nor followed by data of a subscription it ended.
public struct HubConnector: Sendable {
    private let hub: NIOLoopBound<StreamingHub>
    private let subscriberIDs: SubscriberIDGenerator
    /// The broker name and feed state, for acknowledgements built on other loops.
    public let published: PublishedHubState
    private let counters: SharedHubCounters

    init(hub: NIOLoopBound<StreamingHub>, subscriberIDs: SubscriberIDGenerator) {
        self.hub = hub
        self.subscriberIDs = subscriberIDs
        self.published = hub.value.published
        self.counters = hub.value.sharedCounters
    }

    /// A new subscriber id, unique across all servers; callable from any thread.
    public func makeSubscriberID() -> SubscriberID {
        self.subscriberIDs.next()
    }

    /// Makes `subscriber` known to the hub (see ``StreamingHub/register(_:)``).
    public func register(_ subscriber: any MarketDataSubscriber) {
        self.onHub(subscriber) { hub, subscriber in hub.register(subscriber) }
    }

    /// Forgets `subscriber` and releases its subscriptions (see ``StreamingHub/remove(_:)``).
    public func remove(_ subscriber: any MarketDataSubscriber) {
        self.onHub(subscriber) { hub, subscriber in hub.remove(subscriber) }
    }

    /// Subscribes `subscriber` (see ``StreamingHub/subscribe(_:to:mode:depth:completion:)``);
    /// `completion` runs on the subscriber's loop.
    public func subscribe(
        _ subscriber: any MarketDataSubscriber,
        to instruments: [Instrument],
        mode: SubscriptionMode,
        depth: Int,
        completion: @escaping ([SubscribeOutcome]) -> Void
    ) {
        let reply = self.replying(to: subscriber, completion)
        self.onHub(subscriber) { hub, subscriber in
            hub.subscribe(subscriber, to: instruments, mode: mode, depth: depth) { reply($0) }
        }
    }

    /// Removes the given subscriptions of `subscriber`; `completion` runs on its loop once they
    /// are gone, with whether each existed.
    public func unsubscribe(
        _ subscriber: any MarketDataSubscriber,
        from subscriptions: [(instrument: Instrument, mode: SubscriptionMode)],
        completion: @escaping ([Bool]) -> Void
    ) {
        let reply = self.replying(to: subscriber, completion)
        let subscriptions = subscriptions.map { SubscriptionEntry(instrument: $0.instrument, mode: $0.mode) }
        self.onHub(subscriber) { hub, subscriber in
            reply(subscriptions.map { hub.unsubscribe(subscriber, from: $0.instrument, mode: $0.mode) })
        }
    }

    /// Removes every subscription of `subscriber`; `completion` runs on its loop with them, in
    /// the order they were made.
    public func unsubscribeAll(
        _ subscriber: any MarketDataSubscriber,
        completion: @escaping ([(instrument: Instrument, mode: SubscriptionMode)]) -> Void
    ) {
        let reply = self.replying(to: subscriber) { (entries: [SubscriptionEntry]) in
            completion(entries.map { ($0.instrument, $0.mode) })
        }
        self.onHub(subscriber) { hub, subscriber in
            reply(hub.unsubscribeAll(subscriber).map { SubscriptionEntry(instrument: $0.instrument, mode: $0.mode) })
        }
    }

    /// A connection dropped frames in favour of newer ones; callable from any thread.
    public func recordConflated(_ count: Int) {
        self.counters.recordConflated(count)
    }

    /// A connection was closed for being too slow; callable from any thread.
    public func recordSlowConsumerClosed() {
        self.counters.recordSlowConsumerClosed()
    }

    private func onHub(
        _ subscriber: any MarketDataSubscriber,
        _ body: @escaping (StreamingHub, any MarketDataSubscriber) -> Void
    ) {
        let hub = self.hub
        if hub.eventLoop.inEventLoop {
            body(hub.value, subscriber)
            return
        }
        let call = HubCall(subscriber: subscriber, body: body)
        hub.eventLoop.execute { call.body(hub.value, call.subscriber) }
    }

    /// Wraps `completion` so that, called on the hub's loop, it runs on the subscriber's loop.
    private func replying<Result>(
        to subscriber: any MarketDataSubscriber,
        _ completion: @escaping (Result) -> Void
    ) -> (Result) -> Void {
        guard let loop = subscriber.deliveryEventLoop, loop !== self.hub.eventLoop else { return completion }
        let transfer = LoopTransfer(completion)
        return { result in
            let result = LoopTransfer(result)
            loop.execute { transfer.value(result.value) }
        }
    }
}

/// A call a subscriber on another loop makes on the hub, travelling to the hub's loop.
///
/// `@unchecked Sendable`: see ``LoopTransfer``.
private struct HubCall: @unchecked Sendable {
    let subscriber: any MarketDataSubscriber
    let body: (StreamingHub, any MarketDataSubscriber) -> Void
}

/// An instrument and mode as they travel between loops.
private struct SubscriptionEntry {
    var instrument: Instrument
    var mode: SubscriptionMode
}

/// Carries a value that belongs to one event loop's objects to the hub's loop and back.
///
/// `@unchecked Sendable`: subscribers and their callbacks are touched by the hub only through
/// calls that are safe from its loop (``MarketDataSubscriber/subscriberID``,
/// ``MarketDataSubscriber/describe()``, ``MarketDataSubscriber/deliveryEventLoop``), and by
/// delivery and completions only on their own loop.
struct LoopTransfer<Value>: @unchecked Sendable {
    let value: Value

    init(_ value: Value) {
        self.value = value
    }
}

/// Hands out subscriber ids, unique across the WebSocket and local servers, from any thread.
final class SubscriberIDGenerator: Sendable {
    private let last = NIOLockedValueBox<UInt64>(0)

    func next() -> SubscriberID {
        SubscriberID(
            rawValue: self.last.withLockedValue { last in
                last += 1
                return last
            }
        )
    }
}

/// The hub's broker name and feed state, mirrored for readers on other loops.
public final class PublishedHubState: Sendable {
    private struct State {
        var brokerName: String
        var feedState: FeedConnectionState
    }

    private let state: NIOLockedValueBox<State>

    init(brokerName: String, feedState: FeedConnectionState) {
        self.state = NIOLockedValueBox(State(brokerName: brokerName, feedState: feedState))
    }

    /// The broker named in every frame and ack.
    public var brokerName: String { self.state.withLockedValue { $0.brokerName } }
    /// The feed's connection state as last reported.
    public var feedState: FeedConnectionState { self.state.withLockedValue { $0.feedState } }

    func update(brokerName: String) {
        self.state.withLockedValue { $0.brokerName = brokerName }
    }

    func update(feedState: FeedConnectionState) {
        self.state.withLockedValue { $0.feedState = feedState }
    }
}

/// Counters that connections on any loop update on their slow paths, without a hop to the hub.
final class SharedHubCounters: Sendable {
    private struct Counts {
        var framesConflated: UInt64 = 0
        var slowConsumersClosed: UInt64 = 0
    }

    private let counts = NIOLockedValueBox(Counts())

    var framesConflated: UInt64 { self.counts.withLockedValue { $0.framesConflated } }
    var slowConsumersClosed: UInt64 { self.counts.withLockedValue { $0.slowConsumersClosed } }

    func recordConflated(_ count: Int) {
        self.counts.withLockedValue { $0.framesConflated += UInt64(count) }
    }

    func recordSlowConsumerClosed() {
        self.counts.withLockedValue { $0.slowConsumersClosed += 1 }
    }
}
