import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore

/// The broker connections behind one feed: one ``FeedSupervisor`` per connection, as many as
/// the broker allows and the instruments need, seen by the adapter (and the hub) as one feed.
///
/// It is the driver of ``FeedConnectionPoolStateMachine``, which decides where instruments go,
/// when connections open and close, and the feed's aggregate state (documented there). Each
/// supervisor keeps its own connection alive and replays its own instruments after a reconnect,
/// so a drop on one connection leaves the others streaming.
///
/// The adapter calls ``reserve(_:)`` for each instrument it accepts (under its own lock if it
/// likes: the pool never calls back into the adapter while holding its lock), then
/// ``subscribe(_:mode:depth:)`` with the reserved ones, and ``release(_:)`` when the hub
/// unsubscribes. Decisions are made under a lock, in the order the calls and the supervisors'
/// reports arrive, and carried out on the event loop in that same order, so the sink sees the
/// aggregate states in the order they were decided. Ticks go from each supervisor straight to
/// the sink.
package final class FeedConnectionPool<Codec: BrokerFeedCodec>: Sendable {
    /// Builds the supervisor for connection `connection` (0 is the primary); called under the
    /// pool's lock, so it must only construct it. `logger` carries the connection's number.
    package typealias ConnectionFactory = @Sendable (_ connection: Int, _ logger: Logger) -> FeedSupervisor<Codec>

    private struct Engine {
        var machine: FeedConnectionPoolStateMachine
        var supervisors: [Int: FeedSupervisor<Codec>] = [:]
        var sink: (any FeedEventSink)?
    }

    /// One action with the supervisor it concerns, resolved under the lock.
    private enum Step: Sendable {
        case start(FeedSupervisor<Codec>, sink: any FeedEventSink)
        case subscribe(FeedSupervisor<Codec>, [Instrument], SubscriptionMode, depth: Int)
        case unsubscribe(FeedSupervisor<Codec>, [Instrument])
        case stop(FeedSupervisor<Codec>)
        case report(FeedConnectionState, to: any FeedEventSink)
    }

    private let eventLoop: any EventLoop
    private let logger: Logger
    private let makeConnection: ConnectionFactory
    private let engine: NIOLockedValueBox<Engine>

    /// - Parameter eventLoop: where the actions are carried out; the supervisors' loop.
    package init(limits: ConnectionPoolLimits, eventLoop: any EventLoop, logger: Logger, makeConnection: @escaping ConnectionFactory) {
        self.eventLoop = eventLoop
        self.logger = logger
        self.makeConnection = makeConnection
        self.engine = NIOLockedValueBox(Engine(machine: FeedConnectionPoolStateMachine(limits: limits)))
    }

    package var limits: ConnectionPoolLimits { self.engine.withLockedValue { $0.machine.limits } }

    /// The feed's aggregate state (see ``FeedConnectionPoolStateMachine``).
    package var connectionState: FeedConnectionState { self.engine.withLockedValue { $0.machine.state } }

    /// The connections open now, in order, for diagnostics and tests.
    package var openConnections: [Int] { self.engine.withLockedValue { $0.machine.openConnections } }

    /// The reference pool's refusal text for an instrument that does not fit.
    package func capacityMessage() -> String { self.engine.withLockedValue { $0.machine.capacityMessage() } }

    /// Opens the primary connection and reports to `sink`; returns at once.
    package func start(sink: any FeedEventSink) {
        self.decide { engine in
            engine.sink = sink
            return engine.machine.start()
        }
    }

    /// Opens the primary connection and waits for its first attempt (at most `timeout`), so a
    /// refused token is the error of the adapter's `connect` rather than a success followed by
    /// `failed`. On failure the pool is stopped and reports nothing more.
    package func start(sink: any FeedEventSink, awaitingFirstConnectionWithin timeout: TimeAmount) async throws(BrokerFeedError) {
        let gate = InitialConnectGate(forwardingTo: sink)
        self.start(sink: gate)
        if case .failed(let reason) = await gate.firstOutcome(within: timeout, on: self.eventLoop) {
            gate.mute()
            await self.stop()
            throw BrokerFeedError(reason)
        }
    }

    /// Finds `instrument` a place on a connection (or returns the one it has); ``FeedConnectionPoolStateMachine/Reservation/poolFull``
    /// means it must be refused with ``capacityMessage()``.
    package func reserve(_ instrument: Instrument) -> FeedConnectionPoolStateMachine.Reservation {
        self.engine.withLockedValue { $0.machine.reserve(instrument) }
    }

    /// Streams reserved instruments at `mode`, each on its own connection.
    package func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) {
        guard !instruments.isEmpty else { return }
        self.decide { $0.machine.subscribe(instruments, mode: mode, depth: depth) }
    }

    /// Stops streaming instruments but keeps their places.
    package func stopStreaming(_ instruments: [Instrument]) {
        guard !instruments.isEmpty else { return }
        self.decide { $0.machine.stopStreaming(instruments) }
    }

    /// Stops streaming instruments and frees their places; an extra connection left empty closes.
    package func release(_ instruments: [Instrument]) {
        guard !instruments.isEmpty else { return }
        self.decide { $0.machine.release(instruments) }
    }

    /// Closes every connection and reports `disconnected`; returns once the sockets are closed.
    package func stop() async {
        var supervisors: [FeedSupervisor<Codec>] = []
        self.decide { engine in
            // Stopped here rather than by the `close` actions, so that this call can wait for them.
            supervisors = Array(engine.supervisors.values)
            engine.supervisors.removeAll()
            return engine.machine.stop()
        }
        for supervisor in supervisors { await supervisor.stop() }
    }

    /// The subscriptions connection `connection` replays after a reconnect, for tests.
    package func activeSubscriptions(onConnection connection: Int) async -> [FeedSubscription] {
        guard let supervisor = self.engine.withLockedValue({ $0.supervisors[connection] }) else { return [] }
        return await supervisor.activeSubscriptions()
    }

    fileprivate func connectionStateChanged(_ connection: Int, generation: Int, to state: FeedConnectionState) {
        self.decide { $0.machine.connectionStateChanged(connection, generation: generation, to: state) }
    }

    /// Runs `body` on the engine under the lock and queues its actions on the event loop, in order.
    private func decide(_ body: (inout Engine) -> [FeedConnectionPoolStateMachine.Action]) {
        self.engine.withLockedValue { engine in
            let steps = self.steps(for: body(&engine), engine: &engine)
            guard !steps.isEmpty else { return }
            self.eventLoop.execute { Self.carryOut(steps) }
        }
    }

    private func steps(for actions: [FeedConnectionPoolStateMachine.Action], engine: inout Engine) -> [Step] {
        var steps: [Step] = []
        for action in actions {
            switch action {
            case .open(let connection, let generation):
                var logger = self.logger
                logger[metadataKey: "connection"] = "\(connection)"
                let supervisor = self.makeConnection(connection, logger)
                engine.supervisors[connection] = supervisor
                guard let sink = engine.sink else { continue }
                let connectionSink = ConnectionSink(pool: self, connection: connection, generation: generation, downstream: sink)
                steps.append(.start(supervisor, sink: connectionSink))
            case .subscribe(let connection, let instruments, let mode, let depth):
                guard let supervisor = engine.supervisors[connection] else { continue }
                steps.append(.subscribe(supervisor, instruments, mode, depth: depth))
            case .unsubscribe(let connection, let instruments):
                guard let supervisor = engine.supervisors[connection] else { continue }
                steps.append(.unsubscribe(supervisor, instruments))
            case .close(let connection):
                guard let supervisor = engine.supervisors.removeValue(forKey: connection) else { continue }
                steps.append(.stop(supervisor))
            case .report(let state):
                guard let sink = engine.sink else { continue }
                steps.append(.report(state, to: sink))
            }
        }
        return steps
    }

    private static func carryOut(_ steps: [Step]) {
        for step in steps {
            switch step {
            case .start(let supervisor, let sink): supervisor.start(sink: sink)
            case .subscribe(let supervisor, let instruments, let mode, let depth): supervisor.subscribe(instruments, mode: mode, depth: depth)
            case .unsubscribe(let supervisor, let instruments): supervisor.unsubscribe(instruments)
            case .stop(let supervisor): Task { await supervisor.stop() }
            case .report(let state, let sink): sink.feedStateChanged(state)
            }
        }
    }
}

/// One connection's view of the feed's sink: ticks pass straight through; states go to the
/// pool, tagged with the connection and its generation, to be aggregated.
private final class ConnectionSink<Codec: BrokerFeedCodec>: FeedEventSink {
    private weak let pool: FeedConnectionPool<Codec>?
    private let connection: Int
    private let generation: Int
    private let downstream: any FeedEventSink

    init(pool: FeedConnectionPool<Codec>, connection: Int, generation: Int, downstream: any FeedEventSink) {
        self.pool = pool
        self.connection = connection
        self.generation = generation
        self.downstream = downstream
    }

    func receive(_ tick: Tick) {
        self.downstream.receive(tick)
    }

    func feedStateChanged(_ state: FeedConnectionState) {
        self.pool?.connectionStateChanged(self.connection, generation: self.generation, to: state)
    }
}

extension FeedConnectionPool {
    /// A pool whose connections read the broker's credentials again before every connect, except
    /// the first connection's first attempt, which uses `credentials` just read by the adapter's
    /// `connect`: a new day's token written to the credentials file is then picked up on the next
    /// reconnect, and by connections the pool opens later, without a restart.
    package convenience init<Credentials: Sendable>(
        limits: ConnectionPoolLimits,
        context: BrokerAdapterContext,
        configuration: FeedSupervisor<Codec>.Configuration,
        credentials: Credentials,
        readCredentials: @escaping @Sendable (BrokerAdapterContext) throws -> Credentials,
        request: @escaping @Sendable (Credentials) throws -> BrokerWebSocketRequest,
        codec: @escaping @Sendable (Logger) -> sending Codec
    ) {
        self.init(limits: limits, eventLoop: context.eventLoop, logger: context.logger) { connection, logger in
            FeedSupervisor(
                configuration: configuration,
                makeRequest: { attempt in
                    let current = attempt == 0 && connection == 0 ? credentials : try readCredentials(context)
                    return try request(current)
                },
                codec: codec(logger),
                eventLoop: context.eventLoop,
                logger: logger
            )
        }
    }
}
