import MarketData
import WireJSON

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A key of an adapter's tick body that the agent models, so that the generic path (a parsed
/// ``JSONObject``) and ``AdapterTickBodyScanner`` (the body's bytes) recognise the same keys and
/// send them to the same ``Tick`` fields.
enum AdapterTickKey: UInt8 {
    case symbol, exchange, mode
    case ltp, ltt, timestamp, open, high, low, close, volume
    case lastQuantity, lastTradeQuantity, averagePrice, avgTradePrice, totalBuyQuantity, totalSellQuantity
    case bid, ask, bidQuantity, askQuantity, openInterest, previousOpenInterest, upperCircuit, lowerCircuit
    case change, changePercent, depth

    /// What a key's value becomes when it fits.
    enum Role {
        /// `symbol`, `exchange` and `mode` come from the topic, as the reference's envelope takes them.
        case fromTopic
        case price(PriceField)
        case count(CountField)
        /// `change` and `change_percent`: decided once the prices are known (``AdapterTickAssembly/finish()``).
        case change
        case depth
    }

    /// The key as the adapter writes it.
    var literal: StaticString {
        switch self {
        case .symbol: "symbol"
        case .exchange: "exchange"
        case .mode: "mode"
        case .ltp: "ltp"
        case .ltt: "ltt"
        case .timestamp: "timestamp"
        case .open: "open"
        case .high: "high"
        case .low: "low"
        case .close: "close"
        case .volume: "volume"
        case .lastQuantity: "last_quantity"
        case .lastTradeQuantity: "last_trade_quantity"
        case .averagePrice: "average_price"
        case .avgTradePrice: "avg_trade_price"
        case .totalBuyQuantity: "total_buy_quantity"
        case .totalSellQuantity: "total_sell_quantity"
        case .bid: "bid"
        case .ask: "ask"
        case .bidQuantity: "bid_qty"
        case .askQuantity: "ask_qty"
        case .openInterest: "oi"
        case .previousOpenInterest: "prev_oi"
        case .upperCircuit: "upper_circuit"
        case .lowerCircuit: "lower_circuit"
        case .change: "change"
        case .changePercent: "change_percent"
        case .depth: "depth"
        }
    }

    var role: Role {
        switch self {
        case .symbol, .exchange, .mode: .fromTopic
        case .ltp: .price(.ltp)
        case .open: .price(.open)
        case .high: .price(.high)
        case .low: .price(.low)
        case .close: .price(.close)
        case .averagePrice, .avgTradePrice: .price(.averagePrice)
        case .bid: .price(.bid)
        case .ask: .price(.ask)
        case .upperCircuit: .price(.upperCircuit)
        case .lowerCircuit: .price(.lowerCircuit)
        case .ltt: .count(.lastTradeTime)
        case .timestamp: .count(.timestamp)
        case .volume: .count(.volume)
        case .lastQuantity, .lastTradeQuantity: .count(.lastQuantity)
        case .totalBuyQuantity: .count(.totalBuyQuantity)
        case .totalSellQuantity: .count(.totalSellQuantity)
        case .bidQuantity: .count(.bidQuantity)
        case .askQuantity: .count(.askQuantity)
        case .openInterest: .count(.openInterest)
        case .previousOpenInterest: .count(.previousOpenInterest)
        case .change, .changePercent: .change
        case .depth: .depth
        }
    }

    /// The key as a string, for a value kept in ``Tick/extraFields``.
    var name: String {
        let literal = self.literal
        return String(decoding: UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount), as: UTF8.self)
    }

    /// The modelled key a parsed key names. Every modelled key is ASCII letters and `_`, which no
    /// other Unicode text equals, so comparing bytes agrees with `String`'s `==`.
    init?(_ name: String) {
        var name = name
        guard let key = name.withUTF8({ Self(utf8: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = key
    }

    /// The modelled key whose UTF-8 bytes these are: the length and a byte or two pick the only
    /// candidate, which is then compared whole.
    init?(utf8 name: UnsafeRawBufferPointer) {
        guard name.count >= 2 else { return nil }
        let candidate: Self
        switch (name.count, name[0]) {
        case (2, UInt8(ascii: "o")): candidate = .openInterest
        case (3, UInt8(ascii: "l")):
            switch name[2] {
            case UInt8(ascii: "p"): candidate = .ltp
            case UInt8(ascii: "t"): candidate = .ltt
            default: candidate = .low
            }
        case (3, UInt8(ascii: "b")): candidate = .bid
        case (3, UInt8(ascii: "a")): candidate = .ask
        case (4, UInt8(ascii: "m")): candidate = .mode
        case (4, UInt8(ascii: "o")): candidate = .open
        case (4, UInt8(ascii: "h")): candidate = .high
        case (5, UInt8(ascii: "c")): candidate = .close
        case (5, UInt8(ascii: "d")): candidate = .depth
        case (6, UInt8(ascii: "s")): candidate = .symbol
        case (6, UInt8(ascii: "v")): candidate = .volume
        case (6, UInt8(ascii: "c")): candidate = .change
        case (7, UInt8(ascii: "p")): candidate = .previousOpenInterest
        case (7, UInt8(ascii: "b")): candidate = .bidQuantity
        case (7, UInt8(ascii: "a")): candidate = .askQuantity
        case (8, UInt8(ascii: "e")): candidate = .exchange
        case (9, UInt8(ascii: "t")): candidate = .timestamp
        case (13, UInt8(ascii: "l")): candidate = name[1] == UInt8(ascii: "a") ? .lastQuantity : .lowerCircuit
        case (13, UInt8(ascii: "u")): candidate = .upperCircuit
        case (13, UInt8(ascii: "a")): candidate = .averagePrice
        case (14, UInt8(ascii: "c")): candidate = .changePercent
        case (15, UInt8(ascii: "a")): candidate = .avgTradePrice
        case (18, UInt8(ascii: "t")): candidate = .totalBuyQuantity
        case (19, UInt8(ascii: "l")): candidate = .lastTradeQuantity
        case (19, UInt8(ascii: "t")): candidate = .totalSellQuantity
        default: return nil
        }
        guard memcmp(candidate.literal.utf8Start, name.baseAddress!, name.count) == 0 else { return nil }
        self = candidate
    }
}

/// A ``Tick`` field that holds a price.
enum PriceField {
    case ltp, open, high, low, close, averagePrice, bid, ask, upperCircuit, lowerCircuit

    func set(_ value: Double, in tick: inout Tick) {
        switch self {
        case .ltp: tick.ltp = value
        case .open: tick.open = value
        case .high: tick.high = value
        case .low: tick.low = value
        case .close: tick.close = value
        case .averagePrice: tick.averagePrice = value
        case .bid: tick.bid = value
        case .ask: tick.ask = value
        case .upperCircuit: tick.upperCircuit = value
        case .lowerCircuit: tick.lowerCircuit = value
        }
    }
}

/// A ``Tick`` field that holds an integer (a quantity, a count, a time).
enum CountField {
    case lastTradeTime, timestamp, volume, lastQuantity, totalBuyQuantity, totalSellQuantity, bidQuantity, askQuantity
    case openInterest, previousOpenInterest

    func set(_ value: Int64, in tick: inout Tick) {
        switch self {
        case .lastTradeTime: tick.lastTradeTime = value
        case .timestamp: tick.timestamp = value
        case .volume: tick.volume = value
        case .lastQuantity: tick.lastQuantity = value
        case .totalBuyQuantity: tick.totalBuyQuantity = value
        case .totalSellQuantity: tick.totalSellQuantity = value
        case .bidQuantity: tick.bidQuantity = value
        case .askQuantity: tick.askQuantity = value
        case .openInterest: tick.openInterest = value
        case .previousOpenInterest: tick.previousOpenInterest = value
        }
    }
}

/// A ``Tick`` filled from a body's keys in the body's order: modelled keys whose value fits go to
/// their field, everything else is kept as sent in ``Tick/extraFields``. Both decoding paths fill
/// one, so they make the same tick of the same body.
struct AdapterTickAssembly {
    /// Integers from 2^53 on are not all doubles; a price beyond that stays as it was sent.
    static let largestExactDouble = 1 << 53

    private var tick: Tick
    private var extra: [Tick.ExtraField] = []
    /// `change` and `change_percent` in body order (each key appears once in a parsed object).
    private var changes: (Tick.ExtraField?, Tick.ExtraField?) = (nil, nil)

    init(instrument: Instrument, mode: SubscriptionMode) {
        self.tick = Tick(instrument: instrument, mode: mode)
    }

    mutating func setPrice(_ field: PriceField, _ value: Double) {
        field.set(value, in: &self.tick)
    }

    mutating func setCount(_ field: CountField, _ value: Int64) {
        field.set(value, in: &self.tick)
    }

    mutating func setDepth(_ depth: MarketDepth) {
        self.tick.depth = depth
    }

    /// A key the agent does not model, kept as sent.
    mutating func keep(_ key: String, _ value: JSONValue) {
        self.extra.append(Tick.ExtraField(key: key, value: value))
    }

    /// Whether `key` was already kept: a repeated key, which a parsed object would have merged.
    func hasKept(_ key: String) -> Bool {
        self.extra.contains { $0.key == key }
    }

    /// A modelled key with its value as the generic parser reads it: into its field when the value
    /// fits the field exactly, else kept as sent.
    mutating func take(_ key: AdapterTickKey, _ value: JSONValue) {
        switch key.role {
        case .fromTopic:
            return
        case .price(let field):
            if let number = Self.double(value) {
                field.set(number, in: &self.tick)
                return
            }
        case .count(let field):
            if let number = Self.integer(value) {
                field.set(number, in: &self.tick)
                return
            }
        case .change:
            let field = Tick.ExtraField(key: key.name, value: value)
            if self.changes.0 == nil { self.changes.0 = field } else { self.changes.1 = field }
            return
        case .depth:
            if let depth = Self.depth(value) {
                self.tick.depth = depth
                return
            }
        }
        self.keep(key.name, value)
    }

    /// The tick, once every key was taken: change fields are written (or derived) only for Quote and
    /// Depth ticks, and a field written under two spellings must not repeat a spelling that did not fit.
    mutating func finish() -> Tick {
        if let field = self.changes.0 { self.finishChange(field) }
        if let field = self.changes.1 { self.finishChange(field) }
        if self.tick.lastQuantity != nil {
            self.extra.removeAll { $0.key == "last_quantity" || $0.key == "last_trade_quantity" }
        }
        if self.tick.averagePrice != nil {
            self.extra.removeAll { $0.key == "average_price" || $0.key == "avg_trade_price" }
        }
        if !self.extra.isEmpty { self.tick.extraFields = self.extra }
        return self.tick
    }

    private mutating func finishChange(_ field: Tick.ExtraField) {
        if self.tick.mode >= .quote, let number = Self.double(field.value) {
            if field.key == "change" { self.tick.change = number } else { self.tick.changePercent = number }
        } else if self.tick.mode == .ltp || (field.key == "change" ? self.tick.effectiveChange : self.tick.effectiveChangePercent) == nil {
            self.extra.append(field)
        }
    }

    static func double(_ value: JSONValue) -> Double? {
        switch value {
        case .double(let number): return number
        case .integer(let integer):
            guard let number = integer.value, number.magnitude <= Self.largestExactDouble else { return nil }
            return Double(number)
        default: return nil
        }
    }

    static func integer(_ value: JSONValue) -> Int64? {
        guard case .integer(let integer) = value, let number = integer.value else { return nil }
        return Int64(number)
    }

    /// `{"buy": [L...], "sell": [L...]}` with levels `{"price", "quantity", "orders"}`, and
    /// nothing else; any other shape is kept as sent.
    static func depth(_ value: JSONValue) -> MarketDepth? {
        guard case .object(let book) = value, book.count == 2, let buy = book["buy"], let sell = book["sell"],
            let buyLevels = self.levels(buy), let sellLevels = self.levels(sell)
        else { return nil }
        return MarketDepth(buy: buyLevels, sell: sellLevels)
    }

    private static func levels(_ value: JSONValue) -> [DepthLevel]? {
        guard case .array(let entries) = value else { return nil }
        var levels: [DepthLevel] = []
        levels.reserveCapacity(entries.count)
        for entry in entries {
            guard case .object(let level) = entry, level.count == 3,
                let price = level["price"].flatMap(self.double),
                let quantity = level["quantity"].flatMap(self.integer),
                let orders = level["orders"].flatMap(self.integer)
            else { return nil }
            levels.append(DepthLevel(price: price, quantity: quantity, orders: orders))
        }
        return levels
    }
}
