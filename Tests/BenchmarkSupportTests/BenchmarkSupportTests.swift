import BenchmarkSupport
import MarketData
import NIOCore
import OpenAlgoBusFeed
import Testing

/// The arithmetic oa-bench's results rest on: when ticks are due, which frames are expected, what
/// a timestamp means, and that the injected messages are what the agent's bus decoder reads.
@Suite("Benchmark support")
struct BenchmarkSupportTests {
    @Test("ticks fall due at k / rate from the start, without drift over an hour")
    func scheduleHasNoDrift() {
        let schedule = InjectionSchedule(ticksPerSecond: 800, universe: 10)
        #expect(schedule.dueOffsetNanoseconds(ofTick: 0) == 0)
        #expect(schedule.dueOffsetNanoseconds(ofTick: 1) == 1_250_000)
        #expect(schedule.dueOffsetNanoseconds(ofTick: 800 * 3600) == 3600 * 1_000_000_000)
        let third = InjectionSchedule(ticksPerSecond: 3, universe: 1)
        #expect(third.dueOffsetNanoseconds(ofTick: 3 * 86_400) == 86_400 * 1_000_000_000)
    }

    @Test("a late injector finds every tick due up to now, and none beyond")
    func ticksDueCatchUp() {
        let schedule = InjectionSchedule(ticksPerSecond: 3, universe: 4)
        #expect(schedule.ticksDue(afterNanoseconds: -1) == 0)
        #expect(schedule.ticksDue(afterNanoseconds: 0) == 1)
        for tick in 1..<100 {
            let due = schedule.dueOffsetNanoseconds(ofTick: tick)
            #expect(schedule.ticksDue(afterNanoseconds: due - 1) == tick)
            #expect(schedule.ticksDue(afterNanoseconds: due) == tick + 1)
        }
        #expect(schedule.ticksDue(afterNanoseconds: 10_000_000_000) == 31, "ticks 0 to 30 are due after 10 s at 3/s")
        #expect((0..<8).map(schedule.symbolIndex(ofTick:)) == [0, 1, 2, 3, 0, 1, 2, 3])
    }

    @Test("expected frames: ticks of each symbol times its reading subscribers")
    func expectedFrames() {
        let shared = SubscriptionLayout(clients: 100, symbolsPerClient: 10, universe: 10, stalled: 0)
        #expect(shared.expectedFrames(ticksPerSymbol: Array(repeating: 80, count: 10)) == 80_000)

        // Four clients with two symbols each of a universe of four; client 0 stalls.
        let spread = SubscriptionLayout(clients: 4, symbolsPerClient: 2, universe: 4, stalled: 1)
        #expect(spread.symbolIndices(ofClient: 3) == [3, 0])
        #expect(spread.readersPerSymbol == [1, 1, 2, 2])
        #expect(spread.expectedFrames(ticksPerSymbol: [10, 20, 30, 40]) == 10 + 20 + 60 + 80)
        #expect(spread.expectedFrames(ofClient: 3, ticksPerSymbol: [10, 20, 30, 40]) == 50)
        #expect(
            spread.subscribeRequest(ofClient: 1, mode: .depth)
                == #"{"action": "subscribe", "mode": 3, "symbols": [{"symbol": "BENCH2", "exchange": "NSE"}, {"symbol": "BENCH3", "exchange": "NSE"}]}"#
        )
    }

    @Test("timestamps in s, ms, µs and ns are told apart by magnitude")
    func timestampUnits() {
        let nanoseconds: Int64 = 1_795_737_969_836_123_457
        #expect(EpochTimestamp.nanoseconds(from: 1_795_737_969) == 1_795_737_969_000_000_000)
        #expect(EpochTimestamp.nanoseconds(from: 1_795_737_969_836) == 1_795_737_969_836_000_000)
        #expect(EpochTimestamp.nanoseconds(from: 1_795_737_969_836_123) == 1_795_737_969_836_123_000)
        #expect(EpochTimestamp.nanoseconds(from: nanoseconds) == nanoseconds)
    }

    @Test("prices are written as Python writes the rupee floats")
    func prices() {
        #expect(AdapterMessageFactory.price(123_450) == "1234.5")
        #expect(AdapterMessageFactory.price(123_405) == "1234.05")
        #expect(AdapterMessageFactory.price(123_400) == "1234.0")
        #expect(AdapterMessageFactory.price(123_499) == "1234.99")
    }

    @Test("injected messages decode on the agent's bus to ticks of every modelled field", arguments: BenchMode.allCases)
    func messagesDecode(mode: BenchMode) throws {
        let factory = AdapterMessageFactory(mode: mode, universe: 3)
        let timestamp: Int64 = 1_795_737_969_836_123_457
        let outcome = ZeroMQBusDecoder.decode(
            topic: ByteBuffer(bytes: factory.topic(symbolIndex: 2)),
            body: ByteBuffer(bytes: factory.body(symbolIndex: 2, sequence: 7, timestampNanoseconds: timestamp))
        )
        guard case .tick(let tick) = outcome else {
            Issue.record("not a tick: \(outcome)")
            return
        }
        #expect(tick.instrument == Instrument(exchange: "NSE", symbol: "BENCH3"))
        #expect(Int(tick.mode.rawValue) == mode.number)
        #expect(tick.timestamp == timestamp)
        #expect(tick.ltp == 1020.35)
        #expect(tick.extraFields == nil, "the agent models every field the injector sends")
        #expect(tick.volume == (mode == .ltp ? nil : 100_175))
        #expect(tick.depth?.buy.count == (mode == .depth ? 5 : nil))
        #expect(tick.depth?.sell.first?.price == (mode == .depth ? 1020.4 : nil))
    }
}
