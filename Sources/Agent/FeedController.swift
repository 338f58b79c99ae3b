import Brokers
import LocalIPC
import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore
import StreamingHub
import WireJSON

/// Owns the feed: which broker's adapter runs, connecting it, switching it to another broker,
/// and stopping it, for every client at once.
///
/// Every call runs on the hub's feed command queue (``FeedCommandQueue``), one at a time and in
/// order with subscribe and unsubscribe requests, so a switch never races a subscription.
final class FeedController: FeedControl, Sendable {
    private struct State {
        var adapter: (any BrokerAdapter)?
        var brokerName: String
        var brokers: [String: BrokerSettings]
        /// Set by ``disconnect()``: the feed stays off until someone connects it again.
        var stoppedOnRequest = false
    }

    private let state: NIOLockedValueBox<State>
    private let sink: any FeedEventSink
    private let hub: NIOLoopBound<StreamingHub>
    private let feedLoop: any EventLoop
    private let logger: Logger
    private let environment: [String: String]

    init(
        configuration: AgentConfiguration,
        sink: any FeedEventSink,
        hub: NIOLoopBound<StreamingHub>,
        feedLoop: any EventLoop,
        environment: [String: String],
        logger: Logger
    ) {
        self.state = NIOLockedValueBox(State(adapter: nil, brokerName: configuration.broker, brokers: configuration.brokers))
        self.sink = sink
        self.hub = hub
        self.feedLoop = feedLoop
        self.environment = environment
        self.logger = logger
    }

    private var adapter: (any BrokerAdapter)? { self.state.withLockedValue { $0.adapter } }

    /// The running adapter's member for `status`, if it has one (the replay position).
    var statusDetail: (key: String, value: JSONValue)? { self.adapter?.statusDetail }

    /// Broker settings from a configuration reload; they apply at the next connect.
    func updateBrokerSettings(_ brokers: [String: BrokerSettings]) {
        self.state.withLockedValue { $0.brokers = brokers }
    }

    // MARK: FeedControl

    /// Subscribes through the running feed. A feed that failed (or never started) is started
    /// again first: clients closed with 1012 after a failure reconnect and re-subscribe, and that
    /// is what restarts it.
    func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) async -> [SubscribeOutcome] {
        let (adapter, stopped) = self.state.withLockedValue { ($0.adapter, $0.stoppedOnRequest) }
        if let adapter, !Self.hasFailed(adapter) {
            return await adapter.subscribe(instruments, mode: mode, depth: depth)
        }
        guard !stopped else {
            return instruments.map { _ in .refused(message: "Broker feed is not connected") }
        }
        self.logger.notice("restarting the failed feed for a new subscription")
        if case .failure(let error) = await self.connect(broker: nil, credentials: [:]) {
            return instruments.map { _ in .refused(message: error.message) }
        }
        guard let restarted = self.adapter else { return instruments.map { _ in .refused(message: "Broker feed is not connected") } }
        return await restarted.subscribe(instruments, mode: mode, depth: depth)
    }

    private static func hasFailed(_ adapter: any BrokerAdapter) -> Bool {
        if case .failed = adapter.connectionState { return true }
        return false
    }

    func unsubscribe(_ instruments: [Instrument]) async {
        await self.adapter?.unsubscribe(instruments)
    }

    // MARK: Switching

    /// Connects `broker` (or the current one) and streams every subscription the hub holds.
    /// Connecting the broker that is already connected, without new credentials, changes nothing.
    func connect(broker requested: String?, credentials: [String: String]) async -> Result<Void, RPCError> {
        let (current, currentName, brokers) = self.state.withLockedValue { ($0.adapter, $0.brokerName, $0.brokers) }
        let name = (requested ?? currentName).lowercased()
        let canonical: String
        do {
            canonical = try BrokerRegistry.supportedName(name)
        } catch {
            return .failure(
                .brokerUnavailable(
                    error.message,
                    extra: ["supported": .array(BrokerRegistry.supportedBrokers.map { .string($0) })]
                )
            )
        }
        self.state.withLockedValue { $0.stoppedOnRequest = false }
        // The running adapter's registry name, not its `brokerName`: a ZeroMQ feed reports the
        // `broker_name` it was configured with, which may be another broker's name.
        if let current, currentName == canonical, current.connectionState == .connected, credentials.isEmpty {
            return .success(())
        }
        if let current {
            await current.disconnect()
            self.state.withLockedValue { $0.adapter = nil }
        }
        let settings = brokers[canonical] ?? BrokerSettings()
        let adapter: any BrokerAdapter
        do {
            adapter = try BrokerRegistry.makeAdapter(
                named: canonical,
                settings: settings,
                eventLoop: self.feedLoop,
                logger: self.logger,
                credentials: credentials,
                environment: self.environment
            )
        } catch {
            self.sink.feedStateChanged(.failed(reason: error.message))
            return .failure(.brokerUnavailable(error.message))
        }
        let hub = self.hub
        let brokerName = adapter.brokerName
        try? await hub.eventLoop.submit { hub.value.setBrokerName(brokerName) }.get()
        self.state.withLockedValue { $0.brokerName = canonical }
        self.sink.feedStateChanged(.connecting)
        do {
            try await adapter.connect(sink: self.sink)
        } catch {
            let reason = "cannot connect to \(brokerName): \(error)"
            self.logger.error("feed connection failed", metadata: ["broker": "\(brokerName)", "error": "\(error)"])
            self.sink.feedStateChanged(.failed(reason: reason))
            return .failure(.brokerUnavailable(reason))
        }
        self.state.withLockedValue { $0.adapter = adapter }
        self.logger.info("feed connected", metadata: ["broker": "\(brokerName)"])
        await self.replaySubscriptions(to: adapter)
        return .success(())
    }

    /// Stops the feed; the hub keeps its subscriptions for the next ``connect(broker:credentials:)``.
    func disconnect() async {
        let adapter = self.state.withLockedValue { state in
            state.stoppedOnRequest = true
            defer { state.adapter = nil }
            return state.adapter
        }
        guard let adapter else { return }
        await adapter.disconnect()
        self.sink.feedStateChanged(.disconnected)
        self.logger.info("feed disconnected", metadata: ["broker": "\(adapter.brokerName)"])
    }

    /// Asks a newly connected feed for everything clients are subscribed to, grouped by mode.
    private func replaySubscriptions(to adapter: any BrokerAdapter) async {
        let hub = self.hub
        guard let summary = try? await hub.eventLoop.submit({ hub.value.indexSummary() }).get(), !summary.isEmpty else { return }
        for mode in SubscriptionMode.allCases {
            let instruments = summary.filter { $0.brokerMode == mode }.map(\.instrument)
            guard !instruments.isEmpty else { continue }
            let outcomes = await adapter.subscribe(instruments, mode: mode, depth: 5)
            let refused = zip(instruments, outcomes).filter { if case .refused = $1 { return true } else { return false } }
            for (instrument, _) in refused {
                self.logger.warning("the new feed refused a subscription", metadata: ["instrument": "\(instrument)"])
            }
        }
        self.logger.info("subscriptions replayed to the feed", metadata: ["instruments": "\(summary.count)"])
    }
}
