import BrokerKit
import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore

/// The built-in feed: simulated markets for any instrument on a known exchange, so the agent runs
/// anywhere with no broker account. It implements the same ``BrokerAdapter`` protocol as real brokers.
package final class SimulatorFeed: BrokerAdapter {
    package let brokerName = "simulator"
    package let configuration: SimulatorConfiguration
    private let eventLoop: any EventLoop
    private let engine: NIOLoopBoundBox<SimulatorEngine>
    private let state = NIOLockedValueBox(FeedConnectionState.disconnected)

    package init(configuration: SimulatorConfiguration, eventLoop: any EventLoop, logger: Logger) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.engine = NIOLoopBoundBox.makeBoxSendingValue(
            SimulatorEngine(configuration: configuration, eventLoop: eventLoop, logger: logger),
            eventLoop: eventLoop
        )
    }

    /// Always `connected` once started: there is nothing upstream to lose.
    package var connectionState: FeedConnectionState {
        self.state.withLockedValue { $0 }
    }

    package func connect(sink: any FeedEventSink) async throws {
        try await self.eventLoop.submit { [engine] in engine.value.start(sink: sink) }.get()
        self.state.withLockedValue { $0 = .connected }
    }

    package func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) async -> [SubscribeOutcome] {
        (try? await self.eventLoop.submit { [engine] in engine.value.subscribe(instruments, mode: mode, depth: depth) }.get())
            ?? instruments.map { _ in .refused(message: "Subscription failed") }
    }

    package func unsubscribe(_ instruments: [Instrument]) async {
        try? await self.eventLoop.submit { [engine] in engine.value.unsubscribe(instruments) }.get()
    }

    package func disconnect() async {
        try? await self.eventLoop.submit { [engine] in engine.value.stop() }.get()
        self.state.withLockedValue { $0 = .disconnected }
    }
}

/// The simulator's state, confined to its event loop: the instruments and one repeating timer
/// that emits every instrument's due ticks.
private final class SimulatorEngine {
    /// The timer period: short enough to spread ticks at high rates, long enough to batch them.
    private static let period = TimeAmount.milliseconds(10)
    /// A late timer catches up at most this much time: after a stall the feed carries on in real
    /// time instead of bursting out the stale ticks it owes (a real market would not replay them either).
    private static let maximumCatchUp = 0.05

    let configuration: SimulatorConfiguration
    let eventLoop: any EventLoop
    let logger: Logger
    private var sink: (any FeedEventSink)?
    private var instruments: [Instrument: SimulatedInstrument] = [:]
    private var timer: RepeatedTask?
    private var lastFiring = NIODeadline.now()

    init(configuration: SimulatorConfiguration, eventLoop: any EventLoop, logger: Logger) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
    }

    func start(sink: any FeedEventSink) {
        self.sink = sink
        sink.feedStateChanged(.connected)
        self.lastFiring = .now()
        let engine = NIOLoopBound(self, eventLoop: self.eventLoop)
        self.timer = self.eventLoop.scheduleRepeatedTask(initialDelay: Self.period, delay: Self.period) { _ in
            engine.value.fire()
        }
        self.logger.info("simulator started", metadata: ["ticks_per_second": "\(self.configuration.ticksPerSecond)"])
    }

    func stop() {
        self.timer?.cancel()
        self.timer = nil
        self.instruments.removeAll()
        self.sink?.feedStateChanged(.disconnected)
    }

    func subscribe(_ requested: [Instrument], mode: SubscriptionMode, depth: Int) -> [SubscribeOutcome] {
        requested.map { instrument in
            guard ExchangeCode.known.contains(instrument.exchange) else {
                return .refused(message: symbolNotFoundMessage(instrument))
            }
            let served = SimulatedInstrument.servedDepth(for: depth)
            var simulated =
                self.instruments[instrument]
                ?? SimulatedInstrument(instrument: instrument, mode: mode, depthLevels: served, seed: self.configuration.seed)
            simulated.mode = mode
            simulated.depthLevels = served
            self.instruments[instrument] = simulated
            return .subscribed(actualDepth: mode == .depth && served != depth ? served : nil)
        }
    }

    func unsubscribe(_ requested: [Instrument]) {
        for instrument in requested {
            self.instruments[instrument] = nil
        }
    }

    private func fire() {
        let now = NIODeadline.now()
        let elapsed = Double((now - self.lastFiring).nanoseconds) / 1e9
        self.lastFiring = now
        guard let sink, !self.instruments.isEmpty else { return }
        let owed = min(elapsed, Self.maximumCatchUp) * self.configuration.ticksPerSecond
        let timestamp = WallClock.epochMilliseconds()
        for index in self.instruments.values.indices {
            self.instruments.values[index].due += owed
            while self.instruments.values[index].due >= 1 {
                self.instruments.values[index].due -= 1
                sink.receive(self.instruments.values[index].nextTick(timestamp: timestamp))
            }
        }
    }
}
