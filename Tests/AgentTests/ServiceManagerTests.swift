import Foundation
import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import StreamingHub
import SystemdSupport
import Testing

@testable import Agent

@Suite("watchdog health")
struct WatchdogHealthTests {
    @Test("pings while the feed answers; withholds, reporting once, while it does not")
    func feedLoop() {
        var health = WatchdogHealth(commandLimit: .seconds(60))
        let now = NIODeadline.now()
        #expect(health.tick(now: now, feedLoopAnsweredLastProbe: true, commandRunningSince: nil) == .ping)
        #expect(health.tick(now: now, feedLoopAnsweredLastProbe: false, commandRunningSince: nil) == .withhold(newProblem: .feedLoopUnresponsive))
        #expect(health.tick(now: now, feedLoopAnsweredLastProbe: false, commandRunningSince: nil) == .withhold(newProblem: nil))
        #expect(health.tick(now: now, feedLoopAnsweredLastProbe: true, commandRunningSince: nil) == .ping)
        #expect(health.problem == nil)
    }

    @Test("a feed command running past the limit withholds the ping; a shorter one does not")
    func stuckCommand() {
        var health = WatchdogHealth(commandLimit: .seconds(60))
        let now = NIODeadline.now()
        #expect(health.tick(now: now, feedLoopAnsweredLastProbe: true, commandRunningSince: now - .seconds(59)) == .ping)
        let verdict = health.tick(now: now, feedLoopAnsweredLastProbe: true, commandRunningSince: now - .seconds(61))
        #expect(verdict == .withhold(newProblem: .feedCommandStuck(since: .seconds(61))))
        #expect(health.problem?.description == "a feed command has been running for 61 s")
        #expect(health.tick(now: now, feedLoopAnsweredLastProbe: true, commandRunningSince: nil) == .ping)
    }

    @Test("pings every half interval, at least every 12 hours however long WATCHDOG_USEC is, at most every millisecond")
    func pingInterval() {
        #expect(ServiceManagerReporter.watchdogPingInterval(.seconds(20)) == .seconds(10))
        #expect(ServiceManagerReporter.watchdogPingInterval(.microseconds(1500)) == .milliseconds(1))
        #expect(ServiceManagerReporter.watchdogPingInterval(.seconds(86_400)) == .hours(12))
        #expect(ServiceManagerReporter.watchdogPingInterval(.microseconds(Int64.max)) == .hours(12))
    }
}

@Suite("systemd status line")
struct ServiceManagerStatusLineTests {
    func status(_ state: FeedConnectionState) -> HubStatus {
        HubStatus(
            brokerName: "zerodha",
            feedState: state,
            instruments: 12,
            subscriptions: 20,
            webSocketClients: 3,
            ipcClients: 1,
            lastTickAgeMilliseconds: nil,
            uptimeSeconds: 5
        )
    }

    @Test("names the feed, its state, clients and subscriptions")
    func lines() {
        #expect(
            ServiceManagerReporter.statusLine(self.status(.connected))
                == "zerodha connected; 3 WebSocket + 1 local clients; 12 instruments, 20 subscriptions"
        )
        #expect(ServiceManagerReporter.statusLine(self.status(.reconnecting(attempt: 2))).hasPrefix("zerodha reconnecting (attempt 2); "))
        #expect(ServiceManagerReporter.statusLine(self.status(.failed(reason: "token expired"))).hasPrefix("zerodha failed: token expired; "))
    }
}

/// Records what the reporter would send to systemd.
final class RecordingTransport: ServiceManagerTransport {
    private let sent = NIOLockedValueBox<[String]>([])

    func send(_ message: ServiceManagerMessage) throws(SystemdError) -> Bool {
        self.sent.withLockedValue { $0.append(message.description) }
        return true
    }

    var messages: [String] { self.sent.withLockedValue { $0 } }
    var pings: Int { self.messages.filter { $0 == "WATCHDOG=1" }.count }
}

@Suite("the systemd reporter on real event loops")
struct ServiceManagerReporterTests {
    /// A hub on one loop, a feed loop on another, and a reporter pinging every 100 ms.
    struct Fixture {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let hubLoop: any EventLoop
        let feedLoop: any EventLoop
        let hub: NIOLoopBound<StreamingHub>
        let commands = FeedCommandQueue()
        let transport = RecordingTransport()
        let reporter: NIOLoopBound<ServiceManagerReporter>

        init(commandLimit: TimeAmount = .seconds(60)) async throws {
            self.hubLoop = self.group.next()
            self.feedLoop = self.group.next()
            let hubLoop = self.hubLoop
            let feedLoop = self.feedLoop
            let commands = self.commands
            let transport = self.transport
            let logger = Logger(label: "test")
            let link = ServiceManagerLink(
                transport: transport,
                settings: .init(socketsInherited: true, notifies: true, watchdogInterval: .milliseconds(200)),
                logger: logger
            )
            (self.hub, self.reporter) = try await hubLoop.submit {
                let hub = StreamingHub(
                    eventLoop: hubLoop,
                    configuration: HubConfiguration(brokerName: "test", ltpThrottle: .zero),
                    commands: commands,
                    logger: logger
                )
                let reporter = ServiceManagerReporter(
                    hub: hub,
                    link: link,
                    feedLoop: feedLoop,
                    commands: commands,
                    feedCommandLimit: commandLimit,
                    logger: logger
                )
                reporter.start()
                return (NIOLoopBound(hub, eventLoop: hubLoop), NIOLoopBound(reporter, eventLoop: hubLoop))
            }.get()
        }

        /// Waits until more than `count` pings were sent (a busy machine may delay the timers).
        func pings(moreThan count: Int, within limit: Duration = .seconds(10)) async throws -> Int {
            let deadline = ContinuousClock.now + limit
            while self.transport.pings <= count, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            return self.transport.pings
        }

        /// The ping count once it has stayed the same for four intervals, or `nil` if it never settles.
        func settledPings(within limit: Duration = .seconds(10)) async throws -> Int? {
            let deadline = ContinuousClock.now + limit
            var last = self.transport.pings
            var since = ContinuousClock.now
            while ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
                let now = self.transport.pings
                if now != last {
                    (last, since) = (now, .now)
                } else if ContinuousClock.now - since >= .milliseconds(400) {
                    return now
                }
            }
            return nil
        }

        func stop() async throws {
            let reporter = self.reporter
            try await self.hubLoop.submit { reporter.value.stop() }.get()
            try await self.group.shutdownGracefully()
        }
    }

    @Test("READY first; pings stop while the feed loop is wedged and resume when it recovers; STOPPING last")
    func wedgedFeedLoop() async throws {
        let fixture = try await Fixture()
        #expect(fixture.transport.messages.first?.hasPrefix("READY=1\nSTATUS=test connecting; 0 WebSocket") == true)
        #expect(try await fixture.pings(moreThan: 2) >= 3)

        let release = DispatchSemaphore(value: 0)
        fixture.feedLoop.execute { release.wait() }
        let whileWedged = try #require(try await fixture.settledPings(), "the pings never stopped while the feed loop was wedged")
        try await Task.sleep(for: .milliseconds(500))
        #expect(fixture.transport.pings == whileWedged)

        release.signal()
        #expect(try await fixture.pings(moreThan: whileWedged) > whileWedged)
        try await fixture.stop()
        #expect(fixture.transport.messages.last == "STOPPING=1")
    }

    @Test("a feed command stuck past the limit stops the pings")
    func stuckFeedCommand() async throws {
        let fixture = try await Fixture(commandLimit: .milliseconds(300))
        let commands = fixture.commands
        let release = NIOLockedValueBox<CheckedContinuation<Void, Never>?>(nil)
        let runner = Task { await commands.run(feed: IdleFeed(startBlocksUntilReleased: release)) }
        let hub = fixture.hub
        let stuck = Task { await StreamingHub.connectFeed(hub, FeedStartRequest()) }
        let whileStuck = try #require(try await fixture.settledPings(), "the pings never stopped while a feed command was stuck")
        try await Task.sleep(for: .milliseconds(500))
        #expect(fixture.transport.pings == whileStuck)
        #expect(commands.commandRunningSince != nil)
        while release.withLockedValue({ $0 == nil }) {
            try await Task.sleep(for: .milliseconds(10))
        }
        release.withLockedValue { $0?.resume() }
        _ = await stuck.value
        #expect(try await fixture.pings(moreThan: whileStuck) > whileStuck)
        commands.finish()
        await runner.value
        try await fixture.stop()
    }

    @Test("the status line follows the feed state at once")
    func feedStateStatus() async throws {
        let fixture = try await Fixture()
        let hub = fixture.hub
        try await fixture.hubLoop.submit { hub.value.makeSink().feedStateChanged(.reconnecting(attempt: 2)) }.get()
        try await Task.sleep(for: .milliseconds(200))
        #expect(fixture.transport.messages.contains { $0.hasPrefix("STATUS=test reconnecting (attempt 2); ") })
        try await fixture.stop()
    }
}

/// A feed that accepts everything and streams nothing; with a box, its start waits until the
/// test resumes the continuation it leaves there.
struct IdleFeed: FeedControl {
    var startBlocksUntilReleased: NIOLockedValueBox<CheckedContinuation<Void, Never>?>?

    func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) async -> [SubscribeOutcome] {
        instruments.map { _ in .subscribed(actualDepth: nil) }
    }

    func unsubscribe(_ instruments: [Instrument]) async {}

    func start(_ request: FeedStartRequest) async -> Result<Void, FeedStartFailure> {
        if let box = self.startBlocksUntilReleased {
            await withCheckedContinuation { continuation in box.withLockedValue { $0 = continuation } }
        }
        return .success(())
    }

    func stop() async {}

    func credentialsChangedSinceStart() async -> Bool { false }
}
