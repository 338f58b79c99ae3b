import MarketData
import StreamingHub
import Testing

@Suite("Subscription index and reference counts")
struct SubscriptionIndexTests {
    let reliance = Instrument(exchange: "NSE", symbol: "RELIANCE")

    @Test("the broker is asked only for what the highest remaining subscription needs")
    func referenceCounts() {
        var index = SubscriptionIndex<String>()
        #expect(index.reserve(self.reliance, .quote) == .needsBroker)
        index.confirm("A", self.reliance, .quote, reserved: true)
        #expect(index.reserve(self.reliance, .ltp) == .covered, "a lower mode rides on the Quote stream")
        index.confirm("B", self.reliance, .ltp, reserved: false)
        #expect(index.reserve(self.reliance, .depth) == .needsBroker, "a higher mode upgrades")
        index.confirm("C", self.reliance, .depth, reserved: true)
        #expect(index.brokerMode(for: self.reliance) == .depth)
        #expect(index.referenceCount(self.reliance, .quote) == 1)

        #expect(index.remove("C", self.reliance, .depth) == (true, .setMode(.quote)), "downgrade when Depth leaves")
        #expect(index.remove("A", self.reliance, .quote) == (true, .setMode(.ltp)))
        #expect(index.remove("A", self.reliance, .quote) == (false, nil), "removing twice is harmless")
        #expect(index.remove("B", self.reliance, .ltp) == (true, .unsubscribe), "the last one out unsubscribes")
        #expect(index.instrumentCount == 0)
    }

    @Test("subscribing twice to the same mode is idempotent; one unsubscribe releases it")
    func idempotent() {
        var index = SubscriptionIndex<String>()
        _ = index.reserve(self.reliance, .ltp)
        index.confirm("A", self.reliance, .ltp, reserved: true)
        #expect(index.reserve(self.reliance, .ltp) == .covered)
        index.confirm("A", self.reliance, .ltp, reserved: false)
        #expect(index.referenceCount(self.reliance, .ltp) == 1)
        #expect(index.remove("A", self.reliance, .ltp).change == .unsubscribe)
    }

    @Test("a pending reservation keeps the broker subscription alive through a concurrent unsubscribe")
    func reservations() {
        var index = SubscriptionIndex<String>()
        _ = index.reserve(self.reliance, .quote)
        index.confirm("A", self.reliance, .quote, reserved: true)
        #expect(index.reserve(self.reliance, .depth) == .needsBroker)
        #expect(index.remove("A", self.reliance, .quote).change == nil, "the Depth request in flight still needs the stream")
        #expect(index.cancelReservation(self.reliance, .depth, brokerSubscribed: true) == .unsubscribe)
        #expect(index.instrumentCount == 0)
        _ = index.reserve(self.reliance, .ltp)
        #expect(index.cancelReservation(self.reliance, .ltp, brokerSubscribed: false) == nil, "a refused request changes nothing upstream")
        #expect(index.instrumentCount == 0)
    }

    @Test("fan-out: one delivery per member per tick, tagged with its highest mode at or below the tick's")
    func fanOutRule() {
        var index = SubscriptionIndex<String>()
        for (member, mode) in [("ltp+quote", SubscriptionMode.ltp), ("ltp+quote", .quote), ("depth", .depth), ("ltp", .ltp)] {
            _ = index.reserve(self.reliance, mode)
            index.confirm(member, self.reliance, mode, reserved: true)
        }
        func recipients(_ mode: SubscriptionMode) -> [String: SubscriptionMode] {
            var result: [String: SubscriptionMode] = [:]
            index.forEachRecipient(of: self.reliance, tickMode: mode) { member, tag in
                #expect(result[member] == nil, "one delivery per member")
                result[member] = tag
            }
            return result
        }
        #expect(recipients(.depth) == ["ltp+quote": .quote, "depth": .depth, "ltp": .ltp])
        #expect(recipients(.quote) == ["ltp+quote": .quote, "ltp": .ltp])
        #expect(recipients(.ltp) == ["ltp+quote": .ltp, "ltp": .ltp], "a lower-mode tick never reaches higher-mode-only members")
        #expect(index.contains("ltp+quote", self.reliance, .quote))
        _ = index.remove("ltp+quote", self.reliance, .quote)
        #expect(recipients(.depth)["ltp+quote"] == .ltp)
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
