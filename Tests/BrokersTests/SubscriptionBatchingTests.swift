import BrokerKit
import MarketData
import NIOCore
import Testing

@Suite("Subscription batching and connection slots")
struct SubscriptionBatchingTests {
    func instruments(_ count: Int, exchange: String = "NSE") -> [Instrument] {
        (0..<count).map { Instrument(exchange: exchange, symbol: "S\($0)") }
    }

    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test("the first change opens a window; later ones join it; a flush groups unsubscribes first, then by mode")
    func window() {
        var batcher = SubscriptionBatcher(configuration: .init(window: .milliseconds(500)))
        let symbols = self.instruments(4)
        #expect(
            batcher.add(.subscribe(mode: .quote, depth: 5), for: [symbols[0], symbols[1]], now: self.start)
                == .scheduleFlush(at: self.start + .milliseconds(500))
        )
        #expect(batcher.add(.subscribe(mode: .ltp, depth: 5), for: [symbols[2]], now: self.start + .milliseconds(100)) == .none)
        #expect(batcher.add(.unsubscribe, for: [symbols[3]], now: self.start + .milliseconds(200)) == .none)
        #expect(batcher.add(.subscribe(mode: .quote, depth: 5), for: [], now: self.start) == .none)
        #expect(
            batcher.flush() == [
                SubscriptionBatch(change: .unsubscribe, instruments: [symbols[3]]),
                SubscriptionBatch(change: .subscribe(mode: .quote, depth: 5), instruments: [symbols[0], symbols[1]]),
                SubscriptionBatch(change: .subscribe(mode: .ltp, depth: 5), instruments: [symbols[2]]),
            ]
        )
        #expect(!batcher.hasPendingChanges)
        #expect(batcher.add(.unsubscribe, for: [symbols[0]], now: self.start + .seconds(1)) == .scheduleFlush(at: self.start + .milliseconds(1500)))
    }

    @Test("the latest change for an instrument within a window wins")
    func latestWins() {
        var batcher = SubscriptionBatcher()
        let symbol = self.instruments(1)
        _ = batcher.add(.subscribe(mode: .ltp, depth: 5), for: symbol, now: self.start)
        _ = batcher.add(.subscribe(mode: .depth, depth: 5), for: symbol, now: self.start)
        #expect(batcher.flush() == [SubscriptionBatch(change: .subscribe(mode: .depth, depth: 5), instruments: symbol)])
        _ = batcher.add(.subscribe(mode: .ltp, depth: 5), for: symbol, now: self.start)
        _ = batcher.add(.unsubscribe, for: symbol, now: self.start)
        #expect(batcher.flush() == [SubscriptionBatch(change: .unsubscribe, instruments: symbol)])
        _ = batcher.add(.unsubscribe, for: symbol, now: self.start)
        batcher.discardPendingChanges()
        #expect(batcher.flush() == [])
    }

    @Test("a full message flushes at once; batches never exceed the per-message cap (Kite: 200)")
    func cap() {
        var batcher = SubscriptionBatcher(configuration: .init(maximumInstrumentsPerMessage: 200))
        let symbols = self.instruments(450)
        #expect(
            batcher.add(.subscribe(mode: .quote, depth: 5), for: Array(symbols[0..<150]), now: self.start)
                == .scheduleFlush(at: self.start + .milliseconds(500))
        )
        #expect(batcher.add(.subscribe(mode: .quote, depth: 5), for: Array(symbols[150..<450]), now: self.start) == .flushNow)
        let batches = batcher.flush()
        #expect(batches.map(\.instruments.count) == [200, 200, 50])
        #expect(batches.flatMap(\.instruments) == symbols)
    }

    @Test("slots fill in order up to the per-connection limit; a full pool refuses with the reference's text")
    func slots() {
        var pool = ConnectionSlotAllocator(maximumConnections: 2, maximumInstrumentsPerConnection: 2)
        let symbols = self.instruments(5)
        #expect(pool.assign(symbols[0]) == .assigned(slot: 0, opensConnection: true))
        #expect(pool.assign(symbols[1]) == .assigned(slot: 0, opensConnection: false))
        #expect(pool.assign(symbols[0]) == .alreadyAssigned(slot: 0))
        #expect(pool.assign(symbols[2]) == .assigned(slot: 1, opensConnection: true))
        #expect(pool.assign(symbols[3]) == .assigned(slot: 1, opensConnection: false))
        #expect(pool.assign(symbols[4]) == .poolFull)
        #expect(
            pool.capacityMessage() == "Maximum capacity reached: 2 connections \u{00D7} 2 symbols = 4 symbols. Currently subscribed to 4 symbols."
        )
        #expect(pool.release(symbols[0]) == .init(slot: 0, closesConnection: false))
        #expect(pool.release(symbols[0]) == nil)
        #expect(pool.assign(symbols[4]) == .assigned(slot: 0, opensConnection: false), "freed room is reused")
        #expect(pool.release(symbols[2]) == .init(slot: 1, closesConnection: false))
        #expect(pool.release(symbols[3]) == .init(slot: 1, closesConnection: true))
        #expect(pool.instrumentCount == 2 && pool.instrumentCount(onSlot: 0) == 2 && pool.slot(of: symbols[4]) == 0)
    }
}
