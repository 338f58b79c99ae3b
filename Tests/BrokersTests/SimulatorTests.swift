import BrokerKit
import Brokers
import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOPosix
import SimulatorFeed
import Testing

@Suite("Simulator feed")
struct SimulatorTests {
    final class CollectingSink: FeedEventSink {
        let ticks = NIOLockedValueBox<[Tick]>([])
        let states = NIOLockedValueBox<[FeedConnectionState]>([])

        func receive(_ tick: Tick) {
            self.ticks.withLockedValue { $0.append(tick) }
        }

        func feedStateChanged(_ state: FeedConnectionState) {
            self.states.withLockedValue { $0.append(state) }
        }

        func waitForTicks(_ count: Int) async throws -> [Tick] {
            for _ in 0..<200 {
                let ticks = self.ticks.withLockedValue { $0 }
                if ticks.count >= count { return ticks }
                try await Task.sleep(for: .milliseconds(20))
            }
            throw CancellationError()
        }
    }

    func makeFeed(ticksPerSecond: String = "200", seed: String = "1") throws -> SimulatorFeed {
        let adapter = try BrokerRegistry.makeAdapter(
            named: "Simulator",
            settings: BrokerSettings(["ticks_per_second": ticksPerSecond, "seed": seed]),
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test")
        )
        return try #require(adapter as? SimulatorFeed)
    }

    let reliance = Instrument(exchange: "NSE", symbol: "RELIANCE")
    let option = Instrument(exchange: "NFO", symbol: "NIFTY30DEC2524000CE")
    let index = Instrument(exchange: "NSE_INDEX", symbol: "NIFTY")

    @Test("depth ticks are realistic: tick size, bid below ask, cumulative volume, OI for derivatives")
    func depthTicks() async throws {
        let feed = try self.makeFeed()
        let sink = CollectingSink()
        try await feed.connect(sink: sink)
        #expect(feed.connectionState == .connected)
        #expect(sink.states.withLockedValue { $0 } == [.connected])
        let outcomes = await feed.subscribe([self.reliance, self.option, self.index], mode: .depth, depth: 5)
        #expect(outcomes == Array(repeating: .subscribed(actualDepth: nil), count: 3))
        let ticks = try await sink.waitForTicks(60)
        await feed.disconnect()
        for tick in ticks {
            let ltp = try #require(tick.ltp)
            #expect(abs((ltp * 20).rounded() - ltp * 20) < 1e-6, "\(ltp) is a multiple of 0.05")
            #expect(tick.mode == .depth)
            let depth = try #require(tick.depth)
            #expect(depth.buy.count == 5 && depth.sell.count == 5)
            if tick.instrument == self.index {
                #expect(tick.volume == nil)
                #expect(depth.buy.allSatisfy { $0.price == 0 })
            } else {
                #expect(depth.buy[0].price < depth.sell[0].price)
                #expect(zip(depth.buy, depth.buy.dropFirst()).allSatisfy { $0.price > $1.price })
                #expect(zip(depth.sell, depth.sell.dropFirst()).allSatisfy { $0.price < $1.price })
                #expect((tick.close ?? 0) > 0 && (tick.volume ?? 0) > 0)
            }
            #expect((tick.openInterest != nil) == (tick.instrument == self.option))
        }
        let volumes = ticks.filter { $0.instrument == self.reliance }.compactMap(\.volume)
        #expect(volumes == volumes.sorted(), "volume is cumulative")
        let stockPrices = ticks.filter { $0.instrument == self.reliance }.compactMap(\.close)
        #expect(stockPrices.allSatisfy { $0 >= 100 }, "RELIANCE is priced as a stock, not as an option because it ends in CE")
    }

    @Test("the same seed gives the same prices")
    func deterministic() async throws {
        func prices() async throws -> [Double] {
            let feed = try self.makeFeed(seed: "42")
            let sink = CollectingSink()
            try await feed.connect(sink: sink)
            _ = await feed.subscribe([self.reliance], mode: .ltp, depth: 5)
            let ticks = try await sink.waitForTicks(10)
            await feed.disconnect()
            return ticks.prefix(10).compactMap(\.ltp)
        }
        #expect(try await prices() == prices())
    }

    @Test("LTP ticks carry only prices; unknown exchanges are refused with the reference's text; depth falls back")
    func modesAndErrors() async throws {
        let feed = try self.makeFeed()
        let sink = CollectingSink()
        try await feed.connect(sink: sink)
        let outcomes = await feed.subscribe([Instrument(exchange: "NASDAQ", symbol: "AAPL"), self.reliance], mode: .ltp, depth: 5)
        #expect(outcomes == [.refused(message: "Symbol AAPL not found for exchange NASDAQ"), .subscribed(actualDepth: nil)])
        let tick = try #require(try await sink.waitForTicks(1).first)
        #expect(tick.mode == .ltp && tick.ltp != nil && tick.open == nil && tick.depth == nil)
        #expect(await feed.subscribe([self.reliance], mode: .depth, depth: 25) == [.subscribed(actualDepth: 20)])
        #expect(await feed.subscribe([self.reliance], mode: .depth, depth: 50) == [.subscribed(actualDepth: nil)])
        await feed.unsubscribe([self.reliance])
        try await Task.sleep(for: .milliseconds(50))
        let settled = sink.ticks.withLockedValue { $0.count }
        try await Task.sleep(for: .milliseconds(100))
        #expect(sink.ticks.withLockedValue { $0.count } == settled, "no ticks after unsubscribe")
        await feed.disconnect()
    }

    @Test("configuration errors name the key and the value; unknown brokers list the known ones")
    func configuration() {
        #expect(throws: BrokerConfigurationError("[brokers.simulator] ticks_per_second must be a number, got 'fast'")) {
            try SimulatorConfiguration(BrokerSettings(["ticks_per_second": "fast"]))
        }
        #expect(throws: BrokerConfigurationError.self) { try SimulatorConfiguration(BrokerSettings(["ticks_per_second": "0"])) }
        #expect(
            throws: BrokerConfigurationError(
                "unknown broker 'kite'; known brokers: zerodha, angelone (angel), dhan, fyers, upstox, simulator, replay, zmq; this build supports: zerodha, angelone, dhan, simulator, replay, zmq"
            )
        ) {
            try BrokerRegistry.makeAdapter(
                named: "kite",
                settings: BrokerSettings(),
                eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
                logger: Logger(label: "test")
            )
        }
    }
}
