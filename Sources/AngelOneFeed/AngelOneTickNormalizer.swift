import MarketData

/// Turns SmartAPI packets into ``Tick``s for the OpenAlgo mode an instrument is subscribed at.
///
/// A tick never claims more than its packet holds: an LTP packet yields an LTP tick whatever the
/// subscription, and a SnapQuote packet for a Quote subscriber yields a Quote tick. Prices are
/// divided per exchange type (paise, or 1e-7 rupee for currency derivatives).
package enum AngelOneTickNormalizer {
    /// - Parameters:
    ///   - instrument: the OpenAlgo instrument the caller mapped the packet's token to.
    ///   - mode: the mode the instrument is subscribed at.
    ///   - receivedAt: epoch milliseconds for `timestamp`; `nil` leaves it to the hub.
    package static func tick(from packet: AngelOnePacket, instrument: Instrument, mode: SubscriptionMode, receivedAt: Int64?) -> Tick {
        let header = packet.header
        let divisor = AngelOneExchangeType(rawValue: header.exchangeType)?.priceDivisor ?? 100
        var tick: Tick
        switch packet {
        case .ltp(_, let lastPrice):
            tick = Tick(instrument: instrument, mode: .ltp)
            tick.ltp = Double(lastPrice) / divisor
        case .quote(_, let quote):
            tick = Tick(instrument: instrument, mode: min(mode, .quote))
            self.fill(&tick, quote, divisor: divisor)
        case .snapQuote(_, let quote, let snap):
            tick = Tick(instrument: instrument, mode: mode)
            self.fill(&tick, quote, divisor: divisor)
            if mode >= .quote {
                tick.openInterest = snap.openInterest
                tick.upperCircuit = Double(snap.upperCircuit) / divisor
                tick.lowerCircuit = Double(snap.lowerCircuit) / divisor
            }
            if mode == .depth {
                tick.depth = self.depth(snap.bestFive, divisor: divisor)
            }
        case .depth20(_, let book):
            tick = Tick(instrument: instrument, mode: .depth)
            tick.depth = self.depth(book, divisor: divisor)
            tick.timestamp = receivedAt
            return tick
        }
        tick.lastTradeTime = header.exchangeTimestamp
        tick.timestamp = receivedAt
        return tick
    }

    private static func fill(_ tick: inout Tick, _ quote: AngelOneQuoteFields, divisor: Double) {
        tick.ltp = Double(quote.lastPrice) / divisor
        guard tick.mode >= .quote else { return }
        tick.open = Double(quote.open) / divisor
        tick.high = Double(quote.high) / divisor
        tick.low = Double(quote.low) / divisor
        tick.close = Double(quote.close) / divisor
        tick.volume = quote.volume
        tick.lastQuantity = quote.lastQuantity
        tick.averagePrice = Double(quote.averagePrice) / divisor
        tick.totalBuyQuantity = self.quantity(quote.totalBuyQuantity)
        tick.totalSellQuantity = self.quantity(quote.totalSellQuantity)
    }

    /// A quantity sent as a double; `nil` rather than a trap when it is not a representable count.
    private static func quantity(_ value: Double) -> Int64? {
        guard value.isFinite, abs(value) < 9.2e18 else { return nil }
        return Int64(value.rounded())
    }

    private static func depth(_ bestFive: AngelOneBestFive, divisor: Double) -> MarketDepth {
        var buy: [DepthLevel] = []
        var sell: [DepthLevel] = []
        buy.reserveCapacity(5)
        sell.reserveCapacity(5)
        for index in 0..<AngelOneBestFive.rowCount {
            guard let row = bestFive.row(index) else { continue }
            let level = self.level(row.level, divisor: divisor)
            if row.isBid { buy.append(level) } else { sell.append(level) }
        }
        return MarketDepth(buy: buy, sell: sell)
    }

    private static func depth(_ book: AngelOneDepth20, divisor: Double) -> MarketDepth {
        var buy: [DepthLevel] = []
        var sell: [DepthLevel] = []
        buy.reserveCapacity(AngelOneDepth20.levelCount)
        sell.reserveCapacity(AngelOneDepth20.levelCount)
        for index in 0..<AngelOneDepth20.levelCount {
            if let level = book.bid(index) { buy.append(self.level(level, divisor: divisor)) }
            if let level = book.ask(index) { sell.append(self.level(level, divisor: divisor)) }
        }
        return MarketDepth(buy: buy, sell: sell)
    }

    private static func level(_ level: AngelOneDepthLevel, divisor: Double) -> DepthLevel {
        DepthLevel(price: Double(level.price) / divisor, quantity: level.quantity, orders: level.orders)
    }
}
