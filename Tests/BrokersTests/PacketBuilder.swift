import MarketData
import NIOCore

/// Builds broker packets byte by byte from the documented layouts, so fixtures do not depend on the
/// decoders they test.
struct PacketBuilder {
    enum Order {
        case big
        case little
    }

    var bytes: [UInt8] = []
    let order: Order

    init(_ order: Order) {
        self.order = order
    }

    var count: Int { self.bytes.count }

    mutating func u8(_ value: UInt8) {
        self.bytes.append(value)
    }

    mutating func integer<T: FixedWidthInteger>(_ value: T) {
        let ordered = self.order == .big ? value.bigEndian : value.littleEndian
        withUnsafeBytes(of: ordered) { self.bytes.append(contentsOf: $0) }
    }

    mutating func u16(_ value: UInt16) { self.integer(value) }
    mutating func i16(_ value: Int16) { self.integer(value) }
    mutating func u32(_ value: UInt32) { self.integer(value) }
    mutating func i32(_ value: Int32) { self.integer(value) }
    mutating func i64(_ value: Int64) { self.integer(value) }
    mutating func f32(_ value: Float) { self.integer(value.bitPattern) }
    mutating func f64(_ value: Double) { self.integer(value.bitPattern) }

    /// ASCII text, NUL-padded to `width` bytes.
    mutating func ascii(_ text: String, width: Int) {
        let utf8 = Array(text.utf8)
        self.bytes.append(contentsOf: utf8)
        self.bytes.append(contentsOf: repeatElement(0, count: width - utf8.count))
    }

    mutating func zeros(_ count: Int) {
        self.bytes.append(contentsOf: repeatElement(0, count: count))
    }

    /// Overwrites a little- or big-endian UInt16 at `offset` (for length fields written last).
    mutating func patchU16(_ value: UInt16, at offset: Int) {
        let ordered = self.order == .big ? value.bigEndian : value.littleEndian
        withUnsafeBytes(of: ordered) { raw in
            for (index, byte) in raw.enumerated() { self.bytes[offset + index] = byte }
        }
    }

    var buffer: ByteBuffer { ByteBuffer(bytes: self.bytes) }
}

/// Bytes from a hex string; spaces ignored.
func hexBytes(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0..<$0 + 2]), radix: 16) ?? 0 }
}

func hexBuffer(_ text: String) -> ByteBuffer {
    ByteBuffer(bytes: hexBytes(text))
}

/// The tick's wire `data` object, as the agent sends it to clients.
func dataJSON(_ tick: Tick) -> String {
    var buffer = ByteBufferAllocator().buffer(capacity: 512)
    MarketDataEnvelope.writeData(of: tick, into: &buffer)
    return String(buffer: buffer)
}

/// The reference's fixed clock, 1700000000.123 s, as epoch milliseconds.
let referenceClock: Int64 = 1_700_000_000_123
