import BrokerKit
import NIOCore

/// How one of Dhan's binary feeds lays out its packets: both put packets back to back, each with
/// a little-endian `u16` length that counts the whole packet, but the 5-level feed has an 8-byte
/// header (code first) and the 20-level feed a 12-byte one (length first).
package protocol DhanPacketLayout {
    associatedtype Packet
    /// What errors call a whole frame and a packet header (`Dhan frame`, `Dhan depth packet header`).
    static var frameName: String { get }
    static var headerName: String { get }
    static var headerSize: Int { get }
    static var codeOffset: Int { get }
    static var lengthOffset: Int { get }
    /// What errors call a packet with `code`.
    static func name(code: UInt8) -> String
    /// The size a packet with `code` needs; `nil` for codes that are skipped.
    static func requiredSize(code: UInt8) -> Int?
    /// The packet starting at `start`, already validated; `nil` for a skipped code.
    static func packet(in buffer: ByteBuffer, start: Int) -> Packet?
}

/// One validated binary frame of a Dhan feed, whose packets are decoded as they are iterated.
///
/// Packets with a code the layout does not know (code 0 acknowledgements among them) are skipped
/// using their length field and counted in ``skippedPacketCount``.
package struct DhanPacketFrame<Layout: DhanPacketLayout>: Sequence {
    package let packetCount: Int
    package let skippedPacketCount: Int
    private let buffer: ByteBuffer

    /// Validates every packet header of `frame`.
    ///
    /// Throws when a header or packet runs past the frame, a length field is below the header size
    /// (the rest of the frame could not be found), or a known packet is shorter than its layout.
    /// A longer one is accepted; its extra bytes are ignored.
    init(validating frame: ByteBuffer) throws(BrokerFrameError) {
        let base = frame.readerIndex
        let available = frame.readableBytes
        guard available > 0 else { throw .truncated(Layout.frameName, needed: Layout.headerSize, available: 0) }
        var offset = 0
        var count = 0
        var skipped = 0
        while offset < available {
            guard offset + Layout.headerSize <= available else {
                throw .truncated(Layout.headerName, needed: Layout.headerSize, available: available - offset)
            }
            let code = frame.getInteger(at: base + offset + Layout.codeOffset, as: UInt8.self) ?? 0
            let length = Int(frame.getInteger(at: base + offset + Layout.lengthOffset, endianness: .little, as: UInt16.self) ?? 0)
            guard length >= Layout.headerSize else {
                throw .malformed(Layout.name(code: code), reason: "length field \(length) is below the \(Layout.headerSize)-byte header")
            }
            guard offset + length <= available else {
                throw .truncated(Layout.name(code: code), needed: length, available: available - offset)
            }
            if let required = Layout.requiredSize(code: code) {
                guard length >= required else { throw .truncated(Layout.name(code: code), needed: required, available: length) }
            } else {
                skipped += 1
            }
            count += 1
            offset += length
        }
        self.buffer = frame
        self.packetCount = count
        self.skippedPacketCount = skipped
    }

    package func makeIterator() -> Iterator {
        Iterator(buffer: self.buffer)
    }

    package struct Iterator: IteratorProtocol {
        private let buffer: ByteBuffer
        private var offset: Int

        init(buffer: ByteBuffer) {
            self.buffer = buffer
            self.offset = buffer.readerIndex
        }

        package mutating func next() -> Layout.Packet? {
            while self.offset < self.buffer.writerIndex {
                let start = self.offset
                let length = Int(self.buffer.getInteger(at: start + Layout.lengthOffset, endianness: .little, as: UInt16.self) ?? 0)
                self.offset = start + Swift.max(length, Layout.headerSize)
                if let packet = Layout.packet(in: self.buffer, start: start) { return packet }
            }
            return nil
        }
    }
}

extension DhanPacketFrame: Sendable where Layout.Packet: Sendable {}
