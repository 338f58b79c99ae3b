import BrokerKit
import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore

/// Dhan's market data through Live Market Feed v2, as a ``BrokerAdapter``.
///
/// Two kinds of socket, each kept alive by its own ``FeedSupervisor``:
/// - the 5-level feed (`ws_url`, default `wss://api-feed.dhan.co`) for LTP, Quote and five-level
///   Depth, a ``FeedConnectionPool``: Dhan allows a user 5 connections of 5000 instruments each,
///   so by default a second to fifth connection opens as the ones before fill up, and more
///   instruments are refused with the reference pool's capacity message. `connect` starts it and
///   waits for its first connection so that refused credentials are `connect`'s error;
/// - the 20-level depth socket (`depth_ws_url`), opened on the first Depth request for 20 or
///   more levels of an NSE equity or derivative (Dhan serves 20 levels nowhere else, and to 50
///   instruments at most). Others fall back to five levels, which the ack's `actualDepth` says.
///
/// An instrument keeps its place in the 5-level pool while it streams on the depth socket, so it
/// can always come back to five levels (a downgrade cannot be refused).
///
/// The feed's state is the 5-level pool's: it carries almost every subscription and is what
/// clients are told about. The depth socket's states are logged; if it fails for good (its
/// retries run out, or Dhan refuses it), its instruments move to the 5-level feed's Full mode,
/// five levels deep, as the reference falls back when 20-level data stops, and later 20-level
/// requests are served five deep until the next `connect`. When the 5-level feed fails for
/// good, the depth socket is closed with it: the feed is down as a whole until it is started again.
///
/// Credentials (`client_id`, `access_token`) go in the URL query, as Dhan requires; a
/// `client_id` stored as OpenAlgo's `id:::key` is cut at the `:::`. They are read again before
/// every reconnect. Reconnects default to the agent's policy for every broker (1 s
/// doubling, at most 30 s, 5 attempts; OpenAlgo's Dhan adapter uses 5 s doubling, 60 s, 10); Dhan pings the client, and those pings count as signs of life
/// for the 90 s stall check, so a closed market is not a stall. The ``FeedTuningSettings`` keys
/// apply to both kinds of socket (`max_connections` up to 5 and `max_instruments_per_connection`
/// up to 5000 to the 5-level pool only).
package final class DhanFeed: BrokerAdapter {
    package static let name = "dhan"
    /// Where Dhan publishes its scrip master (no login needed).
    package static let defaultInstrumentsURL = "https://images.dhan.co/api-data/api-scrip-master.csv"
    static let initialConnectWait = TimeAmount.seconds(15)
    static let twentyLevels = 20
    static let fiveLevels = 5

    package let brokerName = DhanFeed.name
    private let context: BrokerAdapterContext
    private let webSocketURL: String
    private let depthWebSocketURL: String
    private let configuration: FeedSupervisor<DhanFeedCodec>.Configuration
    private let depthConfiguration: FeedSupervisor<DhanDepthFeedCodec>.Configuration
    private let limits: ConnectionPoolLimits
    private let state: NIOLockedValueBox<State>

    private struct State {
        var feed: FeedConnectionPool<DhanFeedCodec>?
        var depthFeed: FeedSupervisor<DhanDepthFeedCodec>?
        /// Set when the depth socket failed for good: 20-level requests are served five deep.
        var depthFeedFailed = false
        var sink: (any FeedEventSink)?
        var master: SymbolMaster?
        /// Instruments on the 20-level socket (the others stream on the 5-level feed, where
        /// these keep their places too).
        var depthInstruments: Set<Instrument> = []
    }

    /// Validates the settings; credentials and the master are read by ``connect(sink:)``.
    package init(context: BrokerAdapterContext) throws(BrokerConfigurationError) {
        self.context = context
        self.webSocketURL = context.settings["ws_url"] ?? DhanRequest.defaultURL
        self.depthWebSocketURL = context.settings["depth_ws_url"] ?? DhanRequest.defaultDepthURL
        for (key, url) in [("ws_url", self.webSocketURL), ("depth_ws_url", self.depthWebSocketURL)] {
            do {
                _ = try WebSocketURL(url)
            } catch {
                throw BrokerConfigurationError("[brokers.\(Self.name)] \(key): \(error.message)")
            }
        }
        let supervision = try FeedTuningSettings.supervision(
            context.settings,
            broker: Self.name,
            defaults: FeedSupervisorStateMachine.Configuration(
                reconnect: ReconnectPolicy(),
                stallTimeout: .seconds(90),
                stallCheckInterval: .seconds(30)
            )
        )
        let client = BrokerWebSocketClient.Configuration(keepalive: .ping(every: .seconds(30)))
        self.configuration = FeedSupervisor.Configuration(
            supervision: supervision,
            batching: try FeedTuningSettings.batching(
                context.settings,
                broker: Self.name,
                defaults: SubscriptionBatcher.Configuration(maximumInstrumentsPerMessage: DhanRequest.maximumInstrumentsPerMessage)
            ),
            client: client,
            controlFramesCountAsData: true
        )
        self.depthConfiguration = FeedSupervisor.Configuration(
            supervision: supervision,
            batching: try FeedTuningSettings.batching(
                context.settings,
                broker: Self.name,
                defaults: SubscriptionBatcher.Configuration(maximumInstrumentsPerMessage: DhanRequest.maximumDepthInstruments)
            ),
            client: client,
            controlFramesCountAsData: true
        )
        self.limits = try FeedTuningSettings.connectionPool(
            context.settings,
            broker: Self.name,
            brokerLimits: ConnectionPoolLimits(
                maximumConnections: DhanRequest.maximumConnections,
                maximumInstrumentsPerConnection: DhanRequest.maximumInstrumentsPerConnection
            )
        )
        self.state = NIOLockedValueBox(State())
    }

    /// The 5-level pool's state.
    package var connectionState: FeedConnectionState {
        self.state.withLockedValue { $0.feed }?.connectionState ?? .disconnected
    }

    package func connect(sink: any FeedEventSink) async throws {
        let credentials = try Self.credentials(self.context)
        let master = try await self.context.loadSymbolMaster(defaultURL: Self.defaultInstrumentsURL, cacheFileName: "dhan-api-scrip-master.csv") {
            bytes throws(SymbolMasterError) in try DhanScripMaster.parse(csv: bytes)
        }

        let baseURL = self.webSocketURL
        let context = self.context
        let configuration = self.configuration
        let feed = FeedConnectionPool(
            limits: self.limits,
            context: context,
            configuration: configuration,
            credentials: credentials,
            readCredentials: { context in try Self.credentials(context) },
            request: { credentials in try BrokerWebSocketRequest(DhanRequest.connection(baseURL: baseURL, credentials: credentials)) },
            codec: { logger in DhanFeedCodec(master: master, logger: logger) }
        )
        let (previousFeed, previousDepthFeed) = self.state.withLockedValue { state in
            defer { state = State(feed: feed, sink: sink, master: master) }
            return (state.feed, state.depthFeed)
        }
        await previousFeed?.stop()
        await previousDepthFeed?.stop()
        let feedSink = FeedStateObserver(forwardingTo: sink) { [weak self, weak feed] state in
            guard case .failed = state, let self, let feed else { return }
            self.feedFailed(feed)
        }
        do {
            try await feed.start(sink: feedSink, awaitingFirstConnectionWithin: Self.initialConnectWait)
        } catch {
            self.state.withLockedValue { $0.feed = nil }
            throw error
        }
    }

    package func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) async -> [SubscribeOutcome] {
        var plan = Plan()
        let outcomes = self.state.withLockedValue { state in
            instruments.map { instrument in self.place(instrument, mode: mode, depth: depth, state: &state, plan: &plan) }
        }
        plan.carryOut(mode: mode, depth: depth)
        return outcomes
    }

    package func unsubscribe(_ instruments: [Instrument]) async {
        let (feed, depthFeed, fromDepthFeed) = self.state.withLockedValue { state in
            let fromDepthFeed = instruments.filter { state.depthInstruments.remove($0) != nil }
            return (state.feed, state.depthFeed, fromDepthFeed)
        }
        // The pool unsubscribes only what streams on it; the depth socket's instruments just give up their places there.
        feed?.release(instruments)
        if !fromDepthFeed.isEmpty { depthFeed?.unsubscribe(fromDepthFeed) }
    }

    package func disconnect() async {
        let (feed, depthFeed) = self.state.withLockedValue { state in
            defer { state = State() }
            return (state.feed, state.depthFeed)
        }
        await depthFeed?.stop()
        await feed?.stop()
    }

    // MARK: placing subscriptions

    /// The supervisor calls one ``subscribe(_:mode:depth:)`` leads to, gathered under the lock
    /// and made after it.
    private struct Plan {
        var feed: FeedConnectionPool<DhanFeedCodec>?
        var depthFeed: FeedSupervisor<DhanDepthFeedCodec>?
        /// A depth socket created by this call, to start with this sink.
        var startDepthFeed: (any FeedEventSink)?
        /// Five-level feed subscriptions, grouped by the depth they are served at.
        var onFeed: [Int: [Instrument]] = [:]
        var onDepthFeed: [Instrument] = []
        var offFeed: [Instrument] = []
        var offDepthFeed: [Instrument] = []

        func carryOut(mode: SubscriptionMode, depth: Int) {
            if let sink = self.startDepthFeed { self.depthFeed?.start(sink: sink) }
            self.feed?.stopStreaming(self.offFeed)
            if !self.offDepthFeed.isEmpty { self.depthFeed?.unsubscribe(self.offDepthFeed) }
            for (served, instruments) in self.onFeed.sorted(by: { $0.key < $1.key }) {
                self.feed?.subscribe(instruments, mode: mode, depth: served)
            }
            if !self.onDepthFeed.isEmpty { self.depthFeed?.subscribe(self.onDepthFeed, mode: .depth, depth: DhanFeed.twentyLevels) }
        }
    }

    /// Decides where one instrument streams and records the calls that takes in `plan`.
    private func place(_ instrument: Instrument, mode: SubscriptionMode, depth: Int, state: inout State, plan: inout Plan) -> SubscribeOutcome {
        guard let master = state.master, let feed = state.feed else { return .refused(message: "Broker feed is not connected") }
        plan.feed = feed
        guard let entry = master.entry(for: instrument), let segment = DhanExchangeSegment(rawValue: entry.feedSegment) else {
            return .refused(message: symbolNotFoundMessage(instrument))
        }
        let wasSubscribed: Bool
        switch feed.reserve(instrument) {
        case .poolFull: return .refused(message: feed.capacityMessage())
        case .alreadyReserved: wasSubscribed = true
        case .reserved: wasSubscribed = false
        }
        let wasOnDepthFeed = state.depthInstruments.contains(instrument)
        let twentyLevels =
            mode == .depth && depth >= Self.twentyLevels && DhanRequest.supportsTwentyLevelDepth(segment) && !state.depthFeedFailed
            && (wasOnDepthFeed || state.depthInstruments.count < DhanRequest.maximumDepthInstruments)
        if twentyLevels {
            if wasSubscribed && !wasOnDepthFeed { plan.offFeed.append(instrument) }
            state.depthInstruments.insert(instrument)
            if let depthFeed = state.depthFeed {
                plan.depthFeed = depthFeed
            } else {
                plan.depthFeed = self.makeDepthFeed(master: master, state: &state, plan: &plan)
            }
            plan.onDepthFeed.append(instrument)
            return .subscribed(actualDepth: depth == Self.twentyLevels ? nil : Self.twentyLevels)
        }
        if wasOnDepthFeed {
            state.depthInstruments.remove(instrument)
            plan.depthFeed = state.depthFeed
            plan.offDepthFeed.append(instrument)
        }
        let served = mode == .depth ? Self.fiveLevels : depth
        plan.onFeed[served, default: []].append(instrument)
        return .subscribed(actualDepth: mode == .depth && served != depth ? served : nil)
    }

    private func makeDepthFeed(master: SymbolMaster, state: inout State, plan: inout Plan) -> FeedSupervisor<DhanDepthFeedCodec> {
        let baseURL = self.depthWebSocketURL
        let context = self.context
        let depthFeed = FeedSupervisor(
            configuration: self.depthConfiguration,
            makeRequest: { _ in
                try BrokerWebSocketRequest(DhanRequest.depthConnection(baseURL: baseURL, credentials: try Self.credentials(context)))
            },
            codec: DhanDepthFeedCodec(master: master, logger: self.context.logger),
            eventLoop: self.context.eventLoop,
            logger: self.context.logger
        )
        state.depthFeed = depthFeed
        if let sink = state.sink {
            plan.startDepthFeed = FeedStateObserver(ticksTo: sink, logger: self.context.logger) { [weak self, weak depthFeed] state in
                guard case .failed(let reason) = state, let self, let depthFeed else { return }
                self.depthFeedFailed(depthFeed, reason: reason)
            }
        }
        return depthFeed
    }

    /// Moves the depth socket's instruments to the 5-level feed's Full mode.
    private func depthFeedFailed(_ failed: FeedSupervisor<DhanDepthFeedCodec>, reason: String) {
        let (feed, instruments) = self.state.withLockedValue { state -> (FeedConnectionPool<DhanFeedCodec>?, [Instrument]) in
            guard state.depthFeed === failed else { return (nil, []) }
            defer {
                state.depthFeed = nil
                state.depthFeedFailed = true
                state.depthInstruments = []
            }
            return (state.feed, Array(state.depthInstruments))
        }
        guard let feed else { return }
        self.context.logger.warning(
            "dhan 20-level depth feed failed; its instruments stream five levels deep from the main feed",
            metadata: ["reason": "\(reason)", "instruments": "\(instruments.count)"]
        )
        feed.subscribe(instruments, mode: .depth, depth: Self.fiveLevels)
        Task { await failed.stop() }
    }

    /// The 5-level feed failed for good: the whole feed is down (clients are told so and the next
    /// subscription starts it again), so the depth socket is closed too rather than left
    /// streaming to nobody.
    private func feedFailed(_ failed: FeedConnectionPool<DhanFeedCodec>) {
        let depthFeed = self.state.withLockedValue { state -> FeedSupervisor<DhanDepthFeedCodec>? in
            guard state.feed === failed else { return nil }
            defer { state.depthFeed = nil }
            return state.depthFeed
        }
        guard let depthFeed else { return }
        self.context.logger.info("closing dhan's 20-level depth feed with the failed 5-level feed")
        Task { await depthFeed.stop() }
    }

    private static func credentials(_ context: BrokerAdapterContext) throws(BrokerCredentialsError) -> DhanCredentials {
        let loaded = try BrokerCredentials.load(
            broker: Self.name,
            fields: ["client_id", "access_token"],
            explicit: context.credentials,
            settings: context.settings,
            environment: context.environment
        )
        context.logger.debug("dhan credentials", metadata: ["sources": "\(loaded)"])
        // OpenAlgo stores Dhan's BROKER_API_KEY as `client_id:::api_key`.
        let clientID = loaded["client_id"] ?? ""
        let id = clientID.firstRange(of: ":::").map { String(clientID[..<$0.lowerBound]) } ?? clientID
        return DhanCredentials(clientID: id, accessToken: loaded["access_token"] ?? "")
    }
}

/// Passes ticks and states on to the feed's sink and tells the adapter of each state, so it can
/// act on a failure; the depth socket's states are not passed on (clients are told the 5-level
/// feed's state), only logged.
private final class FeedStateObserver: FeedEventSink {
    private let downstream: any FeedEventSink
    private let forwardsStates: Bool
    private let logger: Logger?
    private let observe: @Sendable (FeedConnectionState) -> Void

    /// Observes the 5-level feed: everything is passed on.
    init(forwardingTo downstream: any FeedEventSink, observe: @escaping @Sendable (FeedConnectionState) -> Void) {
        self.downstream = downstream
        self.forwardsStates = true
        self.logger = nil
        self.observe = observe
    }

    /// Observes the depth socket: ticks are passed on, states logged.
    init(ticksTo downstream: any FeedEventSink, logger: Logger, observe: @escaping @Sendable (FeedConnectionState) -> Void) {
        self.downstream = downstream
        self.forwardsStates = false
        self.logger = logger
        self.observe = observe
    }

    func receive(_ tick: Tick) {
        self.downstream.receive(tick)
    }

    func feedStateChanged(_ state: FeedConnectionState) {
        self.logger?.info("dhan 20-level depth feed \(state)")
        if self.forwardsStates { self.downstream.feedStateChanged(state) }
        self.observe(state)
    }
}
