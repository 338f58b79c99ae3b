import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore

/// A broker's market data over a pool of WebSocket connections, as a ``BrokerAdapter``: what the
/// Zerodha, Angel One and Dhan feeds do alike, filled in by each broker's ``PooledFeedBroker``.
///
/// `connect` reads the credentials (``BrokerCredentials``) and the instrument master
/// (``InstrumentMasterSource``), then starts a ``FeedConnectionPool`` of ``FeedSupervisor``s with
/// the broker's codec and waits for the first connection's outcome, so a refused token is
/// `connect`'s error. The pool reads the credentials again before every later connect, so a fixed
/// token file is picked up without a restart.
///
/// Subscriptions resolve through the master; each instrument the master does not know is refused
/// with the reference's text, and each the pool has no place for with the reference pool's
/// capacity message, one by one as the reference's ack does. The broker's ``FeedRouting``
/// decides the depth each streams at.
package final class PooledBrokerFeed<Broker: PooledFeedBroker>: BrokerAdapter {
    /// How long `connect` waits for the first connection before letting it carry on in the background.
    static var initialConnectWait: TimeAmount { .seconds(15) }

    package let brokerName = Broker.brokerName
    private let broker: Broker
    private let context: BrokerAdapterContext
    private let state: NIOLockedValueBox<State>

    private struct State {
        var pool: FeedConnectionPool<Broker.Codec>?
        var master: SymbolMaster?
        var routing: Broker.Routing?
    }

    /// Validates the settings; credentials and the master are read by ``connect(sink:)``.
    package init(context: BrokerAdapterContext) throws(BrokerConfigurationError) {
        self.broker = try Broker(context: context)
        self.context = context
        self.state = NIOLockedValueBox(State())
    }

    package var connectionState: FeedConnectionState {
        self.state.withLockedValue { $0.pool }?.connectionState ?? .disconnected
    }

    package func connect(sink: any FeedEventSink) async throws {
        let context = self.context
        let credentials = try Self.credentials(context)
        let master = try await context.loadSymbolMaster(
            defaultURL: Broker.instrumentMaster.defaultURL,
            cacheFileName: Broker.instrumentMaster.cacheFileName
        ) { bytes throws(SymbolMasterError) in try Broker.parseInstrumentMaster(bytes) }

        let broker = self.broker
        let pool = FeedConnectionPool(
            limits: broker.limits,
            context: context,
            configuration: broker.configuration,
            credentials: credentials,
            readCredentials: { context in try Self.credentials(context) },
            request: { credentials in try broker.connectionRequest(credentials) },
            codec: { logger in broker.makeCodec(master: master, logger: logger) }
        )
        let routing = broker.makeRouting(
            FeedRoutingContext(master: master, pool: pool, sink: sink, adapter: context, readCredentials: { try Self.credentials(context) })
        )
        let previous = self.state.withLockedValue { state in
            defer { state = State(pool: pool, master: master, routing: routing) }
            return state
        }
        await previous.pool?.stop()
        await previous.routing?.stop()
        let poolSink = PoolFailureObserver(forwardingTo: sink) { [weak routing] in routing?.poolFailed() }
        do {
            try await pool.start(sink: poolSink, awaitingFirstConnectionWithin: Self.initialConnectWait)
        } catch {
            self.state.withLockedValue { $0.pool = nil }
            throw error
        }
    }

    package func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) async -> [SubscribeOutcome] {
        var plan = Broker.Routing.Plan()
        let (pool, outcomes, onPool) = self.state.withLockedValue { state in
            var outcomes: [SubscribeOutcome] = []
            var onPool: [Int: [Instrument]] = [:]
            for instrument in instruments {
                guard let master = state.master, let pool = state.pool, let routing = state.routing else {
                    outcomes.append(.refused(message: "Broker feed is not connected"))
                    continue
                }
                guard let entry = master.entry(for: instrument), Broker.canStream(entry) else {
                    outcomes.append(.refused(message: symbolNotFoundMessage(instrument)))
                    continue
                }
                let alreadyReserved: Bool
                switch pool.reserve(instrument) {
                case .poolFull:
                    outcomes.append(.refused(message: pool.capacityMessage()))
                    continue
                case .alreadyReserved: alreadyReserved = true
                case .reserved: alreadyReserved = false
                }
                let placement = routing.place(instrument, entry: entry, mode: mode, depth: depth, alreadyReserved: alreadyReserved, plan: &plan)
                if let poolDepth = placement.poolDepth { onPool[poolDepth, default: []].append(instrument) }
                outcomes.append(.subscribed(actualDepth: placement.actualDepth))
            }
            return (state.pool, outcomes, onPool)
        }
        plan.beforePool()
        for (served, group) in onPool.sorted(by: { $0.key < $1.key }) {
            pool?.subscribe(group, mode: mode, depth: served)
        }
        plan.afterPool()
        return outcomes
    }

    package func unsubscribe(_ instruments: [Instrument]) async {
        var plan = Broker.Routing.Plan()
        let pool = self.state.withLockedValue { state in
            state.routing?.release(instruments, plan: &plan)
            return state.pool
        }
        // The pool unsubscribes only what streams on it; instruments the routing streams
        // elsewhere just give up their places there.
        pool?.release(instruments)
        plan.beforePool()
        plan.afterPool()
    }

    package func disconnect() async {
        let previous = self.state.withLockedValue { state in
            defer { state = State() }
            return state
        }
        await previous.routing?.stop()
        await previous.pool?.stop()
    }

    private static func credentials(_ context: BrokerAdapterContext) throws(BrokerCredentialsError) -> Broker.Credentials {
        let loaded = try BrokerCredentials.load(
            broker: Broker.name,
            fields: Broker.credentialFields,
            explicit: context.credentials,
            settings: context.settings,
            environment: context.environment
        )
        context.logger.debug("\(Broker.name) credentials", metadata: ["sources": "\(loaded)"])
        var fields: [String: String] = [:]
        for field in Broker.credentialFields { fields[field] = loaded[field] ?? "" }
        return Broker.credentials(from: fields)
    }
}

/// Passes ticks and states on to the feed's sink, and tells the routing when the pool fails for
/// good, so that what it opened itself closes with the pool.
private final class PoolFailureObserver: FeedEventSink {
    private let downstream: any FeedEventSink
    private let failed: @Sendable () -> Void

    init(forwardingTo downstream: any FeedEventSink, failed: @escaping @Sendable () -> Void) {
        self.downstream = downstream
        self.failed = failed
    }

    func receive(_ tick: Tick) {
        self.downstream.receive(tick)
    }

    func feedStateChanged(_ state: FeedConnectionState) {
        self.downstream.feedStateChanged(state)
        if case .failed = state { self.failed() }
    }
}
