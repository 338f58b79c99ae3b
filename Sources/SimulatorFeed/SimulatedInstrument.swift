import BrokerKit
import MarketData

/// One instrument's simulated market: a seeded random walk in 0.05 steps around a plausible
/// previous close, with cumulative volume, open interest for derivatives and a book around the price.
///
/// Deterministic: the same instrument and seed give the same sequence of ticks, whatever else is
/// subscribed, so tests and demos can rely on the numbers.
struct SimulatedInstrument {
    static let tickSize = 0.05
    static let supportedDepths = [5, 20, 30, 50]

    let instrument: Instrument
    var mode: SubscriptionMode
    var depthLevels: Int
    /// Fractional ticks owed; a tick is emitted each time it reaches 1.
    var due: Double

    private var random: SplitMix64
    private let isIndex: Bool
    private let isDerivative: Bool
    private let previousClose: Double
    private var price: Double
    private var open: Double
    private var high: Double
    private var low: Double
    private var volume: Int64 = 0
    private var turnover: Double = 0
    private var openInterest: Int64
    private let previousOpenInterest: Int64

    init(instrument: Instrument, mode: SubscriptionMode, depthLevels: Int, seed: UInt64) {
        self.instrument = instrument
        self.mode = mode
        self.depthLevels = depthLevels
        self.random = SplitMix64(seed: seed ^ Self.fnv1a("\(instrument.exchange):\(instrument.symbol)"))
        self.isIndex = ExchangeCode.indices.contains(instrument.exchange)
        self.isDerivative = ExchangeCode.derivatives.contains(instrument.exchange)
        self.due = self.random.nextUnit()
        let close = Self.roundToTick(Self.basePrice(for: instrument, random: &self.random))
        self.previousClose = close
        let gap = Self.roundToTick(close * (self.random.nextUnit() - 0.5) * 0.01)
        self.price = Self.roundToTick(max(Self.tickSize, close + gap))
        self.open = self.price
        self.high = self.price
        self.low = self.price
        self.previousOpenInterest = self.isDerivative ? Int64(100_000 + self.random.next() % 5_000_000) : 0
        self.openInterest = self.previousOpenInterest
    }

    /// The largest supported depth at or below `requested` (never below 5).
    static func servedDepth(for requested: Int) -> Int {
        self.supportedDepths.last { $0 <= requested } ?? 5
    }

    /// Moves the market one step and returns the tick for the subscribed mode.
    mutating func nextTick(timestamp: Int64) -> Tick {
        let step = (self.random.nextUnit() + self.random.nextUnit() + self.random.nextUnit() - 1.5) * self.price * 0.0008
        self.price = max(Self.tickSize, Self.roundToTick(self.price + step))
        self.high = max(self.high, self.price)
        self.low = min(self.low, self.price)
        let quantity: Int64 = self.isIndex ? 0 : Int64(1 + self.random.next() % 500)
        self.volume += quantity
        self.turnover += Double(quantity) * self.price
        if self.isDerivative {
            self.openInterest = max(0, self.openInterest + Int64(self.random.next() % 2001) - 1000)
        }

        var tick = Tick(instrument: self.instrument, mode: self.mode)
        tick.ltp = self.price
        tick.lastTradeTime = timestamp
        tick.timestamp = timestamp
        guard self.mode >= .quote else { return tick }
        tick.open = self.open
        tick.high = self.high
        tick.low = self.low
        tick.close = self.previousClose
        if !self.isIndex {
            tick.volume = self.volume
            tick.lastQuantity = quantity
            tick.averagePrice = self.volume > 0 ? (self.turnover / Double(self.volume) * 100).rounded() / 100 : self.price
            tick.totalBuyQuantity = Int64(10_000 + self.random.next() % 500_000)
            tick.totalSellQuantity = Int64(10_000 + self.random.next() % 500_000)
            tick.bid = Self.roundToTick(self.price - Self.tickSize)
            tick.ask = Self.roundToTick(self.price + Self.tickSize)
            tick.bidQuantity = Int64(1 + self.random.next() % 2_000)
            tick.askQuantity = Int64(1 + self.random.next() % 2_000)
            tick.upperCircuit = Self.roundToTick(self.previousClose * 1.2)
            tick.lowerCircuit = Self.roundToTick(self.previousClose * 0.8)
        }
        if self.isDerivative {
            tick.openInterest = self.openInterest
            tick.previousOpenInterest = self.previousOpenInterest
        }
        guard self.mode == .depth else { return tick }
        tick.depth = self.makeDepth()
        return tick
    }

    private mutating func makeDepth() -> MarketDepth {
        if self.isIndex {
            // Indices have no book; like the reference's Angel adapter, send empty levels.
            let empty = Array(repeating: DepthLevel(price: 0, quantity: 0, orders: 0), count: 5)
            return MarketDepth(buy: empty, sell: empty)
        }
        var buy: [DepthLevel] = []
        var sell: [DepthLevel] = []
        buy.reserveCapacity(self.depthLevels)
        sell.reserveCapacity(self.depthLevels)
        var bid = Self.roundToTick(max(Self.tickSize, self.price - Self.tickSize))
        var ask = Self.roundToTick(max(bid + Self.tickSize, self.price + Self.tickSize))
        for _ in 0..<self.depthLevels {
            buy.append(DepthLevel(price: bid, quantity: Int64(1 + self.random.next() % 5_000), orders: Int64(1 + self.random.next() % 40)))
            sell.append(DepthLevel(price: ask, quantity: Int64(1 + self.random.next() % 5_000), orders: Int64(1 + self.random.next() % 40)))
            bid = Self.roundToTick(max(0, bid - Self.tickSize * Double(1 + self.random.next() % 3)))
            ask = Self.roundToTick(ask + Self.tickSize * Double(1 + self.random.next() % 3))
        }
        return MarketDepth(buy: buy, sell: sell)
    }

    static func roundToTick(_ value: Double) -> Double {
        // Whole paise first, then to the nearest 5 paise, so prices print as 1424.05, not 1424.0500000001.
        let paise = (value * 100).rounded()
        return ((paise / 5).rounded() * 5) / 100
    }

    /// An option in OpenAlgo's format ends in a strike and `CE`/`PE` (`NIFTY28DEC2425000CE`); an
    /// equity such as `RELIANCE` merely ends in the letters.
    static func isOption(_ symbol: String, exchange: String) -> Bool {
        guard ExchangeCode.derivatives.contains(exchange), symbol.hasSuffix("CE") || symbol.hasSuffix("PE") else { return false }
        return symbol.dropLast(2).last?.isNumber == true
    }

    private static func basePrice(for instrument: Instrument, random: inout SplitMix64) -> Double {
        let symbol = instrument.symbol.uppercased()
        if ExchangeCode.indices.contains(instrument.exchange) {
            if symbol.contains("BANK") { return 52_000 + random.nextUnit() * 2_000 }
            if symbol.contains("SENSEX") { return 80_000 + random.nextUnit() * 3_000 }
            if symbol.contains("NIFTY") { return 24_000 + random.nextUnit() * 1_000 }
            return 5_000 + random.nextUnit() * 45_000
        }
        if Self.isOption(symbol, exchange: instrument.exchange) { return 20 + random.nextUnit() * 480 }
        if instrument.exchange == "CDS" || instrument.exchange == "BCD" { return 80 + random.nextUnit() * 10 }
        return 100 + random.nextUnit() * 4_900
    }

    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}
