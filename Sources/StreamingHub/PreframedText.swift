import NIOCore

/// A text message with its RFC 6455 frame header written in the bytes just before the reader
/// index, where readers of the payload do not see it.
///
/// The hub builds each `market_data` frame once and shares it among all its receivers. A server
/// frame's header depends only on the payload's length, so it is written once too: a WebSocket
/// connection moves the reader index back over it and writes header and payload as one buffer,
/// while local clients read only the payload. Per client, nothing is encoded or allocated.
public enum PreframedText {
    /// Room for the longest header: two bytes and a 64-bit length.
    public static let headroom = 10

    /// Prepares an empty buffer: the payload is written after ``headroom`` reserved bytes.
    public static func reserveHeadroom(in buffer: inout ByteBuffer) {
        precondition(buffer.readableBytes == 0, "reserve the headroom before writing the payload")
        buffer.moveWriterIndex(forwardBy: self.headroom)
        buffer.moveReaderIndex(forwardBy: self.headroom)
    }

    /// Writes the header of a final, unmasked text frame carrying the readable bytes, just
    /// before them. The buffer must have been prepared by ``reserveHeadroom(in:)``.
    public static func writeHeader(into buffer: inout ByteBuffer) {
        let length = buffer.readableBytes
        let start = buffer.readerIndex - self.headerLength(forPayloadLength: length)
        precondition(start >= 0, "no headroom reserved for the frame header")
        buffer.setInteger(UInt8(0x81), at: start)
        switch length {
        case 0...125:
            buffer.setInteger(UInt8(length), at: start + 1)
        case 126...0xFFFF:
            buffer.setInteger(UInt8(126), at: start + 1)
            buffer.setInteger(UInt16(length), at: start + 2)
        default:
            buffer.setInteger(UInt8(127), at: start + 1)
            buffer.setInteger(UInt64(length), at: start + 2)
        }
    }

    /// The whole frame, header included, if `payload` carries a header written by
    /// ``writeHeader(into:)``; `nil` for a buffer without one (the caller frames it itself).
    public static func frame(of payload: ByteBuffer) -> ByteBuffer? {
        let length = payload.readableBytes
        let headerLength = self.headerLength(forPayloadLength: length)
        guard payload.readerIndex >= headerLength else { return nil }
        var frame = payload
        frame.moveReaderIndex(to: payload.readerIndex - headerLength)
        guard frame.getInteger(at: frame.readerIndex, as: UInt8.self) == 0x81,
            let lengthByte = frame.getInteger(at: frame.readerIndex + 1, as: UInt8.self)
        else { return nil }
        switch lengthByte {
        case 126:
            guard frame.getInteger(at: frame.readerIndex + 2, as: UInt16.self) == UInt16(truncatingIfNeeded: length) else { return nil }
        case 127:
            guard frame.getInteger(at: frame.readerIndex + 2, as: UInt64.self) == UInt64(length) else { return nil }
        default:
            guard Int(lengthByte) == length else { return nil }
        }
        return frame
    }

    private static func headerLength(forPayloadLength length: Int) -> Int {
        switch length {
        case 0...125: return 2
        case 126...0xFFFF: return 4
        default: return 10
        }
    }
}
