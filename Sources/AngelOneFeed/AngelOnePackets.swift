import BrokerKit
import NIOCore

/// SmartAPI's streaming modes, as sent in requests and echoed in every packet's first byte.
package enum AngelOneMode: UInt8, Sendable, Hashable {
    case ltp = 1
    case quote = 2
    case snapQuote = 3
    /// Twenty levels a side, NSE cash only, at most 50 tokens.
    case depth20 = 4
}

/// SmartAPI's exchange types: the `exchangeType` of requests and the second byte of packets.
package enum AngelOneExchangeType: UInt8, Sendable, Hashable, CaseIterable {
    case nseCash = 1
    case nseFutures = 2
    case bseCash = 3
    case bseFutures = 4
    case mcxFutures = 5
    case ncxFutures = 7
    case cdeFutures = 13

    /// The exchange type of a scrip-master `exch_seg` (`NSE`, `NFO`, `BSE`, `BFO`, `MCX`, `NCX`, `CDS`).
    package init?(brokerExchange: String) {
        switch brokerExchange {
        case "NSE": self = .nseCash
        case "NFO": self = .nseFutures
        case "BSE": self = .bseCash
        case "BFO": self = .bseFutures
        case "MCX": self = .mcxFutures
        case "NCX", "NCDEX": self = .ncxFutures
        case "CDS": self = .cdeFutures
        default: return nil
        }
    }

    /// Prices arrive in paise, except currency derivatives which SmartAPI sends in 1e-7 rupee.
    package var priceDivisor: Double {
        self == .cdeFutures ? 10_000_000 : 100
    }
}

/// The 43 bytes every SmartAPI packet starts with.
package struct AngelOnePacketHeader: Sendable, Hashable {
    package var mode: AngelOneMode
    /// The raw exchange type byte; see ``AngelOneExchangeType``.
    package var exchangeType: UInt8
    /// The scrip-master token (`2885`, `99926000`).
    package var token: String
    package var sequenceNumber: Int64
    /// Epoch milliseconds; for Depth-20 packets, when SmartAPI sent the packet.
    package var exchangeTimestamp: Int64

    package init(mode: AngelOneMode, exchangeType: UInt8, token: String, sequenceNumber: Int64, exchangeTimestamp: Int64) {
        self.mode = mode
        self.exchangeType = exchangeType
        self.token = token
        self.sequenceNumber = sequenceNumber
        self.exchangeTimestamp = exchangeTimestamp
    }
}

/// Quote fields (bytes 43–123), shared by Quote and SnapQuote packets. Prices are raw integers in
/// the exchange type's unit; see ``AngelOneExchangeType/priceDivisor``.
package struct AngelOneQuoteFields: Sendable, Hashable {
    package var lastPrice: Int64
    package var lastQuantity: Int64
    package var averagePrice: Int64
    package var volume: Int64
    /// SmartAPI sends both totals as doubles.
    package var totalBuyQuantity: Double
    package var totalSellQuantity: Double
    package var open: Int64
    package var high: Int64
    package var low: Int64
    /// The previous session's close.
    package var close: Int64
}

/// SnapQuote additions (bytes 123–379).
package struct AngelOneSnapQuoteFields: Sendable, Hashable {
    package var lastTradeTime: Int64
    package var openInterest: Int64
    /// Documented as a dummy field; decoded as the documented double and not used.
    package var openInterestChangePercent: Double
    package var bestFive: AngelOneBestFive
    package var upperCircuit: Int64
    package var lowerCircuit: Int64
    package var high52Week: Int64
    package var low52Week: Int64
}

/// One level of a SmartAPI book: quantity, raw price and order count.
package struct AngelOneDepthLevel: Sendable, Hashable {
    package var quantity: Int64
    package var price: Int64
    package var orders: Int64

    package init(quantity: Int64, price: Int64, orders: Int64) {
        self.quantity = quantity
        self.price = price
        self.orders = orders
    }
}

/// The ten 20-byte best-five rows of a SnapQuote packet, read on demand. Rows are flagged rather
/// than ordered: flag 1 is a bid, 0 an ask, in the order they appear.
package struct AngelOneBestFive: Sendable, Hashable {
    static let rowCount = 10
    static let rowSize = 20
    static let byteCount = rowCount * rowSize

    private let bytes: ByteBuffer

    init(bytes: ByteBuffer) {
        self.bytes = bytes
    }

    /// Row `index` in `0..<10`: whether it is a bid, and the level.
    package func row(_ index: Int) -> (isBid: Bool, level: AngelOneDepthLevel)? {
        guard (0..<Self.rowCount).contains(index) else { return nil }
        let fields = PacketFields(self.bytes, start: self.bytes.readerIndex + index * Self.rowSize, endianness: .little)
        let level = AngelOneDepthLevel(quantity: fields.i64(2), price: fields.i64(10), orders: Int64(fields.u16(18)))
        return (fields.u16(0) != 0, level)
    }
}

/// Twenty bids then twenty asks of 10 bytes each (`int32 qty`, `int32 price`, `int16 orders`).
package struct AngelOneDepth20: Sendable, Hashable {
    package static let levelCount = 20
    static let levelSize = 10
    static let byteCount = 2 * levelCount * levelSize

    private let bytes: ByteBuffer

    init(bytes: ByteBuffer) {
        self.bytes = bytes
    }

    package func bid(_ index: Int) -> AngelOneDepthLevel? {
        guard (0..<Self.levelCount).contains(index) else { return nil }
        return self.level(at: index * Self.levelSize)
    }

    package func ask(_ index: Int) -> AngelOneDepthLevel? {
        guard (0..<Self.levelCount).contains(index) else { return nil }
        return self.level(at: (Self.levelCount + index) * Self.levelSize)
    }

    private func level(at offset: Int) -> AngelOneDepthLevel {
        let fields = PacketFields(self.bytes, start: self.bytes.readerIndex + offset, endianness: .little)
        return AngelOneDepthLevel(quantity: Int64(fields.i32(0)), price: Int64(fields.i32(4)), orders: Int64(fields.i16(8)))
    }
}

extension PacketFields {
    @inline(__always)
    func i16(_ offset: Int) -> Int16 { self.integer(offset) }
}

/// One SmartAPI WebSocket 2.0 packet; each binary frame holds exactly one.
package enum AngelOnePacket: Sendable, Hashable {
    case ltp(AngelOnePacketHeader, lastPrice: Int64)
    case quote(AngelOnePacketHeader, AngelOneQuoteFields)
    case snapQuote(AngelOnePacketHeader, AngelOneQuoteFields, AngelOneSnapQuoteFields)
    case depth20(AngelOnePacketHeader, AngelOneDepth20)

    package var header: AngelOnePacketHeader {
        switch self {
        case .ltp(let header, _), .quote(let header, _), .snapQuote(let header, _, _), .depth20(let header, _): return header
        }
    }
}

/// Decodes SmartAPI WebSocket 2.0 binary frames (little-endian, one packet per frame).
package enum AngelOneTickDecoder {
    package static let ltpPacketSize = 51
    package static let quotePacketSize = 123
    package static let snapQuotePacketSize = 379
    package static let depth20PacketSize = 43 + AngelOneDepth20.byteCount
    static let tokenOffset = 2
    static let tokenFieldSize = 25

    /// Decodes one frame. Its length must be exactly the size of the mode in its first byte: a
    /// shorter frame cannot be read, and a longer one means the layout is not what we know.
    package static func decode(frame: ByteBuffer) throws(BrokerFrameError) -> AngelOnePacket {
        let length = frame.readableBytes
        guard length >= 1 else { throw .truncated("SmartAPI frame", needed: 1, available: 0) }
        let fields = PacketFields(frame, start: frame.readerIndex, endianness: .little)
        let modeByte = fields.u8(0)
        guard let mode = AngelOneMode(rawValue: modeByte) else { throw .unknownPacketKind("SmartAPI packet", code: Int(modeByte)) }
        let expected: Int
        switch mode {
        case .ltp: expected = self.ltpPacketSize
        case .quote: expected = self.quotePacketSize
        case .snapQuote: expected = self.snapQuotePacketSize
        case .depth20: expected = self.depth20PacketSize
        }
        guard length >= expected else { throw .truncated("SmartAPI mode \(modeByte) packet", needed: expected, available: length) }
        guard length == expected else { throw .unexpectedLength("SmartAPI mode \(modeByte) packet", length: length, expected: expected) }
        let header = AngelOnePacketHeader(
            mode: mode,
            exchangeType: fields.u8(1),
            token: try self.token(frame, start: frame.readerIndex + self.tokenOffset),
            sequenceNumber: fields.i64(27),
            exchangeTimestamp: fields.i64(35)
        )
        switch mode {
        case .ltp:
            return .ltp(header, lastPrice: fields.i64(43))
        case .quote:
            return .quote(header, self.quote(fields))
        case .snapQuote:
            let snap = AngelOneSnapQuoteFields(
                lastTradeTime: fields.i64(123),
                openInterest: fields.i64(131),
                openInterestChangePercent: fields.f64(139),
                bestFive: AngelOneBestFive(bytes: fields.slice(147, length: AngelOneBestFive.byteCount)),
                upperCircuit: fields.i64(347),
                lowerCircuit: fields.i64(355),
                high52Week: fields.i64(363),
                low52Week: fields.i64(371)
            )
            return .snapQuote(header, self.quote(fields), snap)
        case .depth20:
            return .depth20(header, AngelOneDepth20(bytes: fields.slice(43, length: AngelOneDepth20.byteCount)))
        }
    }

    private static func quote(_ fields: PacketFields) -> AngelOneQuoteFields {
        AngelOneQuoteFields(
            lastPrice: fields.i64(43),
            lastQuantity: fields.i64(51),
            averagePrice: fields.i64(59),
            volume: fields.i64(67),
            totalBuyQuantity: fields.f64(75),
            totalSellQuantity: fields.f64(83),
            open: fields.i64(91),
            high: fields.i64(99),
            low: fields.i64(107),
            close: fields.i64(115)
        )
    }

    /// The NUL-terminated ASCII token. Tokens are short digit strings, so the `String` is stored
    /// inline and costs no allocation.
    private static func token(_ frame: ByteBuffer, start: Int) throws(BrokerFrameError) -> String {
        var length = 0
        while length < self.tokenFieldSize, let byte = frame.getInteger(at: start + length, as: UInt8.self), byte != 0 {
            guard byte > 0x20, byte < 0x7F else {
                throw .malformed("SmartAPI token", reason: "byte \(byte) at offset \(self.tokenOffset + length) is not printable ASCII")
            }
            length += 1
        }
        guard length > 0 else { throw .malformed("SmartAPI token", reason: "it is empty") }
        return frame.getString(at: start, length: length) ?? ""
    }
}
