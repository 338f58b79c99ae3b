import MarketData

/// Turns Kite packets into ``Tick``s for the OpenAlgo mode an instrument is subscribed at.
///
/// Kite streams one mode per token (the highest any client wants), so a packet often carries more
/// than the subscription needs; the tick keeps only what its mode shows. A packet carrying less (a
/// quote packet arriving before a switch to `full` takes effect) yields a tick of the lower mode.
/// Index packets have no quantities or book and are delivered at the subscribed mode, as the
/// reference does, so Depth subscribers of an index still receive its prices.
package enum ZerodhaTickNormalizer {
    /// - Parameters:
    ///   - instrument: the OpenAlgo instrument the caller mapped the packet's token to.
    ///   - mode: the mode the instrument is subscribed at.
    ///   - receivedAt: epoch milliseconds for `timestamp`; `nil` leaves it to the hub.
    package static func tick(from packet: ZerodhaPacket, instrument: Instrument, mode: SubscriptionMode, receivedAt: Int64?) -> Tick {
        let divisor = ZerodhaSegment(token: packet.instrumentToken)?.priceDivisor ?? 100
        switch packet {
        case .ltp(let ltp):
            var tick = Tick(instrument: instrument, mode: .ltp)
            tick.timestamp = receivedAt
            tick.ltp = Double(ltp.lastPrice) / divisor
            return tick
        case .index(let index):
            var tick = Tick(instrument: instrument, mode: mode)
            tick.timestamp = receivedAt
            tick.ltp = Double(index.lastPrice) / divisor
            tick.lastTradeTime = index.exchangeTimestamp.map(Int64.init)
            guard mode >= .quote else { return tick }
            tick.open = Double(index.open) / divisor
            tick.high = Double(index.high) / divisor
            tick.low = Double(index.low) / divisor
            tick.close = Double(index.close) / divisor
            tick.change = Double(index.change) / divisor
            return tick
        case .quote(let quote):
            var tick = Tick(instrument: instrument, mode: min(mode, .quote))
            tick.timestamp = receivedAt
            self.fill(&tick, from: quote, divisor: divisor)
            return tick
        case .full(let full):
            var tick = Tick(instrument: instrument, mode: mode)
            tick.timestamp = receivedAt
            tick.lastTradeTime = Int64(full.lastTradeTime)
            self.fill(&tick, from: full.quote, divisor: divisor)
            guard mode >= .quote else { return tick }
            tick.openInterest = Int64(full.openInterest)
            guard mode == .depth else { return tick }
            tick.depth = self.depth(full.depth, divisor: divisor)
            return tick
        }
    }

    private static func fill(_ tick: inout Tick, from quote: ZerodhaQuotePacket, divisor: Double) {
        tick.ltp = Double(quote.lastPrice) / divisor
        guard tick.mode >= .quote else { return }
        tick.open = Double(quote.open) / divisor
        tick.high = Double(quote.high) / divisor
        tick.low = Double(quote.low) / divisor
        tick.close = Double(quote.close) / divisor
        tick.volume = Int64(quote.volume)
        tick.lastQuantity = Int64(quote.lastQuantity)
        tick.averagePrice = Double(quote.averagePrice) / divisor
        tick.totalBuyQuantity = Int64(quote.totalBuyQuantity)
        tick.totalSellQuantity = Int64(quote.totalSellQuantity)
    }

    private static func depth(_ depth: ZerodhaDepth, divisor: Double) -> MarketDepth {
        var buy: [DepthLevel] = []
        var sell: [DepthLevel] = []
        buy.reserveCapacity(ZerodhaDepth.levelCount)
        sell.reserveCapacity(ZerodhaDepth.levelCount)
        for index in 0..<ZerodhaDepth.levelCount {
            if let level = depth.bid(index) { buy.append(self.level(level, divisor: divisor)) }
            if let level = depth.ask(index) { sell.append(self.level(level, divisor: divisor)) }
        }
        return MarketDepth(buy: buy, sell: sell)
    }

    private static func level(_ level: ZerodhaDepthLevel, divisor: Double) -> DepthLevel {
        DepthLevel(price: Double(level.price) / divisor, quantity: Int64(level.quantity), orders: Int64(level.orders))
    }
}
