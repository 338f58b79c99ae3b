import MarketData
import NIOCore
import StreamingHub
import Testing

@Suite("Feed reconciler state machine (virtual time)")
struct FeedReconcilerStateMachineTests {
    typealias Machine = FeedReconcilerStateMachine

    let reliance = Instrument(exchange: "NSE", symbol: "RELIANCE")
    let sbin = Instrument(exchange: "NSE", symbol: "SBIN")
    let quote = FeedTarget(mode: .quote, depth: 0)
    let ltp = FeedTarget(mode: .ltp, depth: 0)
    let depth5 = FeedTarget(mode: .depth, depth: 5)
    let depth20 = FeedTarget(mode: .depth, depth: 20)

    func at(seconds: Double) -> NIODeadline { .uptimeNanoseconds(UInt64(seconds * 1e9) + 1_000_000_000) }

    /// A machine whose feed has started.
    func running(_ configuration: Machine.Configuration = .init()) -> Machine {
        var machine = Machine(configuration: configuration, phase: .starting(pending: 0, attempt: 0))
        machine.startRequested()
        #expect(machine.startFinished(failure: nil, now: self.at(seconds: 0)) == [])
        return machine
    }

    @Test("desire is asked of the feed once per instrument, grouped by target; answers settle it and nothing is asked twice")
    func subscribesAndGroups() {
        var machine = self.running()
        #expect(
            machine.setDesired([(self.reliance, self.quote), (self.sbin, self.quote)], now: self.at(seconds: 1)) == [
                .subscribe([self.reliance, self.sbin], self.quote)
            ]
        )
        #expect(machine.serves(self.reliance, self.ltp) == nil, "nothing is served before the feed answers")
        #expect(machine.setDesired([(self.reliance, self.quote)], now: self.at(seconds: 1)) == [], "no change, no request")
        let actions = machine.subscribeAnswered(
            [self.reliance, self.sbin],
            target: self.quote,
            outcomes: [.subscribed(actualDepth: nil), .refused(message: "Symbol SBIN not found for exchange NSE")],
            now: self.at(seconds: 2)
        )
        #expect(
            actions == [
                .answered(self.reliance, .served(.init(target: self.quote))),
                .answered(self.sbin, .refused(message: "Symbol SBIN not found for exchange NSE")),
            ],
            "a refused target is not asked again while the desire stays the same"
        )
        #expect(machine.serves(self.reliance, self.ltp) == .init(target: self.quote), "Quote covers LTP")
        #expect(machine.serves(self.reliance, self.depth5) == nil)
    }

    @Test("a change while a request is in flight waits for its answer, then the feed is asked for the latest desire")
    func oneRequestInFlight() {
        var machine = self.running()
        #expect(machine.setDesired([(self.reliance, self.quote)], now: self.at(seconds: 1)) == [.subscribe([self.reliance], self.quote)])
        #expect(machine.setDesired([(self.reliance, self.depth20)], now: self.at(seconds: 1)) == [])
        #expect(machine.setDesired([(self.reliance, self.depth5)], now: self.at(seconds: 1)) == [])
        #expect(
            machine.subscribeAnswered([self.reliance], target: self.quote, outcomes: [.subscribed(actualDepth: nil)], now: self.at(seconds: 2)) == [
                .answered(self.reliance, .served(.init(target: self.quote))), .subscribe([self.reliance], self.depth5),
            ]
        )
        #expect(machine.serves(self.reliance, self.ltp) == .init(target: self.quote), "the Depth request in flight covers LTP too")
        _ = machine.subscribeAnswered([self.reliance], target: self.depth5, outcomes: [.subscribed(actualDepth: nil)], now: self.at(seconds: 3))
        // Nobody wants it any more: unsubscribed once, and a new desire meanwhile waits for that.
        #expect(machine.setDesired([(self.reliance, nil)], now: self.at(seconds: 4)) == [.unsubscribe([self.reliance])])
        #expect(machine.serves(self.reliance, self.ltp) == nil, "what an unsubscribe in flight takes away is not vouched for")
        #expect(machine.setDesired([(self.reliance, self.ltp)], now: self.at(seconds: 4)) == [])
        #expect(machine.unsubscribed([self.reliance], now: self.at(seconds: 5)) == [.subscribe([self.reliance], self.ltp)])
    }

    @Test("joins: more demand covered by the request in flight sends nothing more; its answer serves all of it")
    func joins() {
        var machine = self.running()
        #expect(machine.setDesired([(self.reliance, self.quote)], now: self.at(seconds: 1)) == [.subscribe([self.reliance], self.quote)])
        #expect(machine.serves(self.reliance, self.ltp) == nil, "a joiner waits too: nothing is served yet")
        #expect(machine.setDesired([(self.reliance, self.quote)], now: self.at(seconds: 1)) == [])
        #expect(
            machine.subscribeAnswered([self.reliance], target: self.quote, outcomes: [.subscribed(actualDepth: nil)], now: self.at(seconds: 2))
                == [.answered(self.reliance, .served(.init(target: self.quote)))]
        )
        #expect(machine.serves(self.reliance, self.ltp) != nil && machine.serves(self.reliance, self.quote) != nil)
    }

    @Test("cancellation: demand withdrawn while the request is in flight is given back once the feed answers")
    func cancellation() {
        var machine = self.running()
        _ = machine.setDesired([(self.reliance, self.quote)], now: self.at(seconds: 1))
        #expect(machine.setDesired([(self.reliance, nil)], now: self.at(seconds: 1)) == [], "the request in flight is answered first")
        #expect(
            machine.subscribeAnswered([self.reliance], target: self.quote, outcomes: [.subscribed(actualDepth: nil)], now: self.at(seconds: 2)) == [
                .answered(self.reliance, .served(.init(target: self.quote))), .unsubscribe([self.reliance]),
            ]
        )
        #expect(machine.unsubscribed([self.reliance], now: self.at(seconds: 3)) == [])
        #expect(machine.served(self.reliance) == nil)
        // A refusal of withdrawn demand leaves nothing to give back.
        _ = machine.setDesired([(self.sbin, self.quote)], now: self.at(seconds: 4))
        _ = machine.setDesired([(self.sbin, nil)], now: self.at(seconds: 4))
        #expect(
            machine.subscribeAnswered([self.sbin], target: self.quote, outcomes: [.refused(message: "no")], now: self.at(seconds: 5)) == [
                .answered(self.sbin, .refused(message: "no"))
            ]
        )
    }

    @Test("depth is part of the target: more levels are asked for, fewer when the deepest holder leaves, and what is served is kept")
    func depthChanges() {
        var machine = self.running()
        _ = machine.setDesired([(self.reliance, self.depth5)], now: self.at(seconds: 1))
        _ = machine.subscribeAnswered([self.reliance], target: self.depth5, outcomes: [.subscribed(actualDepth: nil)], now: self.at(seconds: 1))
        #expect(machine.serves(self.reliance, self.depth20) == nil, "Depth 5 does not cover Depth 20")
        #expect(machine.setDesired([(self.reliance, self.depth20)], now: self.at(seconds: 2)) == [.subscribe([self.reliance], self.depth20)])
        // A broker that serves five levels whatever is asked says so.
        #expect(
            machine.subscribeAnswered([self.reliance], target: self.depth20, outcomes: [.subscribed(actualDepth: 5)], now: self.at(seconds: 3))
                == [.answered(self.reliance, .served(.init(target: self.depth20, levels: 5)))]
        )
        #expect(machine.serves(self.reliance, self.depth20) == .init(target: self.depth20, levels: 5), "asked once; not asked again")
        #expect(machine.setDesired([(self.reliance, self.depth5)], now: self.at(seconds: 4)) == [.subscribe([self.reliance], self.depth5)])
    }

    @Test("a start replays everything desired at its real mode and depth; a failed start refuses the waiting requests and backs off")
    func startsReplay() {
        var machine = Machine(phase: .starting(pending: 0, attempt: 0))
        #expect(machine.setDesired([(self.reliance, self.depth20), (self.sbin, self.ltp)], now: self.at(seconds: 0)) == [], "the feed is not up yet")
        machine.startRequested()
        #expect(
            machine.startFinished(failure: "cannot connect to zerodha: 403", now: self.at(seconds: 1)) == [
                .refuseWaiting(reason: "cannot connect to zerodha: 403"), .scheduleRestart(at: self.at(seconds: 6)),
                .checkCredentials(after: .seconds(1)),
            ]
        )
        #expect(machine.restartDue(now: self.at(seconds: 5.9)) == [], "not before its time")
        #expect(machine.restartDue(now: self.at(seconds: 6)) == [.startFeed])
        #expect(
            machine.startFinished(failure: nil, now: self.at(seconds: 7)) == [
                .subscribe([self.reliance], self.depth20), .subscribe([self.sbin], self.ltp),
            ]
        )
        #expect(machine.phase == .running(since: self.at(seconds: 7), attempt: 1))
    }

    @Test("a running feed that fails is started again by itself while anyone holds something, 5 s doubling to 60 s")
    func restartBackoff() {
        var machine = self.running()
        _ = machine.setDesired([(self.reliance, self.quote)], now: self.at(seconds: 0))
        _ = machine.subscribeAnswered([self.reliance], target: self.quote, outcomes: [.subscribed(actualDepth: nil)], now: self.at(seconds: 0))
        var now = 100.0
        var delays: [Double] = []
        #expect(
            machine.feedFailed(reason: "gave up", now: self.at(seconds: now)) == [
                .refuseWaiting(reason: "gave up"), .scheduleRestart(at: self.at(seconds: now + 5)), .checkCredentials(after: .seconds(1)),
            ]
        )
        #expect(machine.served(self.reliance) == nil, "a failed feed serves nothing")
        for _ in 0..<6 {
            guard case .failed(_, _, let retryAt?) = machine.phase else { break }
            delays.append(Double((retryAt - self.at(seconds: now)).nanoseconds) / 1e9)
            now += delays.last!
            #expect(machine.restartDue(now: self.at(seconds: now)) == [.startFeed])
            now += 1
            _ = machine.startFinished(failure: "still refused", now: self.at(seconds: now))
        }
        #expect(delays == [5, 10, 20, 40, 60, 60])
        #expect(machine.credentialsChecked(changed: false, now: self.at(seconds: now)) == [.checkCredentials(after: .seconds(1))])
        #expect(machine.credentialsChecked(changed: true, now: self.at(seconds: now)) == [.startFeed], "a new token retries at once")
        #expect(
            machine.startFinished(failure: nil, now: self.at(seconds: now + 1)) == [.subscribe([self.reliance], self.quote)],
            "and the subscription is asked of the new feed"
        )
    }

    @Test("a feed that fails soon after each start counts up its attempts; one that ran a while starts the count afresh")
    func flapping() {
        var machine = self.running()
        _ = machine.setDesired([(self.reliance, self.quote)], now: self.at(seconds: 0))
        var now = 60.0
        var delays: [TimeAmount] = []
        for _ in 0..<3 {
            let actions = machine.feedFailed(reason: "dropped", now: self.at(seconds: now))
            for case .scheduleRestart(let at) in actions { delays.append(at - self.at(seconds: now)) }
            guard case .failed(_, _, let retryAt?) = machine.phase else { break }
            _ = machine.restartDue(now: retryAt)
            now = Double(retryAt.uptimeNanoseconds) / 1e9 - 1
            _ = machine.startFinished(failure: nil, now: self.at(seconds: now))
            now += 2
        }
        #expect(delays == [.seconds(5), .seconds(10), .seconds(20)])
        now += 30
        for case .scheduleRestart(let at) in machine.feedFailed(reason: "dropped", now: self.at(seconds: now)) {
            #expect(at - self.at(seconds: now) == .seconds(5))
        }
    }

    @Test("new demand on a failed feed starts it at once; no demand, no restart; a stopped feed starts nothing and accepts nothing")
    func demandAndStops() {
        var machine = self.running()
        #expect(
            machine.feedFailed(reason: "gave up", now: self.at(seconds: 1)) == [
                .refuseWaiting(reason: "gave up"), .checkCredentials(after: .seconds(1)),
            ]
        )
        #expect(machine.restartDue(now: self.at(seconds: 100)) == [])
        #expect(machine.setDesired([(self.reliance, self.ltp)], now: self.at(seconds: 2)) == [.startFeed])
        #expect(machine.startFinished(failure: nil, now: self.at(seconds: 3)) == [.subscribe([self.reliance], self.ltp)])
        #expect(machine.stopped() == [.refuseWaiting(reason: "Broker feed is not connected")])
        #expect(!machine.acceptsSubscriptions)
        #expect(machine.setDesired([(self.sbin, self.quote)], now: self.at(seconds: 4)) == [])
        #expect(
            machine.subscribeAnswered([self.reliance], target: self.ltp, outcomes: [.subscribed(actualDepth: nil)], now: self.at(seconds: 4)) == []
        )
        machine.startRequested()
        #expect(machine.startFinished(failure: nil, now: self.at(seconds: 5)).count == 2, "both desired instruments are asked of the new feed")
    }

    @Test("overlapping starts: only the last one's outcome counts")
    func overlappingStarts() {
        var machine = self.running()
        _ = machine.setDesired([(self.reliance, self.quote)], now: self.at(seconds: 0))
        machine.startRequested()
        machine.startRequested()
        #expect(machine.startFinished(failure: "first", now: self.at(seconds: 1)) == [])
        #expect(machine.startFinished(failure: nil, now: self.at(seconds: 2)) == [.subscribe([self.reliance], self.quote)])
    }
}
