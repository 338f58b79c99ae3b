import MarketData

/// Turns Dhan packets into ``Tick``s for the OpenAlgo mode an instrument is subscribed at.
///
/// Dhan prices are float32 rupees, so they are widened to `Double` exactly and never scaled. Only
/// ticker, quote and full packets are market data; OI, previous-close, market-status and disconnect
/// packets yield `nil` and are for the adapter to act on.
package enum DhanTickNormalizer {
    /// - Parameters:
    ///   - instrument: the OpenAlgo instrument the caller mapped the packet's segment and security id to.
    ///   - mode: the mode the instrument is subscribed at.
    ///   - receivedAt: epoch milliseconds for `timestamp`; `nil` leaves it to the hub.
    package static func tick(from packet: DhanPacket, instrument: Instrument, mode: SubscriptionMode, receivedAt: Int64?) -> Tick? {
        var tick: Tick
        switch packet {
        case .ticker(_, let lastPrice, let lastTradeTime):
            tick = Tick(instrument: instrument, mode: .ltp)
            tick.ltp = Double(lastPrice)
            tick.lastTradeTime = Int64(lastTradeTime)
        case .quote(_, let trade, let prices):
            tick = Tick(instrument: instrument, mode: min(mode, .quote))
            self.fill(&tick, trade, prices)
        case .full(_, let trade, let openInterest, let prices, let depth):
            tick = Tick(instrument: instrument, mode: mode)
            self.fill(&tick, trade, prices)
            if mode >= .quote { tick.openInterest = Int64(openInterest.openInterest) }
            if mode == .depth { tick.depth = self.depth(depth) }
        case .openInterest, .previousClose, .marketStatus, .disconnect:
            return nil
        }
        tick.timestamp = receivedAt
        return tick
    }

    /// A Depth tick from a book the 20-level feed completed (see ``DhanDepthBookAssembler``); it has
    /// no prices besides the book, as that feed sends none.
    package static func tick(fromTwentyLevelDepth depth: MarketDepth, instrument: Instrument, receivedAt: Int64?) -> Tick {
        var tick = Tick(instrument: instrument, mode: .depth)
        tick.depth = depth
        tick.timestamp = receivedAt
        return tick
    }

    private static func fill(_ tick: inout Tick, _ trade: DhanTradeFields, _ prices: DhanDayPrices) {
        tick.ltp = Double(trade.lastPrice)
        tick.lastTradeTime = Int64(trade.lastTradeTime)
        guard tick.mode >= .quote else { return }
        tick.open = Double(prices.open)
        tick.high = Double(prices.high)
        tick.low = Double(prices.low)
        tick.close = Double(prices.close)
        tick.volume = Int64(trade.volume)
        tick.lastQuantity = Int64(trade.lastQuantity)
        tick.averagePrice = Double(trade.averagePrice)
        tick.totalBuyQuantity = Int64(trade.totalBuyQuantity)
        tick.totalSellQuantity = Int64(trade.totalSellQuantity)
    }

    private static func depth(_ depth: DhanFiveLevelDepth) -> MarketDepth {
        var buy: [DepthLevel] = []
        var sell: [DepthLevel] = []
        buy.reserveCapacity(DhanFiveLevelDepth.levelCount)
        sell.reserveCapacity(DhanFiveLevelDepth.levelCount)
        for index in 0..<DhanFiveLevelDepth.levelCount {
            guard let row = depth.row(index) else { continue }
            buy.append(DepthLevel(price: Double(row.bidPrice), quantity: Int64(row.bidQuantity), orders: Int64(row.bidOrders)))
            sell.append(DepthLevel(price: Double(row.askPrice), quantity: Int64(row.askQuantity), orders: Int64(row.askOrders)))
        }
        return MarketDepth(buy: buy, sell: sell)
    }
}
