import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket

/// A broker's wire protocol, as a ``FeedSupervisor`` uses it: what to say when a connection
/// opens, how subscription changes are spelt, and how inbound messages become ticks.
///
/// The supervisor owns the codec on its event loop and calls it from there only, so a codec may
/// keep mutable state (the token → instrument map its decoder needs) without locks.
package protocol BrokerFeedCodec: SendableMetatype {
    /// Sent first on every new connection, before the subscription replay (Fyers' in-band
    /// authentication). Default: nothing.
    mutating func openingMessages() -> [WebSocketMessage]
    /// The broker messages for one batch (Kite: `subscribe` then `mode`; Dhan: one request).
    mutating func messages(for batch: SubscriptionBatch) -> [WebSocketMessage]
    /// Decodes one inbound message and gives its ticks to `sink`. Malformed packets should be
    /// logged and skipped; return ``BrokerMessageOutcome/closeConnection(reason:retry:)`` only
    /// when the broker says the session is over (Dhan's disconnect packet).
    mutating func decode(_ message: WebSocketMessage, into sink: any FeedEventSink) -> BrokerMessageOutcome
    /// Whether another attempt can help after `error` (an upgrade rejected with 429 cannot).
    /// Default: always.
    func shouldRetry(after error: BrokerWebSocketError) -> Bool
}

extension BrokerFeedCodec {
    package func openingMessages() -> [WebSocketMessage] { [] }
    package func shouldRetry(after error: BrokerWebSocketError) -> Bool { true }
}

/// What the supervisor does after a message is decoded.
package enum BrokerMessageOutcome: Sendable, Equatable {
    case accepted
    /// The broker ended the session; reconnect (with backoff) when `retry`, else fail with `reason`.
    case closeConnection(reason: String, retry: Bool)
}

/// Keeps one broker connection alive for an adapter: connects, replays the active subscriptions
/// after every (re)connect, batches subscription changes, reconnects with backoff after drops and
/// stalls, and reports every state change to the feed's sink.
///
/// It is the driver of ``FeedSupervisorStateMachine``: all decisions are there, this class only
/// carries out the actions (sockets, timers, the codec). Everything runs on one event loop, the
/// one the socket uses, so an inbound message goes from NIO to the codec to the sink with no hop.
/// The public methods may be called from any thread.
package final class FeedSupervisor<Codec: BrokerFeedCodec>: Sendable {
    package struct Configuration: Sendable {
        package var supervision: FeedSupervisorStateMachine.Configuration
        package var batching: SubscriptionBatcher.Configuration
        package var client: BrokerWebSocketClient.Configuration
        /// Whether pings and pongs from the broker count as data for stall detection (some
        /// brokers send nothing else while the market is closed).
        package var controlFramesCountAsData: Bool

        package init(
            supervision: FeedSupervisorStateMachine.Configuration = .init(),
            batching: SubscriptionBatcher.Configuration = .init(),
            client: BrokerWebSocketClient.Configuration = .init(),
            controlFramesCountAsData: Bool = false
        ) {
            self.supervision = supervision
            self.batching = batching
            self.client = client
            self.controlFramesCountAsData = controlFramesCountAsData
        }
    }

    /// Builds the request for a connect attempt (0 = first connect, 1… = reconnects). Called
    /// before every attempt so credentials can be re-read, or a single-use URL fetched (Upstox).
    package typealias RequestFactory = @Sendable (_ attempt: Int) async throws -> BrokerWebSocketRequest

    private let eventLoop: any EventLoop
    private let configuration: Configuration
    private let makeRequest: RequestFactory
    private let logger: Logger
    private let engine: NIOLoopBoundBox<Engine>
    private let publishedState = NIOLockedValueBox(FeedConnectionState.disconnected)

    /// - Parameters:
    ///   - codec: handed over to the event loop; the caller keeps no copy.
    ///   - random: the backoff jitter source (a seeded one in tests).
    package init(
        configuration: Configuration = Configuration(),
        makeRequest: @escaping RequestFactory,
        codec: sending Codec,
        eventLoop: any EventLoop,
        logger: Logger,
        random: sending some RandomNumberGenerator = SystemRandomNumberGenerator()
    ) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.makeRequest = makeRequest
        self.logger = logger
        self.engine = NIOLoopBoundBox.makeBoxSendingValue(
            Engine(
                machine: FeedSupervisorStateMachine(configuration: configuration.supervision, random: random),
                batcher: SubscriptionBatcher(configuration: configuration.batching),
                codec: codec
            ),
            eventLoop: eventLoop
        )
    }

    /// The state last reported to the sink.
    package var connectionState: FeedConnectionState {
        self.publishedState.withLockedValue { $0 }
    }

    /// Starts connecting and reporting to `sink`; returns at once (progress is reported as state
    /// changes). Starting a failed or stopped supervisor starts it over, with its subscriptions.
    package func start(sink: any FeedEventSink) {
        self.onLoop { supervisor in
            supervisor.engine.value.sink = sink
            supervisor.apply(supervisor.engine.value.machine.start())
        }
    }

    /// Streams `instruments` at `mode` (sent within the batching window while connected, and
    /// replayed after every reconnect).
    package func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) {
        self.onLoop { supervisor in
            supervisor.apply(supervisor.engine.value.machine.subscribe(instruments, mode: mode, depth: depth, now: .now()))
        }
    }

    /// Stops streaming `instruments`.
    package func unsubscribe(_ instruments: [Instrument]) {
        self.onLoop { supervisor in
            supervisor.apply(supervisor.engine.value.machine.unsubscribe(instruments))
        }
    }

    /// Closes the connection, cancels every timer, forgets the subscriptions and reports
    /// `disconnected`; returns once the socket is closed.
    package func stop() async {
        let closed = try? await self.eventLoop.submit { [self] in
            let connection = self.engine.value.connection
            self.apply(self.engine.value.machine.stop())
            return connection?.closeFuture
        }.get()
        try? await closed?.get()
    }

    /// The subscriptions that would be replayed on a new connection, for diagnostics and tests.
    package func activeSubscriptions() async -> [FeedSubscription] {
        (try? await self.eventLoop.submit { [self] in self.engine.value.machine.activeSubscriptions }.get()) ?? []
    }

    private func onLoop(_ body: @escaping @Sendable (FeedSupervisor) -> Void) {
        if self.eventLoop.inEventLoop {
            body(self)
        } else {
            self.eventLoop.execute { [self] in body(self) }
        }
    }

    // MARK: carrying out actions (on the event loop)

    private func apply(_ actions: [FeedSupervisorStateMachine.Action]) {
        for action in actions {
            switch action {
            case .report(let state):
                self.report(state)
            case .connect:
                self.connect()
            case .scheduleReconnect(let delay):
                self.engine.value.reconnectTimer?.cancel()
                self.engine.value.reconnectTimer = self.eventLoop.scheduleTask(in: delay) { [self] in
                    self.apply(self.engine.value.machine.backoffElapsed())
                }
            case .scheduleStallCheck(let delay):
                self.engine.value.stallTimer?.cancel()
                self.engine.value.stallTimer = self.eventLoop.scheduleTask(in: delay) { [self] in
                    self.apply(self.engine.value.machine.stallCheck(now: .now()))
                }
            case .cancelTimers:
                self.engine.value.cancelTimers()
            case .closeConnection:
                self.detachConnection()?.close()
            case .replay(let subscriptions):
                self.replay(subscriptions)
            case .forward(let change, let instruments):
                self.forward(change, instruments)
            }
        }
    }

    private func report(_ state: FeedConnectionState) {
        self.publishedState.withLockedValue { $0 = state }
        switch state {
        case .failed(let reason):
            self.logger.error("broker feed failed", metadata: ["reason": "\(reason)"])
        case .reconnecting(let attempt):
            self.logger.warning("broker feed reconnecting", metadata: ["attempt": "\(attempt)"])
        default:
            self.logger.info("broker feed \(state)")
        }
        self.engine.value.sink?.feedStateChanged(state)
    }

    private func connect() {
        guard case .connecting(let attemptNumber) = self.engine.value.machine.state else { return }
        let attempt = self.engine.value.nextAttempt()
        let makeRequest = self.makeRequest
        Task { [self] in
            do {
                let request = try await makeRequest(attemptNumber)
                self.onLoop { supervisor in supervisor.open(request, attempt: attempt) }
            } catch {
                self.onLoop { supervisor in
                    guard supervisor.engine.value.isCurrent(attempt) else { return }
                    supervisor.apply(supervisor.engine.value.machine.connectFailed(reason: "could not prepare the connection: \(error)"))
                }
            }
        }
    }

    private func open(_ request: BrokerWebSocketRequest, attempt: UInt64) {
        guard self.engine.value.isCurrent(attempt) else { return }
        self.logger.debug("connecting to broker", metadata: ["url": "\(request.url)"])
        let delegate = ConnectionDelegate(supervisor: self, attempt: attempt)
        BrokerWebSocketClient.connect(request, configuration: self.configuration.client, on: self.eventLoop, delegate: delegate)
            .whenComplete { [self] result in
                switch result {
                case .success(let connection):
                    guard self.engine.value.isCurrent(attempt) else {
                        connection.close()
                        return
                    }
                    self.engine.value.connection = connection
                    self.apply(self.engine.value.machine.connectSucceeded(now: .now()))
                case .failure(let error):
                    guard self.engine.value.isCurrent(attempt) else { return }
                    let brokerError = error as? BrokerWebSocketError ?? .transport(error)
                    self.logger.warning("broker connect failed", metadata: ["error": "\(brokerError)"])
                    let retry = self.engine.value.codec.shouldRetry(after: brokerError)
                    self.apply(self.engine.value.machine.connectFailed(reason: brokerError.message, retryable: retry))
                }
            }
    }

    /// Forgets the current connection: callbacks it still makes are ignored from now on.
    private func detachConnection() -> BrokerWebSocketConnection? {
        let connection = self.engine.value.connection
        self.engine.value.connection = nil
        _ = self.engine.value.nextAttempt()
        return connection
    }

    private func replay(_ subscriptions: [FeedSubscription]) {
        self.engine.value.discardPendingChanges()
        guard let connection = self.engine.value.connection else { return }
        var messages = self.engine.value.codec.openingMessages()
        let batches = SubscriptionBatch.grouping(
            subscriptions.map { (instrument: $0.instrument, change: SubscriptionChange.subscribe(mode: $0.mode, depth: $0.depth)) },
            maximumInstrumentsPerMessage: self.configuration.batching.maximumInstrumentsPerMessage
        )
        for batch in batches { messages += self.engine.value.codec.messages(for: batch) }
        if !subscriptions.isEmpty { self.logger.info("replaying subscriptions", metadata: ["count": "\(subscriptions.count)"]) }
        connection.send(messages)
    }

    private func forward(_ change: SubscriptionChange, _ instruments: [Instrument]) {
        switch self.engine.value.batcher.add(change, for: instruments, now: .now()) {
        case .none:
            return
        case .scheduleFlush(let deadline):
            self.engine.value.flushTimer = self.eventLoop.scheduleTask(deadline: deadline) { [self] in self.flush() }
        case .flushNow:
            self.flush()
        }
    }

    private func flush() {
        self.engine.value.flushTimer?.cancel()
        self.engine.value.flushTimer = nil
        let batches = self.engine.value.batcher.flush()
        guard let connection = self.engine.value.connection else { return }
        var messages: [WebSocketMessage] = []
        for batch in batches { messages += self.engine.value.codec.messages(for: batch) }
        connection.send(messages)
    }

    // MARK: connection callbacks (on the event loop)

    fileprivate func received(_ message: WebSocketMessage, attempt: UInt64) {
        guard self.engine.value.isCurrent(attempt), let sink = self.engine.value.sink else { return }
        self.engine.value.machine.dataReceived()
        switch self.engine.value.codec.decode(message, into: sink) {
        case .accepted:
            return
        case .closeConnection(let reason, let retry):
            self.logger.warning("broker ended the session", metadata: ["reason": "\(reason)"])
            self.detachConnection()?.close()
            self.apply(self.engine.value.machine.connectionLost(reason: reason, retryable: retry, now: .now()))
        }
    }

    fileprivate func receivedControlFrame(attempt: UInt64) {
        guard self.configuration.controlFramesCountAsData, self.engine.value.isCurrent(attempt) else { return }
        self.engine.value.machine.dataReceived()
    }

    fileprivate func closed(error: BrokerWebSocketError?, attempt: UInt64) {
        guard self.engine.value.isCurrent(attempt) else { return }
        self.engine.value.connection = nil
        let reason = error?.message ?? "the connection was closed"
        self.logger.warning("broker connection lost", metadata: ["reason": "\(reason)"])
        let retry = error.map { self.engine.value.codec.shouldRetry(after: $0) } ?? true
        self.apply(self.engine.value.machine.connectionLost(reason: reason, retryable: retry, now: .now()))
    }

    /// The supervisor's mutable state, confined to its event loop.
    private final class Engine {
        var machine: FeedSupervisorStateMachine
        var batcher: SubscriptionBatcher
        var codec: Codec
        var sink: (any FeedEventSink)?
        var connection: BrokerWebSocketConnection?
        var reconnectTimer: Scheduled<Void>?
        var stallTimer: Scheduled<Void>?
        var flushTimer: Scheduled<Void>?
        /// Identifies the connection attempt whose callbacks count; older ones are ignored.
        private var currentAttempt: UInt64 = 0

        init(machine: FeedSupervisorStateMachine, batcher: SubscriptionBatcher, codec: Codec) {
            self.machine = machine
            self.batcher = batcher
            self.codec = codec
        }

        func nextAttempt() -> UInt64 {
            self.currentAttempt &+= 1
            return self.currentAttempt
        }

        func isCurrent(_ attempt: UInt64) -> Bool { attempt == self.currentAttempt }

        func discardPendingChanges() {
            self.flushTimer?.cancel()
            self.flushTimer = nil
            self.batcher.discardPendingChanges()
        }

        func cancelTimers() {
            self.reconnectTimer?.cancel()
            self.reconnectTimer = nil
            self.stallTimer?.cancel()
            self.stallTimer = nil
            self.discardPendingChanges()
        }
    }

    /// Routes one connection's callbacks to the supervisor, tagged with its attempt.
    private struct ConnectionDelegate: BrokerWebSocketDelegate {
        let supervisor: FeedSupervisor
        let attempt: UInt64

        func webSocket(_ connection: BrokerWebSocketConnection, didReceive message: WebSocketMessage) {
            self.supervisor.received(message, attempt: self.attempt)
        }

        func webSocket(_ connection: BrokerWebSocketConnection, didReceiveControlFrame opcode: WebSocketOpcode) {
            self.supervisor.receivedControlFrame(attempt: self.attempt)
        }

        func webSocket(_ connection: BrokerWebSocketConnection, didCloseWith error: BrokerWebSocketError?) {
            self.supervisor.closed(error: error, attempt: self.attempt)
        }
    }
}
