import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore
import StreamingHub
import SystemdSupport

/// Keeps systemd's view of the agent current, from the hub's event loop: the `STATUS=` line
/// (`systemctl --user status openalgo-agent`) on every feed change and every few seconds when the
/// counts moved, and `WATCHDOG=1` every half interval while ``WatchdogHealth`` allows.
final class ServiceManagerReporter: HubObserver {
    private let hub: StreamingHub
    private let link: ServiceManagerLink
    private let feedLoop: any EventLoop
    private let commands: FeedCommandQueue
    private let logger: Logger
    private var health: WatchdogHealth
    private var lastStatus = ""
    private var tasks: [RepeatedTask] = []
    private let feedLoopAnswered = NIOLockedValueBox(true)

    /// How often the status line is refreshed when nothing else prompts it.
    static let statusInterval = TimeAmount.seconds(2)

    init(
        hub: StreamingHub,
        link: ServiceManagerLink,
        feedLoop: any EventLoop,
        commands: FeedCommandQueue,
        feedCommandLimit: TimeAmount,
        logger: Logger
    ) {
        self.hub = hub
        self.link = link
        self.feedLoop = feedLoop
        self.commands = commands
        self.health = WatchdogHealth(commandLimit: feedCommandLimit)
        self.logger = logger
    }

    /// The status line for a hub state, e.g.
    /// `zerodha connected; 3 WebSocket + 1 local clients; 12 instruments, 20 subscriptions`.
    static func statusLine(_ status: HubStatus) -> String {
        var feed = "\(status.brokerName) \(status.feedState)"
        if case .reconnecting(let attempt) = status.feedState { feed += " (attempt \(attempt))" }
        if case .failed(let reason) = status.feedState { feed += ": \(reason)" }
        return "\(feed); \(status.webSocketClients) WebSocket + \(status.ipcClients) local clients; "
            + "\(status.instruments) instruments, \(status.subscriptions) subscriptions"
    }

    /// How often `WATCHDOG=1` is sent for systemd's watchdog `interval`: every half interval, at
    /// most every millisecond and at least every 12 hours. `WATCHDOG_USEC` is whatever the
    /// environment says (up to 2^64 µs, clamped to `Int64` by ``SystemdNotifier``), and its
    /// nanoseconds do not fit in `Int64` past 292 years; pinging sooner than asked is harmless.
    static func watchdogPingInterval(_ interval: Duration) -> TimeAmount {
        let (seconds, attoseconds) = interval.components
        guard seconds < 86_400 else { return .hours(12) }
        return .nanoseconds(max((seconds * 1_000_000_000 + attoseconds / 1_000_000_000) / 2, 1_000_000))
    }

    /// Sends `READY=1` with the first status line, then starts the timers. Call on the hub's loop.
    func start() {
        self.hub.eventLoop.preconditionInEventLoop()
        self.hub.addObserver(self)
        self.lastStatus = Self.statusLine(self.hub.status())
        self.link.send(.ready(status: self.lastStatus))
        let loop = self.hub.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        self.tasks.append(
            loop.scheduleRepeatedTask(initialDelay: Self.statusInterval, delay: Self.statusInterval) { _ in
                bound.value.refreshStatus()
            }
        )
        if let interval = self.link.settings.watchdogInterval {
            let half = Self.watchdogPingInterval(interval)
            self.watchdogTick()
            self.tasks.append(
                loop.scheduleRepeatedTask(initialDelay: half, delay: half) { _ in
                    bound.value.watchdogTick()
                }
            )
        }
    }

    /// Stops the timers and tells systemd the agent is stopping. Call on the hub's loop.
    func stop() {
        self.hub.eventLoop.preconditionInEventLoop()
        for task in self.tasks { task.cancel() }
        self.tasks = []
        self.hub.removeObserver(self)
        self.link.send(.stopping)
    }

    /// After a reload: `READY=1` again, with the current status.
    func reloaded() {
        self.hub.eventLoop.preconditionInEventLoop()
        self.lastStatus = Self.statusLine(self.hub.status())
        self.link.send(.ready(status: self.lastStatus))
    }

    func feedStateChanged(_ status: HubStatus) {
        self.publish(Self.statusLine(status))
    }

    func brokerSubscriptionChanged(_ update: BrokerSubscriptionUpdate) {}

    private func refreshStatus() {
        self.publish(Self.statusLine(self.hub.status()))
    }

    private func publish(_ line: String) {
        guard line != self.lastStatus else { return }
        self.lastStatus = line
        self.link.send(.status(line))
    }

    private func watchdogTick() {
        let answered = self.feedLoopAnswered.withLockedValue { answered in
            defer { answered = false }
            return answered
        }
        let verdict = self.health.tick(
            now: .now(),
            feedLoopAnsweredLastProbe: answered,
            commandRunningSince: self.commands.commandRunningSince
        )
        self.feedLoop.execute { [feedLoopAnswered] in
            feedLoopAnswered.withLockedValue { $0 = true }
        }
        switch verdict {
        case .ping:
            self.link.send(.watchdog)
        case .withhold(let problem?):
            self.logger.error("withholding the watchdog ping; systemd will restart the agent if this lasts", metadata: ["problem": "\(problem)"])
        case .withhold(nil):
            break
        }
    }
}
