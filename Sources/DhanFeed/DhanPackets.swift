import BrokerKit
import NIOCore

/// Dhan's exchange segments: the `ExchangeSegment` strings of requests and the numeric byte of
/// packet headers. NSE and BSE indices share `IDX_I`.
package enum DhanExchangeSegment: UInt8, Sendable, Hashable, CaseIterable {
    case index = 0
    case nseEquity = 1
    case nseDerivatives = 2
    case nseCurrency = 3
    case bseEquity = 4
    case mcxCommodity = 5
    case bseCurrency = 7
    case bseDerivatives = 8

    /// The name requests use (`IDX_I`, `NSE_EQ`, `NSE_FNO`, …).
    package var name: String {
        switch self {
        case .index: return "IDX_I"
        case .nseEquity: return "NSE_EQ"
        case .nseDerivatives: return "NSE_FNO"
        case .nseCurrency: return "NSE_CURRENCY"
        case .bseEquity: return "BSE_EQ"
        case .mcxCommodity: return "MCX_COMM"
        case .bseCurrency: return "BSE_CURRENCY"
        case .bseDerivatives: return "BSE_FNO"
        }
    }

    package init?(name: String) {
        guard let segment = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = segment
    }
}

/// The 8 bytes every packet of the 5-level feed starts with.
package struct DhanPacketHeader: Sendable, Hashable {
    package var responseCode: UInt8
    /// The raw segment byte; see ``DhanExchangeSegment``.
    package var exchangeSegment: UInt8
    package var securityID: UInt32

    package init(responseCode: UInt8, exchangeSegment: UInt8, securityID: UInt32) {
        self.responseCode = responseCode
        self.exchangeSegment = exchangeSegment
        self.securityID = securityID
    }
}

/// Trade and volume fields shared by Quote and Full packets. Prices are float32 rupees.
package struct DhanTradeFields: Sendable, Hashable {
    package var lastPrice: Float
    package var lastQuantity: UInt16
    /// Epoch seconds as Dhan sends them.
    package var lastTradeTime: UInt32
    package var averagePrice: Float
    package var volume: UInt32
    package var totalSellQuantity: UInt32
    package var totalBuyQuantity: UInt32
}

/// The day's prices of Quote and Full packets. `close` is what Dhan calls the day close.
package struct DhanDayPrices: Sendable, Hashable {
    package var open: Float
    package var close: Float
    package var high: Float
    package var low: Float
}

/// A Full packet's open interest fields.
package struct DhanOpenInterestFields: Sendable, Hashable {
    package var openInterest: UInt32
    package var dayHigh: UInt32
    package var dayLow: UInt32
}

/// One level of Dhan's 5-level book: both sides of one depth row.
package struct DhanDepthRow: Sendable, Hashable {
    package var bidQuantity: UInt32
    package var askQuantity: UInt32
    package var bidOrders: UInt16
    package var askOrders: UInt16
    package var bidPrice: Float
    package var askPrice: Float
}

/// The five 20-byte depth rows of a Full packet, read on demand.
package struct DhanFiveLevelDepth: Sendable, Hashable {
    package static let levelCount = 5
    static let rowSize = 20
    static let byteCount = levelCount * rowSize

    private let bytes: ByteBuffer

    init(bytes: ByteBuffer) {
        self.bytes = bytes
    }

    package func row(_ index: Int) -> DhanDepthRow? {
        guard (0..<Self.levelCount).contains(index) else { return nil }
        let fields = PacketFields(self.bytes, start: self.bytes.readerIndex + index * Self.rowSize, endianness: .little)
        return DhanDepthRow(
            bidQuantity: fields.u32(0),
            askQuantity: fields.u32(4),
            bidOrders: fields.u16(8),
            askOrders: fields.u16(10),
            bidPrice: fields.f32(12),
            askPrice: fields.f32(16)
        )
    }
}

/// One packet of the Live Market Feed v2.
package enum DhanPacket: Sendable, Hashable {
    case ticker(DhanPacketHeader, lastPrice: Float, lastTradeTime: UInt32)
    case quote(DhanPacketHeader, DhanTradeFields, DhanDayPrices)
    case openInterest(DhanPacketHeader, openInterest: UInt32)
    case previousClose(DhanPacketHeader, price: Float, openInterest: UInt32)
    case full(DhanPacketHeader, DhanTradeFields, DhanOpenInterestFields, DhanDayPrices, DhanFiveLevelDepth)
    case marketStatus(DhanPacketHeader)
    /// The server is closing the connection; see ``DhanTickDecoder/disconnectReason(_:)``.
    case disconnect(DhanPacketHeader, reason: UInt16)

    package var header: DhanPacketHeader {
        switch self {
        case .ticker(let header, _, _), .quote(let header, _, _), .openInterest(let header, _), .previousClose(let header, _, _),
            .full(let header, _, _, _, _), .marketStatus(let header), .disconnect(let header, _):
            return header
        }
    }
}

/// One validated binary frame of the 5-level feed.
package typealias DhanFrame = DhanPacketFrame<DhanTickDecoder>

/// Decodes Dhan Live Market Feed v2 binary frames (little-endian, packets back to back, each with
/// an 8-byte header whose length field counts the whole packet).
package enum DhanTickDecoder: DhanPacketLayout {
    package static let frameName = "Dhan frame"
    package static let headerName = "Dhan packet header"
    package static let headerSize = 8
    package static let codeOffset = 0
    package static let lengthOffset = 1

    package enum ResponseCode {
        package static let ticker: UInt8 = 2
        package static let quote: UInt8 = 4
        package static let openInterest: UInt8 = 5
        package static let previousClose: UInt8 = 6
        package static let marketStatus: UInt8 = 7
        package static let full: UInt8 = 8
        package static let disconnect: UInt8 = 50
    }

    /// The size each known response code needs, `nil` for codes that are skipped.
    package static func requiredSize(code: UInt8) -> Int? {
        switch code {
        case ResponseCode.ticker: return 16
        case ResponseCode.quote: return 50
        case ResponseCode.openInterest: return 12
        case ResponseCode.previousClose: return 16
        case ResponseCode.marketStatus: return 8
        case ResponseCode.full: return 162
        case ResponseCode.disconnect: return 10
        default: return nil
        }
    }

    package static func name(code: UInt8) -> String {
        switch code {
        case ResponseCode.ticker: return "Dhan ticker packet"
        case ResponseCode.quote: return "Dhan quote packet"
        case ResponseCode.openInterest: return "Dhan OI packet"
        case ResponseCode.previousClose: return "Dhan previous-close packet"
        case ResponseCode.marketStatus: return "Dhan market-status packet"
        case ResponseCode.full: return "Dhan full packet"
        case ResponseCode.disconnect: return "Dhan disconnect packet"
        default: return "Dhan packet with code \(code)"
        }
    }

    /// Validates every packet header of the frame and returns its packets for iteration.
    ///
    /// Throws when a header or packet runs past the frame, a length field is below the header size
    /// (the rest of the frame could not be found), or a known packet is shorter than its layout.
    /// A longer one is accepted; its extra bytes are ignored.
    package static func decode(frame: ByteBuffer) throws(BrokerFrameError) -> DhanFrame {
        try DhanFrame(validating: frame)
    }

    /// What a disconnect packet's reason code means, per Dhan's documentation.
    package static func disconnectReason(_ code: UInt16) -> String {
        switch code {
        case 805: return "too many connections for this client"
        case 806: return "the Data API subscription is not active"
        case 807: return "the access token has expired"
        case 808: return "the client ID is invalid"
        case 809: return "authentication failed"
        default: return "disconnect reason \(code)"
        }
    }

    /// Decodes the packet at `start`, whose header and size ``decode(frame:)`` validated.
    package static func packet(in buffer: ByteBuffer, start: Int) -> DhanPacket? {
        let fields = PacketFields(buffer, start: start, endianness: .little)
        let header = DhanPacketHeader(responseCode: fields.u8(0), exchangeSegment: fields.u8(3), securityID: fields.u32(4))
        switch header.responseCode {
        case ResponseCode.ticker:
            return .ticker(header, lastPrice: fields.f32(8), lastTradeTime: fields.u32(12))
        case ResponseCode.quote:
            let prices = DhanDayPrices(open: fields.f32(34), close: fields.f32(38), high: fields.f32(42), low: fields.f32(46))
            return .quote(header, self.trade(fields), prices)
        case ResponseCode.openInterest:
            return .openInterest(header, openInterest: fields.u32(8))
        case ResponseCode.previousClose:
            return .previousClose(header, price: fields.f32(8), openInterest: fields.u32(12))
        case ResponseCode.marketStatus:
            return .marketStatus(header)
        case ResponseCode.full:
            let openInterest = DhanOpenInterestFields(openInterest: fields.u32(34), dayHigh: fields.u32(38), dayLow: fields.u32(42))
            let prices = DhanDayPrices(open: fields.f32(46), close: fields.f32(50), high: fields.f32(54), low: fields.f32(58))
            let depth = DhanFiveLevelDepth(bytes: fields.slice(62, length: DhanFiveLevelDepth.byteCount))
            return .full(header, self.trade(fields), openInterest, prices, depth)
        case ResponseCode.disconnect:
            return .disconnect(header, reason: fields.u16(8))
        default:
            return nil
        }
    }

    private static func trade(_ fields: PacketFields) -> DhanTradeFields {
        DhanTradeFields(
            lastPrice: fields.f32(8),
            lastQuantity: fields.u16(12),
            lastTradeTime: fields.u32(14),
            averagePrice: fields.f32(18),
            volume: fields.u32(22),
            totalSellQuantity: fields.u32(26),
            totalBuyQuantity: fields.u32(30)
        )
    }
}
