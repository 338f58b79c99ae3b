import MarketData
import NIOCore
import WireJSON

/// The line format of recordings (`docs/recording-format.md`): one compact JSON object per tick,
/// newline-terminated, with the receive time, the instrument, the tick's mode and every field the
/// tick has, under the keys of the OpenAlgo `market_data` frame.
///
/// Only what the tick holds is written: no second spellings and no derived `change`, so a line read
/// back is the same ``Tick`` that was recorded, and replay sends clients the very frames they saw live.
/// Book levels are `[price, quantity, orders]` triples, which keeps Depth lines about half as long.
/// Fields a feed passed through unmodelled (``Tick/extraFields``, e.g. the ZeroMQ bus's nanosecond
/// `timestamp`) go, in order and unchanged, into an `extra` object, so they cannot clash with the
/// modelled keys.
public enum TickRecordFormat {
    /// Appends `record` as one line, newline included.
    public static func write(_ record: TickRecord, into buffer: inout ByteBuffer) {
        let tick = record.tick
        buffer.writeStaticString("{\"recv_ns\":")
        buffer.writeJSONInteger(record.receivedAt)
        buffer.writeStaticString(",\"exchange\":")
        buffer.writeJSONString(tick.instrument.exchange)
        buffer.writeStaticString(",\"symbol\":")
        buffer.writeJSONString(tick.instrument.symbol)
        buffer.writeStaticString(",\"mode\":")
        buffer.writeJSONInteger(tick.mode.rawValue)
        buffer.writeJSONMember(",\"ltp\":", tick.ltp)
        buffer.writeJSONMember(",\"ltt\":", tick.lastTradeTime)
        buffer.writeJSONMember(",\"timestamp\":", tick.timestamp)
        buffer.writeJSONMember(",\"open\":", tick.open)
        buffer.writeJSONMember(",\"high\":", tick.high)
        buffer.writeJSONMember(",\"low\":", tick.low)
        buffer.writeJSONMember(",\"close\":", tick.close)
        buffer.writeJSONMember(",\"volume\":", tick.volume)
        buffer.writeJSONMember(",\"last_quantity\":", tick.lastQuantity)
        buffer.writeJSONMember(",\"average_price\":", tick.averagePrice)
        buffer.writeJSONMember(",\"total_buy_quantity\":", tick.totalBuyQuantity)
        buffer.writeJSONMember(",\"total_sell_quantity\":", tick.totalSellQuantity)
        buffer.writeJSONMember(",\"bid\":", tick.bid)
        buffer.writeJSONMember(",\"ask\":", tick.ask)
        buffer.writeJSONMember(",\"bid_qty\":", tick.bidQuantity)
        buffer.writeJSONMember(",\"ask_qty\":", tick.askQuantity)
        buffer.writeJSONMember(",\"oi\":", tick.openInterest)
        buffer.writeJSONMember(",\"prev_oi\":", tick.previousOpenInterest)
        buffer.writeJSONMember(",\"upper_circuit\":", tick.upperCircuit)
        buffer.writeJSONMember(",\"lower_circuit\":", tick.lowerCircuit)
        buffer.writeJSONMember(",\"change\":", tick.change)
        buffer.writeJSONMember(",\"change_percent\":", tick.changePercent)
        if let depth = tick.depth {
            buffer.writeStaticString(",\"depth\":{\"buy\":")
            Self.writeLevels(depth.buy, &buffer)
            buffer.writeStaticString(",\"sell\":")
            Self.writeLevels(depth.sell, &buffer)
            buffer.writeInteger(UInt8(ascii: "}"))
        }
        if let extraFields = tick.extraFields {
            buffer.writeStaticString(",\"extra\":{")
            for (index, field) in extraFields.enumerated() {
                if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                buffer.writeJSONString(field.key)
                buffer.writeInteger(UInt8(ascii: ":"))
                buffer.writeJSONValue(field.value, compact: true)
            }
            buffer.writeInteger(UInt8(ascii: "}"))
        }
        buffer.writeStaticString("}\n")
    }

    /// Reads one line (without its newline). Keys it does not know are skipped, so files written by
    /// later versions with more fields still replay.
    public static func read(_ line: ByteBuffer) throws(TickRecordingError) -> TickRecord {
        let value: JSONValue
        do {
            value = try JSONParser.parse(line)
        } catch {
            throw .badRecord(error.description)
        }
        guard let object = value.objectValue else { throw .badRecord("the line is not a JSON object") }
        guard case .integer(let rawTime)? = object["recv_ns"], let receivedAt = Int64(rawTime.text) else {
            throw .badRecord("\"recv_ns\" must be an integer")
        }
        guard let exchange = object["exchange"]?.stringValue, let symbol = object["symbol"]?.stringValue else {
            throw .badRecord("\"exchange\" and \"symbol\" must be strings")
        }
        guard let rawMode = object["mode"]?.intValue, let mode = SubscriptionMode(rawValue: UInt8(clamping: max(0, rawMode))) else {
            throw .badRecord("\"mode\" must be 1, 2 or 3")
        }
        var tick = Tick(instrument: Instrument(exchange: exchange, symbol: symbol), mode: mode)
        for entry in object.entries {
            if let field = Field(rawValue: entry.key) {
                try field.store(entry.value, into: &tick)
            } else if entry.key == "depth" {
                tick.depth = try Self.readDepth(entry.value)
            } else if entry.key == "extra" {
                guard let extra = entry.value.objectValue else { throw .badRecord("\"extra\" must be an object") }
                tick.extraFields = extra.entries.map { Tick.ExtraField(key: $0.key, value: $0.value) }
            }
        }
        return TickRecord(receivedAt: receivedAt, tick: tick)
    }

    private static func writeLevels(_ levels: [DepthLevel], _ buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "["))
        for (index, level) in levels.enumerated() {
            buffer.writeStaticString(index == 0 ? "[" : ",[")
            buffer.writeJSONDouble(level.price)
            buffer.writeInteger(UInt8(ascii: ","))
            buffer.writeJSONInteger(level.quantity)
            buffer.writeInteger(UInt8(ascii: ","))
            buffer.writeJSONInteger(level.orders)
            buffer.writeInteger(UInt8(ascii: "]"))
        }
        buffer.writeInteger(UInt8(ascii: "]"))
    }

    private static func readDepth(_ value: JSONValue) throws(TickRecordingError) -> MarketDepth {
        guard let object = value.objectValue else { throw .badRecord("\"depth\" must be an object") }
        return MarketDepth(buy: try Self.readLevels(object["buy"], side: "buy"), sell: try Self.readLevels(object["sell"], side: "sell"))
    }

    private static func readLevels(_ value: JSONValue?, side: String) throws(TickRecordingError) -> [DepthLevel] {
        guard let entries = value?.arrayValue else { throw .badRecord("\"depth.\(side)\" must be a list") }
        var levels: [DepthLevel] = []
        levels.reserveCapacity(entries.count)
        for entry in entries {
            guard let triple = entry.arrayValue, triple.count == 3, let price = triple[0].numberValue,
                let quantity = Self.integer(triple[1]), let orders = Self.integer(triple[2])
            else {
                throw .badRecord("\"depth.\(side)\" levels must be [price, quantity, orders]")
            }
            levels.append(DepthLevel(price: price, quantity: quantity, orders: orders))
        }
        return levels
    }

    fileprivate static func integer(_ value: JSONValue) -> Int64? {
        guard case .integer(let integer) = value else { return nil }
        return Int64(integer.text)
    }

    /// The scalar fields of ``Tick``, named as in `market_data` and in the order they are written.
    fileprivate enum Field: String {
        case ltp
        case ltt
        case timestamp
        case open
        case high
        case low
        case close
        case volume
        case lastQuantity = "last_quantity"
        case averagePrice = "average_price"
        case totalBuyQuantity = "total_buy_quantity"
        case totalSellQuantity = "total_sell_quantity"
        case bid
        case ask
        case bidQuantity = "bid_qty"
        case askQuantity = "ask_qty"
        case openInterest = "oi"
        case previousOpenInterest = "prev_oi"
        case upperCircuit = "upper_circuit"
        case lowerCircuit = "lower_circuit"
        case change
        case changePercent = "change_percent"

        func store(_ value: JSONValue, into tick: inout Tick) throws(TickRecordingError) {
            if value == .null { return }
            switch self {
            case .ltp: tick.ltp = try self.number(value)
            case .ltt: tick.lastTradeTime = try self.integer(value)
            case .timestamp: tick.timestamp = try self.integer(value)
            case .open: tick.open = try self.number(value)
            case .high: tick.high = try self.number(value)
            case .low: tick.low = try self.number(value)
            case .close: tick.close = try self.number(value)
            case .volume: tick.volume = try self.integer(value)
            case .lastQuantity: tick.lastQuantity = try self.integer(value)
            case .averagePrice: tick.averagePrice = try self.number(value)
            case .totalBuyQuantity: tick.totalBuyQuantity = try self.integer(value)
            case .totalSellQuantity: tick.totalSellQuantity = try self.integer(value)
            case .bid: tick.bid = try self.number(value)
            case .ask: tick.ask = try self.number(value)
            case .bidQuantity: tick.bidQuantity = try self.integer(value)
            case .askQuantity: tick.askQuantity = try self.integer(value)
            case .openInterest: tick.openInterest = try self.integer(value)
            case .previousOpenInterest: tick.previousOpenInterest = try self.integer(value)
            case .upperCircuit: tick.upperCircuit = try self.number(value)
            case .lowerCircuit: tick.lowerCircuit = try self.number(value)
            case .change: tick.change = try self.number(value)
            case .changePercent: tick.changePercent = try self.number(value)
            }
        }

        private func integer(_ value: JSONValue) throws(TickRecordingError) -> Int64 {
            guard let integer = TickRecordFormat.integer(value) else { throw .badRecord("\"\(self.rawValue)\" must be an integer") }
            return integer
        }

        private func number(_ value: JSONValue) throws(TickRecordingError) -> Double {
            guard let number = value.numberValue else { throw .badRecord("\"\(self.rawValue)\" must be a number") }
            return number
        }
    }
}
