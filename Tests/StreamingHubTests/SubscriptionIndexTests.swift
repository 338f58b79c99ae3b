import MarketData
import StreamingHub
import Testing

@Suite("Subscription index")
struct SubscriptionIndexTests {
    let reliance = Instrument(exchange: "NSE", symbol: "RELIANCE")

    @Test("the holders' target is their highest mode and, at Depth, the most levels any of them asked for")
    func heldTarget() {
        var index = SubscriptionIndex<String>()
        index.add("A", self.reliance, .quote, depth: 5)
        #expect(index.heldTarget(self.reliance) == FeedTarget(mode: .quote, depth: 0))
        index.add("B", self.reliance, .ltp, depth: 5)
        index.add("C", self.reliance, .depth, depth: 20)
        index.add("D", self.reliance, .depth, depth: 5)
        #expect(index.heldTarget(self.reliance) == FeedTarget(mode: .depth, depth: 20))
        #expect(index.summary().map { [$0.ltp, $0.quote, $0.depth] } == [[1, 1, 2]])
        #expect(index.remove("C", self.reliance, .depth) == true)
        #expect(index.heldTarget(self.reliance) == FeedTarget(mode: .depth, depth: 5), "fewer levels when the 20-level holder leaves")
        #expect(index.remove("D", self.reliance, .depth) == true)
        #expect(index.remove("A", self.reliance, .quote) == true)
        #expect(index.remove("A", self.reliance, .quote) == false, "removing twice is harmless")
        #expect(index.heldTarget(self.reliance) == FeedTarget(mode: .ltp, depth: 0))
        #expect(index.remove("B", self.reliance, .ltp) == true)
        #expect(index.heldTarget(self.reliance) == nil && index.instrumentCount == 0 && !index.holds(self.reliance))
    }

    @Test("holding a mode twice is idempotent; one removal releases it")
    func idempotent() {
        var index = SubscriptionIndex<String>()
        index.add("A", self.reliance, .ltp, depth: 5)
        index.add("A", self.reliance, .ltp, depth: 5)
        #expect(index.summary().map(\.ltp) == [1])
        #expect(index.remove("A", self.reliance, .ltp) == true)
        #expect(index.instrumentCount == 0)
    }

    @Test("fan-out: one delivery per mode a member holds at or below the tick's, tagged with that mode")
    func fanOutRule() {
        var index = SubscriptionIndex<String>()
        for (member, mode) in [("all", SubscriptionMode.ltp), ("all", .quote), ("all", .depth), ("depth", .depth), ("ltp", .ltp)] {
            index.add(member, self.reliance, mode, depth: 5)
        }
        func recipients(_ mode: SubscriptionMode) -> [String: [SubscriptionMode]] {
            var result: [String: [SubscriptionMode]] = [:]
            index.forEachRecipient(of: self.reliance, tickMode: mode) { member, tag in result[member, default: []].append(tag) }
            return result
        }
        #expect(recipients(.depth) == ["all": [.ltp, .quote, .depth], "depth": [.depth], "ltp": [.ltp]])
        #expect(recipients(.quote) == ["all": [.ltp, .quote], "ltp": [.ltp]])
        #expect(recipients(.ltp) == ["all": [.ltp], "ltp": [.ltp]], "a lower-mode tick never reaches higher-mode-only members")
        #expect(index.remove("all", self.reliance, .quote) == true)
        #expect(recipients(.depth)["all"] == [.ltp, .depth])
    }

    @Test("a target covers another of a lower mode, or of the same mode with no more levels")
    func targets() {
        let depth20 = FeedTarget(mode: .depth, depth: 20)
        let depth5 = FeedTarget(mode: .depth, depth: 5)
        let quote = FeedTarget(mode: .quote, depth: 20)
        #expect(quote.depth == 0, "depth means nothing below Depth")
        #expect(depth20.covers(depth5) && !depth5.covers(depth20) && depth5.covers(quote) && !quote.covers(depth5))
        #expect(quote.covers(FeedTarget(mode: .ltp, depth: 0)) && quote.covers(quote))
        #expect(depth5.union(quote) == depth5 && depth5.union(depth20) == depth20)
    }
}

@Suite("LTP coalescer")
struct LTPCoalescerTests {
    let ms: Int64 = 1_000_000

    @Test("first tick goes at once, the rest of the window is held and flushed at its end")
    func window() {
        var coalescer = LTPCoalescer(windowNanoseconds: 50 * self.ms)
        #expect(coalescer.offer(now: 0) == .sendNow)
        #expect(coalescer.offer(now: 10 * self.ms) == .holdAndScheduleFlush(at: 50 * self.ms))
        #expect(coalescer.offer(now: 20 * self.ms) == .hold)
        #expect(coalescer.hasPending)
        let flushedAtEnd = coalescer.flush(now: 50 * self.ms)
        #expect(flushedAtEnd, "the held (latest) tick is delivered at the window's end")
        #expect(!coalescer.hasPending)
        #expect(coalescer.offer(now: 60 * self.ms) == .holdAndScheduleFlush(at: 100 * self.ms))
        let flushedAgain = coalescer.flush(now: 100 * self.ms)
        #expect(flushedAgain)
        #expect(coalescer.offer(now: 300 * self.ms) == .sendNow, "after a quiet window a tick goes at once")
    }

    @Test("a flush with nothing held sends nothing")
    func emptyFlush() {
        var coalescer = LTPCoalescer(windowNanoseconds: 50 * self.ms)
        #expect(coalescer.offer(now: 0) == .sendNow)
        let flushed = coalescer.flush(now: 50 * self.ms)
        #expect(!flushed)
        #expect(coalescer.offer(now: 51 * self.ms) == .sendNow)
    }
}

@Suite("Conflating outbox")
struct ConflatingOutboxTests {
    @Test("latest frame per key wins, order of first arrival is kept, the budget is enforced")
    func conflation() {
        var outbox = ConflatingOutbox(byteBudget: 100)
        let a = ConflatingOutbox.Key(instrument: Instrument(exchange: "NSE", symbol: "A"), mode: .ltp)
        let b = ConflatingOutbox.Key(instrument: Instrument(exchange: "NSE", symbol: "B"), mode: .ltp)
        #expect(outbox.hold(.init(string: "a1-------"), for: a) == .held)
        #expect(outbox.hold(.init(string: "b1"), for: b) == .held)
        #expect(outbox.hold(.init(string: "a2"), for: a) == .conflated)
        #expect(outbox.pendingBytes == 4)
        #expect(outbox.conflatedCount == 1)
        #expect(outbox.hold(.init(string: String(repeating: "x", count: 99)), for: a) == .overBudget)
        #expect(outbox.popFirst().map { String(buffer: $0) } == "a2")
        #expect(outbox.popFirst().map { String(buffer: $0) } == "b1")
        #expect(outbox.popFirst() == nil)
        #expect(outbox.pendingBytes == 0)
    }
}
