import WireJSON

/// One market-data update for one instrument, normalised from whatever the feed speaks.
///
/// Every field but the instrument and mode is optional because feeds differ in what they send;
/// a field that is `nil` is left out of the wire JSON rather than sent as a made-up zero.
public struct Tick: Sendable, Equatable {
    public var instrument: Instrument
    /// The mode of the data itself: an LTP tick has only prices, a Depth tick has a book.
    public var mode: SubscriptionMode

    public var ltp: Double?
    /// Last trade time, in the unit the broker uses (milliseconds for most).
    public var lastTradeTime: Int64?
    /// When the agent received the tick, in epoch milliseconds; set by the hub when a feed leaves it empty.
    public var timestamp: Int64?

    public var open: Double?
    public var high: Double?
    public var low: Double?
    /// The previous session's close, as every Indian broker reports it.
    public var close: Double?
    public var volume: Int64?
    /// Sent as both `last_quantity` and `last_trade_quantity`: adapters use the first, the SDK reads the second.
    public var lastQuantity: Int64?
    /// Sent as both `average_price` and `avg_trade_price` for the same reason.
    public var averagePrice: Double?
    public var totalBuyQuantity: Int64?
    public var totalSellQuantity: Int64?
    public var bid: Double?
    public var ask: Double?
    public var bidQuantity: Int64?
    public var askQuantity: Int64?
    public var openInterest: Int64?
    public var previousOpenInterest: Int64?
    public var upperCircuit: Double?
    public var lowerCircuit: Double?
    /// Change from the previous close; derived from `ltp` and `close` when the feed does not send it.
    public var change: Double?
    /// Change from the previous close in percent; derived like ``change``.
    public var changePercent: Double?
    public var depth: MarketDepth?
    /// Fields of the feed's own tick that none of the above can hold exactly, written after them,
    /// in order, into the tick's `data` object.
    ///
    /// Feeds that relay another program's ticks (the ZeroMQ bus, where OpenAlgo's adapters
    /// publish whatever their broker gives) put here the keys the agent does not model and values
    /// of a type it cannot hold unchanged (a `timestamp` beyond 64 bits, a float volume, a
    /// `null`), so consumers see what the adapter sent. Keys must differ from the ones the fields
    /// above are written as. `nil`, as every built-in broker leaves it, costs nothing.
    public var extraFields: [ExtraField]?

    public init(instrument: Instrument, mode: SubscriptionMode) {
        self.instrument = instrument
        self.mode = mode
    }

    /// ``change`` as sent: the feed's value, else `ltp - close` rounded to paise.
    public var effectiveChange: Double? {
        if let change { return change }
        guard let ltp, let close, close != 0 else { return nil }
        // `+ 0` turns a rounded -0.0 into 0.0, which is what a trader expects to read.
        return ((ltp - close) * 100).rounded() / 100 + 0
    }

    /// Whether the `data` object will carry a `timestamp`: set, or among ``extraFields``.
    public var hasTimestamp: Bool {
        if self.timestamp != nil { return true }
        guard let extraFields else { return false }
        return extraFields.contains { $0.key == "timestamp" }
    }

    /// ``changePercent`` as sent: the feed's value, else derived from the previous close, two decimals.
    public var effectiveChangePercent: Double? {
        if let changePercent { return changePercent }
        guard let ltp, let close, close != 0 else { return nil }
        return ((ltp - close) / close * 10_000).rounded() / 100 + 0
    }
}

extension Tick {
    /// One field of a feed's tick kept as the feed sent it; see ``Tick/extraFields``.
    public struct ExtraField: Sendable, Equatable {
        public var key: String
        public var value: JSONValue

        public init(key: String, value: JSONValue) {
            self.key = key
            self.value = value
        }
    }
}

/// An order book snapshot. Levels are best first; brokers send 5, 20, 30 or 50 of them.
public struct MarketDepth: Sendable, Equatable {
    public var buy: [DepthLevel]
    public var sell: [DepthLevel]

    public init(buy: [DepthLevel], sell: [DepthLevel]) {
        self.buy = buy
        self.sell = sell
    }
}

/// One price level of a book. `orders` is 0 where the broker does not report it.
public struct DepthLevel: Sendable, Equatable {
    public var price: Double
    public var quantity: Int64
    public var orders: Int64

    public init(price: Double, quantity: Int64, orders: Int64) {
        self.price = price
        self.quantity = quantity
        self.orders = orders
    }
}
