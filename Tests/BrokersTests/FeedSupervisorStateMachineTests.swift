import BrokerKit
import MarketData
import NIOCore
import Testing

@Suite("Feed supervisor state machine (virtual time)")
struct FeedSupervisorStateMachineTests {
    typealias Machine = FeedSupervisorStateMachine

    let reliance = Instrument(exchange: "NSE", symbol: "RELIANCE")
    let infy = Instrument(exchange: "NSE", symbol: "INFY")
    let nifty = Instrument(exchange: "NSE_INDEX", symbol: "NIFTY")

    func at(seconds: Double) -> NIODeadline { .uptimeNanoseconds(UInt64(seconds * 1e9) + 1_000_000_000) }

    func machine(attempts: Int = 5, stallTimeout: TimeAmount? = .seconds(90)) -> Machine {
        Machine(
            configuration: .init(
                reconnect: ReconnectPolicy(maximumAttempts: attempts, jitter: 0),
                stallTimeout: stallTimeout,
                stallCheckInterval: .seconds(30)
            ),
            random: SplitMix64(seed: 1)
        )
    }

    @Test("connect, drop, back off, reconnect: each state reported, subscriptions replayed in request order")
    func reconnectReplays() {
        var machine = self.machine()
        #expect(machine.start() == [.report(.connecting), .connect])
        #expect(machine.subscribe([self.reliance, self.infy], mode: .quote, depth: 5, now: self.at(seconds: 0)) == [])
        #expect(
            machine.connectSucceeded(now: self.at(seconds: 1)) == [
                .report(.connected),
                .replay([
                    FeedSubscription(instrument: self.reliance, mode: .quote, depth: 5),
                    FeedSubscription(instrument: self.infy, mode: .quote, depth: 5),
                ]),
                .scheduleStallCheck(after: .seconds(30)),
            ]
        )
        #expect(
            machine.subscribe([self.nifty], mode: .depth, depth: 20, now: self.at(seconds: 2)) == [
                .forward(.subscribe(mode: .depth, depth: 20), [self.nifty])
            ]
        )
        #expect(
            machine.subscribe([self.reliance], mode: .ltp, depth: 5, now: self.at(seconds: 2)) == [
                .forward(.subscribe(mode: .ltp, depth: 5), [self.reliance])
            ]
        )
        #expect(machine.unsubscribe([self.infy, Instrument(exchange: "NSE", symbol: "UNKNOWN")]) == [.forward(.unsubscribe, [self.infy])])

        #expect(
            machine.connectionLost(reason: "reset", now: self.at(seconds: 6)) == [
                .cancelTimers, .report(.reconnecting(attempt: 1)), .scheduleReconnect(after: .seconds(1)),
            ]
        )
        #expect(machine.state == .waitingToReconnect(attempt: 1))
        #expect(machine.subscribe([self.infy], mode: .ltp, depth: 5, now: self.at(seconds: 3)) == [], "recorded, sent by the replay")
        #expect(machine.backoffElapsed() == [.connect])
        #expect(machine.connectFailed(reason: "refused") == [.report(.reconnecting(attempt: 2)), .scheduleReconnect(after: .seconds(2))])
        #expect(machine.backoffElapsed() == [.connect])
        #expect(
            machine.connectSucceeded(now: self.at(seconds: 10)) == [
                .report(.connected),
                .replay([
                    FeedSubscription(instrument: self.reliance, mode: .ltp, depth: 5),
                    FeedSubscription(instrument: self.nifty, mode: .depth, depth: 20),
                    FeedSubscription(instrument: self.infy, mode: .ltp, depth: 5),
                ]),
                .scheduleStallCheck(after: .seconds(30)),
            ]
        )
        #expect(
            machine.connectionLost(reason: "reset", now: self.at(seconds: 15)) == [
                .cancelTimers, .report(.reconnecting(attempt: 1)), .scheduleReconnect(after: .seconds(1)),
            ],
            "a connection that stayed up restarts the attempt count"
        )
    }

    @Test("a broker that accepts and drops at once uses up the attempts and the feed fails (it was retried forever)")
    func flapping() {
        var machine = self.machine(attempts: 3)
        _ = machine.start()
        var now = 0.0
        var reports: [FeedConnectionState] = []
        for _ in 0..<10 {
            _ = machine.connectSucceeded(now: self.at(seconds: now))
            now += 0.5
            let actions = machine.connectionLost(reason: "closed by the broker", now: self.at(seconds: now))
            reports += actions.compactMap { if case .report(let state) = $0 { return state } else { return nil } }
            guard case .scheduleReconnect(let delay) = actions.last else { break }
            now += Double(delay.nanoseconds) / 1e9
            #expect(machine.backoffElapsed() == [.connect])
        }
        #expect(
            reports == [
                .reconnecting(attempt: 1), .reconnecting(attempt: 2), .reconnecting(attempt: 3),
                .failed(reason: "gave up after 3 reconnect attempts: closed by the broker"),
            ]
        )
        #expect(machine.start() == [.report(.connecting), .connect], "started again, it tries afresh")
    }

    @Test("after the last attempt the feed fails with a reason and stays failed until started again")
    func exhaustsAttempts() {
        var machine = self.machine(attempts: 3)
        _ = machine.start()
        var delays: [TimeAmount] = []
        var actions = machine.connectFailed(reason: "connection refused")
        while case .scheduleReconnect(let delay) = actions.last {
            delays.append(delay)
            #expect(machine.backoffElapsed() == [.connect])
            actions = machine.connectFailed(reason: "connection refused")
        }
        #expect(delays == [.seconds(1), .seconds(2), .seconds(4)])
        #expect(actions == [.report(.failed(reason: "gave up after 3 reconnect attempts: connection refused"))])
        #expect(machine.backoffElapsed() == [] && machine.connectFailed(reason: "late") == [])
        #expect(machine.start() == [.report(.connecting), .connect])
    }

    @Test("an error not worth retrying fails at once with the broker's reason")
    func fatalError() {
        var machine = self.machine()
        _ = machine.start()
        _ = machine.connectSucceeded(now: self.at(seconds: 0))
        #expect(
            machine.connectionLost(reason: "807 access token expired", retryable: false, now: self.at(seconds: 1)) == [
                .cancelTimers, .report(.failed(reason: "807 access token expired")),
            ]
        )
    }

    @Test("stall: silence with subscriptions forces a reconnect between the timeout and one check later")
    func stall() {
        var machine = self.machine()
        _ = machine.start()
        _ = machine.connectSucceeded(now: self.at(seconds: 0))
        let check = Machine.Action.scheduleStallCheck(after: .seconds(30))
        #expect(machine.stallCheck(now: self.at(seconds: 300)) == [check], "no subscriptions: silence is expected")
        _ = machine.subscribe([self.reliance], mode: .ltp, depth: 5, now: self.at(seconds: 310))
        machine.dataReceived()
        #expect(machine.stallCheck(now: self.at(seconds: 330)) == [check], "data arrived since the last check")
        #expect(machine.stallCheck(now: self.at(seconds: 360)) == [check], "30 s of silence")
        #expect(machine.stallCheck(now: self.at(seconds: 390)) == [check], "60 s of silence")
        #expect(
            machine.stallCheck(now: self.at(seconds: 420)) == [
                .cancelTimers, .closeConnection, .report(.reconnecting(attempt: 1)), .scheduleReconnect(after: .seconds(1)),
            ],
            "90 s of silence"
        )
        #expect(machine.state == .waitingToReconnect(attempt: 1))
        #expect(machine.stallCheck(now: self.at(seconds: 500)) == [], "a stale check is ignored")
    }

    @Test("the stall clock starts when the first subscription arrives, not when the connection opened")
    func stallClockStartsWithSubscription() {
        var machine = self.machine()
        _ = machine.start()
        _ = machine.connectSucceeded(now: self.at(seconds: 0))
        _ = machine.subscribe([self.reliance], mode: .ltp, depth: 5, now: self.at(seconds: 200))
        #expect(machine.stallCheck(now: self.at(seconds: 280)) == [.scheduleStallCheck(after: .seconds(30))])
        #expect(machine.stallCheck(now: self.at(seconds: 290)).contains(.closeConnection))
    }

    @Test("stall detection can be switched off")
    func stallDisabled() {
        var machine = self.machine(stallTimeout: nil)
        _ = machine.start()
        #expect(!machine.connectSucceeded(now: self.at(seconds: 0)).contains(.scheduleStallCheck(after: .seconds(30))))
        _ = machine.subscribe([self.reliance], mode: .ltp, depth: 5, now: self.at(seconds: 0))
        #expect(machine.stallCheck(now: self.at(seconds: 1000)) == [])
    }

    @Test("stop from every state: closes what is open, cancels timers, reports disconnected once, forgets subscriptions")
    func stopFromAnyState() {
        var idle = self.machine()
        #expect(idle.stop() == [])

        var connecting = self.machine()
        _ = connecting.start()
        #expect(connecting.stop() == [.cancelTimers, .closeConnection, .report(.disconnected)])
        #expect(connecting.connectSucceeded(now: self.at(seconds: 0)) == [.closeConnection], "a connect that completes after stop is closed")
        #expect(connecting.stop() == [])

        var connected = self.machine()
        _ = connected.start()
        _ = connected.subscribe([self.reliance], mode: .ltp, depth: 5, now: self.at(seconds: 0))
        _ = connected.connectSucceeded(now: self.at(seconds: 0))
        #expect(connected.stop() == [.cancelTimers, .closeConnection, .report(.disconnected)])
        #expect(connected.activeSubscriptions.isEmpty)
        #expect(connected.connectionLost(reason: "late close", now: self.at(seconds: 9)) == [])

        var waiting = self.machine()
        _ = waiting.start()
        _ = waiting.connectFailed(reason: "refused")
        #expect(waiting.stop() == [.cancelTimers, .report(.disconnected)])
        #expect(waiting.backoffElapsed() == [])

        var failed = self.machine(attempts: 0)
        _ = failed.start()
        _ = failed.connectFailed(reason: "refused")
        #expect(failed.stop() == [.report(.disconnected)])
    }
}

@Suite("Reconnect policy")
struct ReconnectPolicyTests {
    @Test("defaults: 1 s doubling, capped at 30 s, 5 attempts")
    func defaults() {
        let policy = ReconnectPolicy()
        #expect((1...7).map { policy.nominalDelay(beforeAttempt: $0) } == [1, 2, 4, 8, 16, 30, 30].map { TimeAmount.seconds($0) })
        var random = SplitMix64(seed: 7)
        #expect(policy.delay(beforeAttempt: 5, using: &random) != nil)
        #expect(policy.delay(beforeAttempt: 6, using: &random) == nil)
    }

    @Test("jitter only shortens, by at most its fraction, and repeats with the same seed")
    func jitter() {
        let policy = ReconnectPolicy(initialDelay: .seconds(2), maximumDelay: .seconds(60), maximumAttempts: 50, jitter: 0.5)
        func delays(seed: UInt64) -> [TimeAmount] {
            var random = SplitMix64(seed: seed)
            return (1...50).map { policy.delay(beforeAttempt: $0, using: &random)! }
        }
        let first = delays(seed: 42)
        #expect(first == delays(seed: 42))
        #expect(first != delays(seed: 43))
        for (index, delay) in first.enumerated() {
            let nominal = policy.nominalDelay(beforeAttempt: index + 1)
            #expect(delay <= nominal && delay.nanoseconds >= nominal.nanoseconds / 2)
        }
    }

    @Test("a broker's own schedule: Zerodha's min(2·1.5^n, 60)")
    func customSchedule() {
        let policy = ReconnectPolicy(initialDelay: .seconds(2), multiplier: 1.5, maximumDelay: .seconds(60), maximumAttempts: 50, jitter: 0)
        #expect(policy.nominalDelay(beforeAttempt: 3) == .milliseconds(4500))
        #expect(policy.nominalDelay(beforeAttempt: 40) == .seconds(60))
    }
}
