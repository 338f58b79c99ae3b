import BrokerKit
import NIOCore

/// Kite's exchange segment, the low byte of every instrument token. It decides the price divisor.
package enum ZerodhaSegment: UInt8, Sendable, Hashable {
    case nse = 1
    case nfo = 2
    case cds = 3
    case bse = 4
    case bfo = 5
    case bcd = 6
    case mcx = 7
    case mcxsx = 8
    case indices = 9

    /// The segment of `token`, or `nil` for a low byte Kite does not document.
    package init?(token: UInt32) {
        self.init(rawValue: UInt8(truncatingIfNeeded: token))
    }

    /// Prices arrive as integers: paise everywhere except NSE currency (1e-7 rupee) and BSE currency
    /// (1e-4 rupee), per Kite's documentation and its official client.
    package var priceDivisor: Double {
        switch self {
        case .cds: return 10_000_000
        case .bcd: return 10_000
        default: return 100
        }
    }
}

/// A packet of the `ltp` mode: token and last price only.
package struct ZerodhaLTPPacket: Sendable, Hashable {
    package var instrumentToken: UInt32
    /// In the segment's price unit (paise for most); see ``ZerodhaSegment/priceDivisor``.
    package var lastPrice: UInt32

    package init(instrumentToken: UInt32, lastPrice: UInt32) {
        self.instrumentToken = instrumentToken
        self.lastPrice = lastPrice
    }
}

/// An index packet (28 bytes in quote mode, 32 in full mode): indices have prices but no
/// quantities, no book and no open interest.
package struct ZerodhaIndexPacket: Sendable, Hashable {
    package var instrumentToken: UInt32
    package var lastPrice: UInt32
    package var high: UInt32
    package var low: UInt32
    package var open: UInt32
    package var close: UInt32
    /// The change from `close`, in price units, signed.
    package var change: Int32
    /// Epoch seconds; only full-mode index packets carry it.
    package var exchangeTimestamp: UInt32?

    package init(
        instrumentToken: UInt32,
        lastPrice: UInt32,
        high: UInt32,
        low: UInt32,
        open: UInt32,
        close: UInt32,
        change: Int32,
        exchangeTimestamp: UInt32?
    ) {
        self.instrumentToken = instrumentToken
        self.lastPrice = lastPrice
        self.high = high
        self.low = low
        self.open = open
        self.close = close
        self.change = change
        self.exchangeTimestamp = exchangeTimestamp
    }
}

/// The 44 bytes every tradable instrument's quote and full packets share.
package struct ZerodhaQuotePacket: Sendable, Hashable {
    package var instrumentToken: UInt32
    package var lastPrice: UInt32
    package var lastQuantity: UInt32
    package var averagePrice: UInt32
    package var volume: UInt32
    package var totalBuyQuantity: UInt32
    package var totalSellQuantity: UInt32
    package var open: UInt32
    package var high: UInt32
    package var low: UInt32
    /// The previous session's close.
    package var close: UInt32

    package init(
        instrumentToken: UInt32,
        lastPrice: UInt32,
        lastQuantity: UInt32,
        averagePrice: UInt32,
        volume: UInt32,
        totalBuyQuantity: UInt32,
        totalSellQuantity: UInt32,
        open: UInt32,
        high: UInt32,
        low: UInt32,
        close: UInt32
    ) {
        self.instrumentToken = instrumentToken
        self.lastPrice = lastPrice
        self.lastQuantity = lastQuantity
        self.averagePrice = averagePrice
        self.volume = volume
        self.totalBuyQuantity = totalBuyQuantity
        self.totalSellQuantity = totalSellQuantity
        self.open = open
        self.high = high
        self.low = low
        self.close = close
    }
}

/// A 184-byte `full` packet: the quote, trade time, open interest and five levels a side.
package struct ZerodhaFullPacket: Sendable, Hashable {
    package var quote: ZerodhaQuotePacket
    /// Epoch seconds of the last trade.
    package var lastTradeTime: UInt32
    package var openInterest: UInt32
    package var openInterestDayHigh: UInt32
    package var openInterestDayLow: UInt32
    /// Epoch seconds of the exchange's update.
    package var exchangeTimestamp: UInt32
    package var depth: ZerodhaDepth
}

/// One level of Kite's book as sent: quantity, price in segment units, order count.
package struct ZerodhaDepthLevel: Sendable, Hashable {
    package var quantity: UInt32
    package var price: UInt32
    package var orders: UInt16

    package init(quantity: UInt32, price: UInt32, orders: UInt16) {
        self.quantity = quantity
        self.price = price
        self.orders = orders
    }
}

/// The 120 depth bytes of a full packet, read on demand so decoding a packet copies nothing.
package struct ZerodhaDepth: Sendable, Hashable {
    /// Levels per side.
    package static let levelCount = 5
    static let byteCount = 120
    private static let levelSize = 12

    private let bytes: ByteBuffer

    init(bytes: ByteBuffer) {
        self.bytes = bytes
    }

    /// Bid level `index` (0 is best), `nil` outside `0..<5`.
    package func bid(_ index: Int) -> ZerodhaDepthLevel? {
        guard (0..<Self.levelCount).contains(index) else { return nil }
        return self.level(at: index * Self.levelSize)
    }

    /// Ask level `index` (0 is best), `nil` outside `0..<5`.
    package func ask(_ index: Int) -> ZerodhaDepthLevel? {
        guard (0..<Self.levelCount).contains(index) else { return nil }
        return self.level(at: (Self.levelCount + index) * Self.levelSize)
    }

    private func level(at offset: Int) -> ZerodhaDepthLevel {
        let fields = PacketFields(self.bytes, start: self.bytes.readerIndex, endianness: .big)
        return ZerodhaDepthLevel(quantity: fields.u32(offset), price: fields.u32(offset + 4), orders: fields.u16(offset + 8))
    }
}

/// One packet of a Kite binary frame.
package enum ZerodhaPacket: Sendable, Hashable {
    case ltp(ZerodhaLTPPacket)
    case index(ZerodhaIndexPacket)
    case quote(ZerodhaQuotePacket)
    case full(ZerodhaFullPacket)

    package var instrumentToken: UInt32 {
        switch self {
        case .ltp(let packet): return packet.instrumentToken
        case .index(let packet): return packet.instrumentToken
        case .quote(let packet): return packet.instrumentToken
        case .full(let packet): return packet.quote.instrumentToken
        }
    }
}

/// One binary WebSocket frame from Kite Ticker, validated, whose packets are decoded as they are
/// iterated (no array is built).
///
/// Packets of a length Kite has not documented are skipped and counted in ``skippedPacketCount``
/// rather than failing the frame: new packet kinds should not take the feed down.
package struct ZerodhaFrame: Sendable, Sequence {
    /// A 1-byte frame: Kite's keep-alive, which carries no packets.
    package let isHeartbeat: Bool
    /// Packets the header announced, including skipped ones.
    package let packetCount: Int
    package let skippedPacketCount: Int
    private let buffer: ByteBuffer

    init(buffer: ByteBuffer, isHeartbeat: Bool, packetCount: Int, skippedPacketCount: Int) {
        self.buffer = buffer
        self.isHeartbeat = isHeartbeat
        self.packetCount = packetCount
        self.skippedPacketCount = skippedPacketCount
    }

    package func makeIterator() -> Iterator {
        Iterator(buffer: self.buffer, remaining: self.isHeartbeat ? 0 : self.packetCount)
    }

    package struct Iterator: IteratorProtocol {
        private let buffer: ByteBuffer
        private var offset: Int
        private var remaining: Int

        init(buffer: ByteBuffer, remaining: Int) {
            self.buffer = buffer
            self.offset = buffer.readerIndex + 2
            self.remaining = remaining
        }

        package mutating func next() -> ZerodhaPacket? {
            while self.remaining > 0 {
                self.remaining -= 1
                let length = Int(self.buffer.getInteger(at: self.offset, endianness: .big, as: UInt16.self) ?? 0)
                let start = self.offset + 2
                self.offset = start + length
                if let packet = ZerodhaTickDecoder.packet(in: self.buffer, start: start, length: length) {
                    return packet
                }
            }
            return nil
        }
    }
}

/// Decodes Kite Ticker's binary frames (big-endian): `int16 N`, then N × (`int16 L`, L bytes).
package enum ZerodhaTickDecoder {
    /// Packet sizes Kite documents; any other size is skipped.
    package static let ltpPacketSize = 8
    package static let indexQuotePacketSize = 28
    package static let indexFullPacketSize = 32
    package static let quotePacketSize = 44
    package static let fullPacketSize = 184

    /// Validates the frame's structure and returns its packets for iteration.
    ///
    /// Throws when the announced packets do not fit in the frame or bytes follow the last one: such a
    /// frame is corrupt as a whole, so none of its packets can be trusted.
    package static func decode(frame: ByteBuffer) throws(BrokerFrameError) -> ZerodhaFrame {
        let available = frame.readableBytes
        if available == 1 {
            return ZerodhaFrame(buffer: frame, isHeartbeat: true, packetCount: 0, skippedPacketCount: 0)
        }
        guard available >= 2 else { throw .truncated("Kite frame", needed: 2, available: available) }
        let base = frame.readerIndex
        let count = Int(frame.getInteger(at: base, endianness: .big, as: UInt16.self) ?? 0)
        var offset = 2
        var skipped = 0
        for index in 0..<count {
            guard offset + 2 <= available else {
                throw .truncated("Kite frame header of packet \(index + 1) of \(count)", needed: offset + 2, available: available)
            }
            let length = Int(frame.getInteger(at: base + offset, endianness: .big, as: UInt16.self) ?? 0)
            offset += 2
            guard offset + length <= available else {
                throw .truncated("Kite packet \(index + 1) of \(count)", needed: offset + length, available: available)
            }
            if !self.isKnownPacketSize(length) { skipped += 1 }
            offset += length
        }
        guard offset == available else { throw .trailingBytes("Kite frame", count: available - offset) }
        return ZerodhaFrame(buffer: frame, isHeartbeat: false, packetCount: count, skippedPacketCount: skipped)
    }

    static func isKnownPacketSize(_ length: Int) -> Bool {
        switch length {
        case ltpPacketSize, indexQuotePacketSize, indexFullPacketSize, quotePacketSize, fullPacketSize: return true
        default: return false
        }
    }

    /// Decodes one packet already known to lie within `buffer`; `nil` for undocumented sizes.
    static func packet(in buffer: ByteBuffer, start: Int, length: Int) -> ZerodhaPacket? {
        let fields = PacketFields(buffer, start: start, endianness: .big)
        switch length {
        case ltpPacketSize:
            return .ltp(ZerodhaLTPPacket(instrumentToken: fields.u32(0), lastPrice: fields.u32(4)))
        case indexQuotePacketSize, indexFullPacketSize:
            return .index(
                ZerodhaIndexPacket(
                    instrumentToken: fields.u32(0),
                    lastPrice: fields.u32(4),
                    high: fields.u32(8),
                    low: fields.u32(12),
                    open: fields.u32(16),
                    close: fields.u32(20),
                    change: fields.i32(24),
                    exchangeTimestamp: length == indexFullPacketSize ? fields.u32(28) : nil
                )
            )
        case quotePacketSize:
            return .quote(self.quote(fields))
        case fullPacketSize:
            return .full(
                ZerodhaFullPacket(
                    quote: self.quote(fields),
                    lastTradeTime: fields.u32(44),
                    openInterest: fields.u32(48),
                    openInterestDayHigh: fields.u32(52),
                    openInterestDayLow: fields.u32(56),
                    exchangeTimestamp: fields.u32(60),
                    depth: ZerodhaDepth(bytes: fields.slice(64, length: ZerodhaDepth.byteCount))
                )
            )
        default:
            return nil
        }
    }

    private static func quote(_ fields: PacketFields) -> ZerodhaQuotePacket {
        ZerodhaQuotePacket(
            instrumentToken: fields.u32(0),
            lastPrice: fields.u32(4),
            lastQuantity: fields.u32(8),
            averagePrice: fields.u32(12),
            volume: fields.u32(16),
            totalBuyQuantity: fields.u32(20),
            totalSellQuantity: fields.u32(24),
            open: fields.u32(28),
            high: fields.u32(32),
            low: fields.u32(36),
            close: fields.u32(40)
        )
    }
}
