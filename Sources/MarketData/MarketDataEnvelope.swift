import NIOCore
import WireJSON

/// Encodes ticks as the reference's `market_data` frames, straight into `ByteBuffer`s.
///
/// A tick's `data` object is the same for every receiver; only the outer `mode` (the receiver's
/// subscribed mode) and `broker` differ. So the data is encoded once per tick and each outgoing
/// variant is assembled around it with a copy of those bytes: no per-client encoding.
///
/// The shape, key order and formatting follow the Python server exactly
/// (`{"type": "market_data", "symbol": ..., "exchange": ..., "mode": 1, "data": {...}, "broker": ...}`).
public enum MarketDataEnvelope {
    /// Writes the tick's `data` object.
    ///
    /// Quote fields carry both spellings the ecosystem uses (`last_quantity`/`last_trade_quantity`,
    /// `average_price`/`avg_trade_price`) and `change`/`change_percent` derived from the previous
    /// close, so the official SDK, which reads the second spellings, stops showing zeros.
    /// A tick's ``Tick/extraFields`` come last, in their order, with their values as the feed
    /// gave them.
    public static func writeData(of tick: Tick, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"symbol\": ")
        buffer.writeJSONString(tick.instrument.symbol)
        buffer.writeStaticString(", \"exchange\": ")
        buffer.writeJSONString(tick.instrument.exchange)
        buffer.writeStaticString(", \"mode\": ")
        buffer.writeJSONInteger(tick.mode.rawValue)
        writeField(", \"ltp\": ", tick.ltp, &buffer)
        writeField(", \"ltt\": ", tick.lastTradeTime, &buffer)
        writeField(", \"timestamp\": ", tick.timestamp, &buffer)
        writeField(", \"open\": ", tick.open, &buffer)
        writeField(", \"high\": ", tick.high, &buffer)
        writeField(", \"low\": ", tick.low, &buffer)
        writeField(", \"close\": ", tick.close, &buffer)
        writeField(", \"volume\": ", tick.volume, &buffer)
        writeField(", \"last_quantity\": ", tick.lastQuantity, &buffer)
        writeField(", \"last_trade_quantity\": ", tick.lastQuantity, &buffer)
        writeField(", \"average_price\": ", tick.averagePrice, &buffer)
        writeField(", \"avg_trade_price\": ", tick.averagePrice, &buffer)
        writeField(", \"total_buy_quantity\": ", tick.totalBuyQuantity, &buffer)
        writeField(", \"total_sell_quantity\": ", tick.totalSellQuantity, &buffer)
        writeField(", \"bid\": ", tick.bid, &buffer)
        writeField(", \"ask\": ", tick.ask, &buffer)
        writeField(", \"bid_qty\": ", tick.bidQuantity, &buffer)
        writeField(", \"ask_qty\": ", tick.askQuantity, &buffer)
        writeField(", \"oi\": ", tick.openInterest, &buffer)
        writeField(", \"prev_oi\": ", tick.previousOpenInterest, &buffer)
        writeField(", \"upper_circuit\": ", tick.upperCircuit, &buffer)
        writeField(", \"lower_circuit\": ", tick.lowerCircuit, &buffer)
        if tick.mode >= .quote {
            writeField(", \"change\": ", tick.effectiveChange, &buffer)
            writeField(", \"change_percent\": ", tick.effectiveChangePercent, &buffer)
        }
        if let depth = tick.depth {
            buffer.writeStaticString(", \"depth\": {\"buy\": ")
            writeLevels(depth.buy, &buffer)
            buffer.writeStaticString(", \"sell\": ")
            writeLevels(depth.sell, &buffer)
            buffer.writeInteger(UInt8(ascii: "}"))
        }
        if let extraFields = tick.extraFields {
            for field in extraFields {
                buffer.writeStaticString(", ")
                buffer.writeJSONString(field.key)
                buffer.writeStaticString(": ")
                buffer.writeJSONValue(field.value)
            }
        }
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    /// Assembles one frame: the envelope for a receiver subscribed at `outerMode`, around `data`
    /// that ``writeData(of:into:)`` produced.
    public static func frame(
        instrument: Instrument,
        outerMode: SubscriptionMode,
        data: ByteBuffer,
        broker: String,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: data.readableBytes + instrument.symbol.utf8.count * 2 + 96)
        buffer.writeStaticString("{\"type\": \"market_data\", \"symbol\": ")
        buffer.writeJSONString(instrument.symbol)
        buffer.writeStaticString(", \"exchange\": ")
        buffer.writeJSONString(instrument.exchange)
        buffer.writeStaticString(", \"mode\": ")
        buffer.writeJSONInteger(outerMode.rawValue)
        buffer.writeStaticString(", \"data\": ")
        buffer.writeImmutableBuffer(data)
        buffer.writeStaticString(", \"broker\": ")
        buffer.writeJSONString(broker)
        buffer.writeInteger(UInt8(ascii: "}"))
        return buffer
    }

    /// Encodes a whole frame for one receiver mode; convenient where only one variant is needed.
    public static func frame(for tick: Tick, outerMode: SubscriptionMode, broker: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        var data = allocator.buffer(capacity: 512)
        self.writeData(of: tick, into: &data)
        return self.frame(instrument: tick.instrument, outerMode: outerMode, data: data, broker: broker, allocator: allocator)
    }

    @inline(__always)
    private static func writeField(_ key: StaticString, _ value: Double?, _ buffer: inout ByteBuffer) {
        guard let value else { return }
        buffer.writeStaticString(key)
        buffer.writeJSONDouble(value)
    }

    @inline(__always)
    private static func writeField(_ key: StaticString, _ value: Int64?, _ buffer: inout ByteBuffer) {
        guard let value else { return }
        buffer.writeStaticString(key)
        buffer.writeJSONInteger(value)
    }

    private static func writeLevels(_ levels: [DepthLevel], _ buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "["))
        for (index, level) in levels.enumerated() {
            buffer.writeStaticString(index == 0 ? "{\"price\": " : ", {\"price\": ")
            buffer.writeJSONDouble(level.price)
            buffer.writeStaticString(", \"quantity\": ")
            buffer.writeJSONInteger(level.quantity)
            buffer.writeStaticString(", \"orders\": ")
            buffer.writeJSONInteger(level.orders)
            buffer.writeInteger(UInt8(ascii: "}"))
        }
        buffer.writeInteger(UInt8(ascii: "]"))
    }
}
