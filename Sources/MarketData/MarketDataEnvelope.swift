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
        buffer.writeJSONMember(", \"ltp\": ", tick.ltp)
        buffer.writeJSONMember(", \"ltt\": ", tick.lastTradeTime)
        buffer.writeJSONMember(", \"timestamp\": ", tick.timestamp)
        buffer.writeJSONMember(", \"open\": ", tick.open)
        buffer.writeJSONMember(", \"high\": ", tick.high)
        buffer.writeJSONMember(", \"low\": ", tick.low)
        buffer.writeJSONMember(", \"close\": ", tick.close)
        buffer.writeJSONMember(", \"volume\": ", tick.volume)
        buffer.writeJSONMember(", \"last_quantity\": ", tick.lastQuantity)
        buffer.writeJSONMember(", \"last_trade_quantity\": ", tick.lastQuantity)
        buffer.writeJSONMember(", \"average_price\": ", tick.averagePrice)
        buffer.writeJSONMember(", \"avg_trade_price\": ", tick.averagePrice)
        buffer.writeJSONMember(", \"total_buy_quantity\": ", tick.totalBuyQuantity)
        buffer.writeJSONMember(", \"total_sell_quantity\": ", tick.totalSellQuantity)
        buffer.writeJSONMember(", \"bid\": ", tick.bid)
        buffer.writeJSONMember(", \"ask\": ", tick.ask)
        buffer.writeJSONMember(", \"bid_qty\": ", tick.bidQuantity)
        buffer.writeJSONMember(", \"ask_qty\": ", tick.askQuantity)
        buffer.writeJSONMember(", \"oi\": ", tick.openInterest)
        buffer.writeJSONMember(", \"prev_oi\": ", tick.previousOpenInterest)
        buffer.writeJSONMember(", \"upper_circuit\": ", tick.upperCircuit)
        buffer.writeJSONMember(", \"lower_circuit\": ", tick.lowerCircuit)
        if tick.mode >= .quote {
            buffer.writeJSONMember(", \"change\": ", tick.effectiveChange)
            buffer.writeJSONMember(", \"change_percent\": ", tick.effectiveChangePercent)
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
        self.writeFrame(instrument: instrument, outerMode: outerMode, data: data, broker: broker, into: &buffer)
        return buffer
    }

    /// Appends the frame ``frame(instrument:outerMode:data:broker:allocator:)`` returns to
    /// `buffer`, for callers that put something in front of it.
    public static func writeFrame(
        instrument: Instrument,
        outerMode: SubscriptionMode,
        data: ByteBuffer,
        broker: String,
        into buffer: inout ByteBuffer
    ) {
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
    }

    /// Encodes a whole frame for one receiver mode; convenient where only one variant is needed.
    public static func frame(for tick: Tick, outerMode: SubscriptionMode, broker: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        var data = allocator.buffer(capacity: 512)
        self.writeData(of: tick, into: &data)
        return self.frame(instrument: tick.instrument, outerMode: outerMode, data: data, broker: broker, allocator: allocator)
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
