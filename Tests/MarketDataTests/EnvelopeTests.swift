import MarketData
import NIOCore
import Testing

@Suite("market_data envelope encoding")
struct EnvelopeTests {
    private func depthTick() -> Tick {
        var tick = Tick(instrument: Instrument(exchange: "NSE", symbol: "RELIANCE"), mode: .depth)
        tick.ltp = 1424.05
        tick.lastTradeTime = 1_746_171_226_000
        tick.timestamp = 1_795_737_969_836
        tick.open = 1415
        tick.high = 1432.5
        tick.low = 1408
        tick.close = 1418
        tick.volume = 100_000
        tick.lastQuantity = 50
        tick.averagePrice = 1420.25
        tick.depth = MarketDepth(
            buy: [DepthLevel(price: 1424, quantity: 50, orders: 3)],
            sell: [DepthLevel(price: 1424.1, quantity: 20, orders: 1)]
        )
        return tick
    }

    @Test("the frame matches the reference byte for byte, with the SDK's spellings and derived change")
    func depthFrame() {
        let frame = MarketDataEnvelope.frame(for: self.depthTick(), outerMode: .ltp, broker: "angel", allocator: ByteBufferAllocator())
        #expect(
            String(buffer: frame)
                == #"{"type": "market_data", "symbol": "RELIANCE", "exchange": "NSE", "mode": 1, "data": {"symbol": "RELIANCE", "exchange": "NSE", "mode": 3, "ltp": 1424.05, "ltt": 1746171226000, "timestamp": 1795737969836, "open": 1415.0, "high": 1432.5, "low": 1408.0, "close": 1418.0, "volume": 100000, "last_quantity": 50, "last_trade_quantity": 50, "average_price": 1420.25, "avg_trade_price": 1420.25, "change": 6.05, "change_percent": 0.43, "depth": {"buy": [{"price": 1424.0, "quantity": 50, "orders": 3}], "sell": [{"price": 1424.1, "quantity": 20, "orders": 1}]}}, "broker": "angel"}"#
        )
    }

    @Test("an LTP tick carries only what it has")
    func ltpFrame() {
        var tick = Tick(instrument: Instrument(exchange: "NSE_INDEX", symbol: "NIFTY 50"), mode: .ltp)
        tick.ltp = 24_310
        tick.timestamp = 5
        let frame = MarketDataEnvelope.frame(for: tick, outerMode: .ltp, broker: "simulator", allocator: ByteBufferAllocator())
        #expect(
            String(buffer: frame)
                == #"{"type": "market_data", "symbol": "NIFTY 50", "exchange": "NSE_INDEX", "mode": 1, "data": {"symbol": "NIFTY 50", "exchange": "NSE_INDEX", "mode": 1, "ltp": 24310.0, "timestamp": 5}, "broker": "simulator"}"#
        )
    }

    @Test("a feed's own change values win over derived ones")
    func feedChange() {
        var tick = Tick(instrument: Instrument(exchange: "NSE", symbol: "X"), mode: .quote)
        tick.ltp = 110
        tick.close = 100
        #expect(tick.effectiveChange == 10)
        #expect(tick.effectiveChangePercent == 10)
        tick.change = 1
        tick.changePercent = 2
        #expect(tick.effectiveChange == 1)
        #expect(tick.effectiveChangePercent == 2)
    }

    @Test("a price a hair below the previous close reads 0.0, not -0.0")
    func negativeZero() {
        var tick = Tick(instrument: Instrument(exchange: "NSE", symbol: "X"), mode: .quote)
        tick.ltp = 1509.6
        tick.close = 1509.65
        #expect(tick.effectiveChangePercent?.sign == .plus)
        var buffer = ByteBuffer()
        MarketDataEnvelope.writeData(of: tick, into: &buffer)
        #expect(String(buffer: buffer).contains(#""change_percent": 0.0}"#))
    }
}
