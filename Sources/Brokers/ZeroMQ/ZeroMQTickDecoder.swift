import MarketData
import NIOCore
import WireJSON

/// Turns the JSON body an OpenAlgo adapter published into a ``Tick`` that encodes back to the
/// fields the adapter sent.
///
/// Keys the agent models (`ltp`, `ltt`, `timestamp`, `open`, ..., `depth`) fill the tick's fields
/// when their value fits the field exactly; every other key, and a modelled key whose value does
/// not fit (a `timestamp` beyond 64 bits, a float `volume`, a `null`, a book with extra keys),
/// is kept unchanged in ``Tick/extraFields``. `symbol`, `exchange` and `mode` come from the topic,
/// as the reference's envelope takes them.
public enum ZeroMQTickDecoder {
    /// Why a body was not turned into a tick.
    public enum Failure: Error, Sendable, Equatable {
        case invalidJSON(JSONParseError)
        /// The body parsed, but is not a JSON object.
        case notAnObject
    }

    /// Integers from 2^53 on are not all doubles; a price beyond that stays as it was sent.
    private static let largestExactDouble = 1 << 53

    public static func tick(instrument: Instrument, mode: SubscriptionMode, body: ByteBuffer) throws(Failure) -> Tick {
        let value: JSONValue
        do {
            value = try JSONParser.parse(body)
        } catch {
            throw .invalidJSON(error)
        }
        guard case .object(let object) = value else { throw .notAnObject }
        return self.tick(instrument: instrument, mode: mode, fields: object)
    }

    /// The tick for an already parsed body.
    public static func tick(instrument: Instrument, mode: SubscriptionMode, fields object: JSONObject) -> Tick {
        var tick = Tick(instrument: instrument, mode: mode)
        var extra: [Tick.ExtraField] = []
        var changeFields: [Tick.ExtraField] = []
        for (key, value) in object.entries {
            switch key {
            case "symbol", "exchange", "mode":
                continue
            case "ltp":
                if let number = self.double(value) {
                    tick.ltp = number
                    continue
                }
            case "ltt":
                if let number = self.integer(value) {
                    tick.lastTradeTime = number
                    continue
                }
            case "timestamp":
                if let number = self.integer(value) {
                    tick.timestamp = number
                    continue
                }
            case "open":
                if let number = self.double(value) {
                    tick.open = number
                    continue
                }
            case "high":
                if let number = self.double(value) {
                    tick.high = number
                    continue
                }
            case "low":
                if let number = self.double(value) {
                    tick.low = number
                    continue
                }
            case "close":
                if let number = self.double(value) {
                    tick.close = number
                    continue
                }
            case "volume":
                if let number = self.integer(value) {
                    tick.volume = number
                    continue
                }
            case "last_quantity", "last_trade_quantity":
                if let number = self.integer(value) {
                    tick.lastQuantity = number
                    continue
                }
            case "average_price", "avg_trade_price":
                if let number = self.double(value) {
                    tick.averagePrice = number
                    continue
                }
            case "total_buy_quantity":
                if let number = self.integer(value) {
                    tick.totalBuyQuantity = number
                    continue
                }
            case "total_sell_quantity":
                if let number = self.integer(value) {
                    tick.totalSellQuantity = number
                    continue
                }
            case "bid":
                if let number = self.double(value) {
                    tick.bid = number
                    continue
                }
            case "ask":
                if let number = self.double(value) {
                    tick.ask = number
                    continue
                }
            case "bid_qty":
                if let number = self.integer(value) {
                    tick.bidQuantity = number
                    continue
                }
            case "ask_qty":
                if let number = self.integer(value) {
                    tick.askQuantity = number
                    continue
                }
            case "oi":
                if let number = self.integer(value) {
                    tick.openInterest = number
                    continue
                }
            case "prev_oi":
                if let number = self.integer(value) {
                    tick.previousOpenInterest = number
                    continue
                }
            case "upper_circuit":
                if let number = self.double(value) {
                    tick.upperCircuit = number
                    continue
                }
            case "lower_circuit":
                if let number = self.double(value) {
                    tick.lowerCircuit = number
                    continue
                }
            case "change", "change_percent":
                // Written (or derived) only for Quote and Depth ticks; decided once the prices are known.
                changeFields.append(Tick.ExtraField(key: key, value: value))
                continue
            case "depth":
                if let depth = self.depth(value) {
                    tick.depth = depth
                    continue
                }
            default: break
            }
            extra.append(Tick.ExtraField(key: key, value: value))
        }
        for field in changeFields {
            if mode >= .quote, let number = self.double(field.value) {
                if field.key == "change" { tick.change = number } else { tick.changePercent = number }
            } else if mode == .ltp || (field.key == "change" ? tick.effectiveChange : tick.effectiveChangePercent) == nil {
                extra.append(field)
            }
        }
        // Both spellings of these are written from one field; a spelling that did not fit must not repeat the key.
        if tick.lastQuantity != nil {
            extra.removeAll { $0.key == "last_quantity" || $0.key == "last_trade_quantity" }
        }
        if tick.averagePrice != nil {
            extra.removeAll { $0.key == "average_price" || $0.key == "avg_trade_price" }
        }
        if !extra.isEmpty { tick.extraFields = extra }
        return tick
    }

    private static func double(_ value: JSONValue) -> Double? {
        switch value {
        case .double(let number): return number
        case .integer(let integer):
            guard let number = integer.value, number.magnitude <= Self.largestExactDouble else { return nil }
            return Double(number)
        default: return nil
        }
    }

    private static func integer(_ value: JSONValue) -> Int64? {
        guard case .integer(let integer) = value, let number = integer.value else { return nil }
        return Int64(number)
    }

    /// `{"buy": [L...], "sell": [L...]}` with levels `{"price", "quantity", "orders"}`, and
    /// nothing else; any other shape is kept as sent.
    private static func depth(_ value: JSONValue) -> MarketDepth? {
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
