import NIOCore

/// Reads fixed-offset fields of one packet whose length the caller has already checked.
///
/// Offsets are relative to the packet start, as the broker layouts give them. Every read still goes
/// through `ByteBuffer`'s bounds-checked accessors, so a wrong offset yields zero instead of reading
/// outside the frame; the decoders check lengths first so that never happens on valid layouts.
/// Public and inlinable although only the feed targets use it: every broker's codec, in a module
/// of its own, reads each field through it, and Swift 6.3 inlines no method of a `package` type
/// into another module, `@inlinable` or not (a call per field made the decoders up to a quarter
/// slower in `oa-decoder-bench`).
public struct PacketFields {
    @usableFromInline let buffer: ByteBuffer
    @usableFromInline let start: Int
    @usableFromInline let endianness: Endianness

    @inlinable
    public init(_ buffer: ByteBuffer, start: Int, endianness: Endianness) {
        self.buffer = buffer
        self.start = start
        self.endianness = endianness
    }

    @inlinable @inline(__always)
    public func integer<Value: FixedWidthInteger>(_ offset: Int, as type: Value.Type = Value.self) -> Value {
        self.buffer.getInteger(at: self.start + offset, endianness: self.endianness, as: Value.self) ?? 0
    }

    @inlinable @inline(__always)
    public func u8(_ offset: Int) -> UInt8 { self.integer(offset) }

    @inlinable @inline(__always)
    public func u16(_ offset: Int) -> UInt16 { self.integer(offset) }

    @inlinable @inline(__always)
    public func u32(_ offset: Int) -> UInt32 { self.integer(offset) }

    @inlinable @inline(__always)
    public func i32(_ offset: Int) -> Int32 { self.integer(offset) }

    @inlinable @inline(__always)
    public func i64(_ offset: Int) -> Int64 { self.integer(offset) }

    @inlinable @inline(__always)
    public func f32(_ offset: Int) -> Float { Float(bitPattern: self.integer(offset, as: UInt32.self)) }

    @inlinable @inline(__always)
    public func f64(_ offset: Int) -> Double { Double(bitPattern: self.integer(offset, as: UInt64.self)) }

    /// A view of `length` bytes from `offset`, sharing the frame's storage.
    @inlinable
    public func slice(_ offset: Int, length: Int) -> ByteBuffer {
        self.buffer.getSlice(at: self.start + offset, length: length) ?? ByteBuffer()
    }
}
