import BrokerKit
import Logging
import MarketData
import NIOConcurrencyHelpers

/// Where Dhan's subscriptions stream: on the 5-level pool, or on the 20-level depth socket.
///
/// The depth socket (`depth_ws_url`) opens on the first Depth request for 20 or more levels of an
/// NSE equity or derivative (Dhan serves 20 levels nowhere else, and to 50 instruments at most);
/// other Depth requests fall back to five levels, which the ack's `actualDepth` says. An
/// instrument keeps its place in the pool while it streams on the depth socket, so it can always
/// come back to five levels (a downgrade cannot be refused).
///
/// The depth socket's states are logged, not passed on (clients are told the pool's). If it
/// fails for good (its retries run out, or Dhan refuses it), its instruments move to the pool's
/// Full mode, five levels deep, as the reference falls back when 20-level data stops, and later
/// 20-level requests are served five deep until the next `connect`. When the pool fails for good
/// the depth socket is closed with it: the feed is down as a whole until it is started again.
package final class DhanDepthRouting: FeedRouting {
    private let connection: FeedRoutingContext<DhanBroker>
    private let webSocketURL: String
    private let configuration: FeedSupervisor<DhanDepthFeedCodec>.Configuration
    private let state: NIOLockedValueBox<State>

    private struct State {
        var depthFeed: FeedSupervisor<DhanDepthFeedCodec>?
        /// Set when the depth socket failed for good: 20-level requests are served five deep.
        var depthFeedFailed = false
        /// Instruments on the depth socket (they keep their places in the pool too).
        var depthInstruments: Set<Instrument> = []
    }

    /// The calls one subscribe or unsubscribe leads to, besides the pool's subscriptions.
    package struct Plan: FeedRoutingPlan {
        var pool: FeedConnectionPool<DhanFeedCodec>?
        var depthFeed: FeedSupervisor<DhanDepthFeedCodec>?
        /// A depth socket created by this call, to start with this sink.
        var startDepthFeed: (any FeedEventSink)?
        var onDepthFeed: [Instrument] = []
        /// Instruments moving to the depth socket, which stop streaming on the pool.
        var offPool: [Instrument] = []
        var offDepthFeed: [Instrument] = []

        package init() {}

        package func beforePool() {
            if let sink = self.startDepthFeed { self.depthFeed?.start(sink: sink) }
            if !self.offPool.isEmpty { self.pool?.stopStreaming(self.offPool) }
            if !self.offDepthFeed.isEmpty { self.depthFeed?.unsubscribe(self.offDepthFeed) }
        }

        package func afterPool() {
            if !self.onDepthFeed.isEmpty { self.depthFeed?.subscribe(self.onDepthFeed, mode: .depth, depth: DhanBroker.twentyLevels) }
        }
    }

    init(_ connection: FeedRoutingContext<DhanBroker>, webSocketURL: String, configuration: FeedSupervisor<DhanDepthFeedCodec>.Configuration) {
        self.connection = connection
        self.webSocketURL = webSocketURL
        self.configuration = configuration
        self.state = NIOLockedValueBox(State())
    }

    package func place(
        _ instrument: Instrument,
        entry: BrokerInstrument,
        mode: SubscriptionMode,
        depth: Int,
        alreadyReserved: Bool,
        plan: inout Plan
    ) -> FeedPlacement {
        plan.pool = self.connection.pool
        return self.state.withLockedValue { state in
            let wasOnDepthFeed = state.depthInstruments.contains(instrument)
            let twentyLevels =
                mode == .depth && depth >= DhanBroker.twentyLevels && !state.depthFeedFailed
                && DhanExchangeSegment(rawValue: entry.feedSegment).map(DhanRequest.supportsTwentyLevelDepth) == true
                && (wasOnDepthFeed || state.depthInstruments.count < DhanRequest.maximumDepthInstruments)
            if twentyLevels {
                if alreadyReserved && !wasOnDepthFeed { plan.offPool.append(instrument) }
                state.depthInstruments.insert(instrument)
                plan.depthFeed = state.depthFeed ?? self.makeDepthFeed(state: &state, plan: &plan)
                plan.onDepthFeed.append(instrument)
                return FeedPlacement(poolDepth: nil, actualDepth: depth == DhanBroker.twentyLevels ? nil : DhanBroker.twentyLevels)
            }
            if wasOnDepthFeed {
                state.depthInstruments.remove(instrument)
                plan.depthFeed = state.depthFeed
                plan.offDepthFeed.append(instrument)
            }
            return .pool(mode: mode, requested: depth, served: DhanBroker.fiveLevels)
        }
    }

    package func release(_ instruments: [Instrument], plan: inout Plan) {
        self.state.withLockedValue { state in
            plan.offDepthFeed = instruments.filter { state.depthInstruments.remove($0) != nil }
            plan.depthFeed = state.depthFeed
        }
    }

    package func poolFailed() {
        let depthFeed = self.state.withLockedValue { state in
            defer { state.depthFeed = nil }
            return state.depthFeed
        }
        guard let depthFeed else { return }
        self.connection.adapter.logger.info("closing dhan's 20-level depth feed with the failed 5-level feed")
        Task { await depthFeed.stop() }
    }

    package func stop() async {
        let depthFeed = self.state.withLockedValue { state in
            defer { state = State() }
            return state.depthFeed
        }
        await depthFeed?.stop()
    }

    private func makeDepthFeed(state: inout State, plan: inout Plan) -> FeedSupervisor<DhanDepthFeedCodec> {
        let baseURL = self.webSocketURL
        let readCredentials = self.connection.readCredentials
        let logger = self.connection.adapter.logger
        let depthFeed = FeedSupervisor(
            configuration: self.configuration,
            makeRequest: { _ in try BrokerWebSocketRequest(DhanRequest.depthConnection(baseURL: baseURL, credentials: try readCredentials())) },
            codec: DhanDepthFeedCodec(master: self.connection.master, logger: logger),
            eventLoop: self.connection.adapter.eventLoop,
            logger: logger
        )
        state.depthFeed = depthFeed
        plan.startDepthFeed = DepthFeedObserver(ticksTo: self.connection.sink, logger: logger) { [weak self, weak depthFeed] state in
            guard case .failed(let reason) = state, let self, let depthFeed else { return }
            self.depthFeedFailed(depthFeed, reason: reason)
        }
        return depthFeed
    }

    /// Moves the depth socket's instruments to the pool's Full mode.
    private func depthFeedFailed(_ failed: FeedSupervisor<DhanDepthFeedCodec>, reason: String) {
        let instruments = self.state.withLockedValue { state -> [Instrument]? in
            guard state.depthFeed === failed else { return nil }
            defer {
                state.depthFeed = nil
                state.depthFeedFailed = true
                state.depthInstruments = []
            }
            return Array(state.depthInstruments)
        }
        guard let instruments else { return }
        self.connection.adapter.logger.warning(
            "dhan 20-level depth feed failed; its instruments stream five levels deep from the main feed",
            metadata: ["reason": "\(reason)", "instruments": "\(instruments.count)"]
        )
        self.connection.pool.subscribe(instruments, mode: .depth, depth: DhanBroker.fiveLevels)
        Task { await failed.stop() }
    }
}

/// Passes the depth socket's ticks on to the feed's sink and logs its states (clients are told
/// the pool's), telling the routing of each so that it can act on a failure.
private final class DepthFeedObserver: FeedEventSink {
    private let downstream: any FeedEventSink
    private let logger: Logger
    private let observe: @Sendable (FeedConnectionState) -> Void

    init(ticksTo downstream: any FeedEventSink, logger: Logger, observe: @escaping @Sendable (FeedConnectionState) -> Void) {
        self.downstream = downstream
        self.logger = logger
        self.observe = observe
    }

    func receive(_ tick: Tick) {
        self.downstream.receive(tick)
    }

    func feedStateChanged(_ state: FeedConnectionState) {
        self.logger.info("dhan 20-level depth feed \(state)")
        self.observe(state)
    }
}
