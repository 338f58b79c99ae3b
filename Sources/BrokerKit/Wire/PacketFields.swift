import NIOCore

/// Reads fixed-offset fields of one packet whose length the caller has already checked.
///
/// Offsets are relative to the packet start, as the broker layouts give them. Every read still goes
/// through `ByteBuffer`'s bounds-checked accessors, so a wrong offset yields zero instead of reading
/// outside the frame; the decoders check lengths first so that never happens on valid layouts.
/// The reads are inlinable because every broker's codec, in its own module, makes them per field.
package struct PacketFields {
    package let buffer: ByteBuffer
    package let start: Int
    package let endianness: Endianness

    @inlinable
    package init(_ buffer: ByteBuffer, start: Int, endianness: Endianness) {
        self.buffer = buffer
        self.start = start
        self.endianness = endianness
    }

    @inlinable @inline(__always)
    package func integer<Value: FixedWidthInteger>(_ offset: Int, as type: Value.Type = Value.self) -> Value {
        self.buffer.getInteger(at: self.start + offset, endianness: self.endianness, as: Value.self) ?? 0
    }

    @inlinable @inline(__always)
    package func u8(_ offset: Int) -> UInt8 { self.integer(offset) }

    @inlinable @inline(__always)
    package func u16(_ offset: Int) -> UInt16 { self.integer(offset) }

    @inlinable @inline(__always)
    package func u32(_ offset: Int) -> UInt32 { self.integer(offset) }

    @inlinable @inline(__always)
    package func i32(_ offset: Int) -> Int32 { self.integer(offset) }

    @inlinable @inline(__always)
    package func i64(_ offset: Int) -> Int64 { self.integer(offset) }

    @inlinable @inline(__always)
    package func f32(_ offset: Int) -> Float { Float(bitPattern: self.integer(offset, as: UInt32.self)) }

    @inlinable @inline(__always)
    package func f64(_ offset: Int) -> Double { Double(bitPattern: self.integer(offset, as: UInt64.self)) }

    /// A view of `length` bytes from `offset`, sharing the frame's storage.
    @inlinable
    package func slice(_ offset: Int, length: Int) -> ByteBuffer {
        self.buffer.getSlice(at: self.start + offset, length: length) ?? ByteBuffer()
    }
}
