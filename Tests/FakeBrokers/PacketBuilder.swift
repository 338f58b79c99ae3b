import NIOCore

/// Builds broker packets byte by byte from the documented layouts, so fixtures do not depend on the
/// decoders they test.
public struct PacketBuilder {
    public enum Order: Sendable {
        case big
        case little
    }

    public var bytes: [UInt8] = []
    public let order: Order

    public init(_ order: Order) {
        self.order = order
    }

    public var count: Int { self.bytes.count }

    public mutating func u8(_ value: UInt8) {
        self.bytes.append(value)
    }

    public mutating func integer<T: FixedWidthInteger>(_ value: T) {
        let ordered = self.order == .big ? value.bigEndian : value.littleEndian
        withUnsafeBytes(of: ordered) { self.bytes.append(contentsOf: $0) }
    }

    public mutating func u16(_ value: UInt16) { self.integer(value) }
    public mutating func i16(_ value: Int16) { self.integer(value) }
    public mutating func u32(_ value: UInt32) { self.integer(value) }
    public mutating func i32(_ value: Int32) { self.integer(value) }
    public mutating func i64(_ value: Int64) { self.integer(value) }
    public mutating func f32(_ value: Float) { self.integer(value.bitPattern) }
    public mutating func f64(_ value: Double) { self.integer(value.bitPattern) }

    /// ASCII text, NUL-padded to `width` bytes.
    public mutating func ascii(_ text: String, width: Int) {
        let utf8 = Array(text.utf8)
        self.bytes.append(contentsOf: utf8)
        self.bytes.append(contentsOf: repeatElement(0, count: width - utf8.count))
    }

    public mutating func zeros(_ count: Int) {
        self.bytes.append(contentsOf: repeatElement(0, count: count))
    }

    /// Overwrites a little- or big-endian UInt16 at `offset` (for length fields written last).
    public mutating func patchU16(_ value: UInt16, at offset: Int) {
        let ordered = self.order == .big ? value.bigEndian : value.littleEndian
        withUnsafeBytes(of: ordered) { raw in
            for (index, byte) in raw.enumerated() { self.bytes[offset + index] = byte }
        }
    }

    public var buffer: ByteBuffer { ByteBuffer(bytes: self.bytes) }
}

/// Bytes from a hex string; spaces ignored.
public func hexBytes(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0..<$0 + 2]), radix: 16) ?? 0 }
}

public func hexBuffer(_ text: String) -> ByteBuffer {
    ByteBuffer(bytes: hexBytes(text))
}
