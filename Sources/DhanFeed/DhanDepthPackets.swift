import BrokerKit
import MarketData
import NIOCore

/// One level of Dhan's 20-level book: float64 rupees, quantity and order count.
package struct DhanDepthLevel: Sendable, Hashable {
    package var price: Double
    package var quantity: UInt32
    package var orders: UInt32

    package init(price: Double, quantity: UInt32, orders: UInt32) {
        self.price = price
        self.quantity = quantity
        self.orders = orders
    }
}

/// One side of one instrument's 20-level book; Dhan sends bids and asks as separate packets.
package struct DhanDepthSide: Sendable, Hashable {
    package static let levelCount = 20
    static let levelSize = 16

    package var exchangeSegment: UInt8
    package var securityID: UInt32
    /// Dhan's sequence number; not needed to assemble books.
    package var sequence: UInt32
    private let bytes: ByteBuffer

    init(exchangeSegment: UInt8, securityID: UInt32, sequence: UInt32, bytes: ByteBuffer) {
        self.exchangeSegment = exchangeSegment
        self.securityID = securityID
        self.sequence = sequence
        self.bytes = bytes
    }

    /// Level `index` in `0..<20`, best first.
    package func level(_ index: Int) -> DhanDepthLevel? {
        guard (0..<Self.levelCount).contains(index) else { return nil }
        let fields = PacketFields(self.bytes, start: self.bytes.readerIndex + index * Self.levelSize, endianness: .little)
        return DhanDepthLevel(price: fields.f64(0), quantity: fields.u32(8), orders: fields.u32(12))
    }

    /// The side as normalised levels.
    package var levels: [DepthLevel] {
        var levels: [DepthLevel] = []
        levels.reserveCapacity(Self.levelCount)
        for index in 0..<Self.levelCount {
            guard let level = self.level(index) else { continue }
            levels.append(DepthLevel(price: level.price, quantity: Int64(level.quantity), orders: Int64(level.orders)))
        }
        return levels
    }
}

/// One packet of the 20-level depth feed.
package enum DhanDepthPacket: Sendable, Hashable {
    case bids(DhanDepthSide)
    case asks(DhanDepthSide)
    case disconnect(exchangeSegment: UInt8, securityID: UInt32, reason: UInt16)
}

/// One validated binary frame of the 20-level feed.
package typealias DhanDepthFrame = DhanPacketFrame<DhanDepthDecoder>

/// Decodes frames of Dhan's 20-level depth feed (little-endian): a 12-byte header
/// (`u16 length`, `u8 code` 41 bid / 51 ask, `u8 segment`, `u32 security id`, `u32 sequence`), then
/// 20 × (`f64 price`, `u32 quantity`, `u32 orders`).
package enum DhanDepthDecoder: DhanPacketLayout {
    package static let frameName = "Dhan depth frame"
    package static let headerName = "Dhan depth packet header"
    package static let headerSize = 12
    package static let codeOffset = 2
    package static let lengthOffset = 0
    package static let bidCode: UInt8 = 41
    package static let askCode: UInt8 = 51
    package static let disconnectCode: UInt8 = 50
    package static let sidePacketSize = headerSize + DhanDepthSide.levelCount * DhanDepthSide.levelSize
    static let disconnectPacketSize = headerSize + 2

    /// Validates every packet header of the frame and returns its packets for iteration.
    package static func decode(frame: ByteBuffer) throws(BrokerFrameError) -> DhanDepthFrame {
        try DhanDepthFrame(validating: frame)
    }

    package static func name(code: UInt8) -> String {
        "Dhan depth packet with code \(code)"
    }

    package static func requiredSize(code: UInt8) -> Int? {
        switch code {
        case self.bidCode, self.askCode: return self.sidePacketSize
        case self.disconnectCode: return self.disconnectPacketSize
        default: return nil
        }
    }

    package static func packet(in buffer: ByteBuffer, start: Int) -> DhanDepthPacket? {
        let fields = PacketFields(buffer, start: start, endianness: .little)
        let code = fields.u8(2)
        let segment = fields.u8(3)
        let securityID = fields.u32(4)
        switch code {
        case self.bidCode, self.askCode:
            let side = DhanDepthSide(
                exchangeSegment: segment,
                securityID: securityID,
                sequence: fields.u32(8),
                bytes: fields.slice(self.headerSize, length: DhanDepthSide.levelCount * DhanDepthSide.levelSize)
            )
            return code == self.bidCode ? .bids(side) : .asks(side)
        case self.disconnectCode:
            return .disconnect(exchangeSegment: segment, securityID: securityID, reason: fields.u16(12))
        default:
            return nil
        }
    }
}

/// Pairs the bid and ask packets of the 20-level feed into whole books.
///
/// Dhan sends the two sides separately; a book is complete once both have arrived for an instrument,
/// and the pair is then released and forgotten, so the next book starts afresh (as the reference
/// publishes). A side that arrives twice before its partner replaces the older one.
package struct DhanDepthBookAssembler: Sendable {
    private struct Key: Hashable {
        var segment: UInt8
        var securityID: UInt32
    }

    private struct Pending {
        var bids: [DepthLevel]?
        var asks: [DepthLevel]?
    }

    private var pending: [Key: Pending] = [:]

    package init() {}

    /// Instruments with one side waiting for the other.
    package var pendingCount: Int { self.pending.count }

    /// Records a side; returns the whole book when this side completes it.
    package mutating func receive(_ packet: DhanDepthPacket) -> (exchangeSegment: UInt8, securityID: UInt32, depth: MarketDepth)? {
        let side: DhanDepthSide
        let isBid: Bool
        switch packet {
        case .bids(let bids):
            side = bids
            isBid = true
        case .asks(let asks):
            side = asks
            isBid = false
        case .disconnect:
            return nil
        }
        let key = Key(segment: side.exchangeSegment, securityID: side.securityID)
        var entry = self.pending[key] ?? Pending()
        if isBid { entry.bids = side.levels } else { entry.asks = side.levels }
        guard let bids = entry.bids, let asks = entry.asks else {
            self.pending[key] = entry
            return nil
        }
        self.pending[key] = nil
        return (side.exchangeSegment, side.securityID, MarketDepth(buy: bids, sell: asks))
    }

    /// Forgets a half-received book, for when an instrument is unsubscribed.
    package mutating func discard(exchangeSegment: UInt8, securityID: UInt32) {
        self.pending[Key(segment: exchangeSegment, securityID: securityID)] = nil
    }
}
