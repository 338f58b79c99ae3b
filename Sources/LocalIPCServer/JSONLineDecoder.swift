import NIOCore

/// What the line decoder hands on: a complete line, or the news that a line ran past the limit.
enum JSONLineFrame {
    /// One line without its `\n` (and without a trailing `\r`).
    case line(ByteBuffer)
    /// A line exceeded the limit; its bytes are discarded and no further lines follow, because the
    /// stream cannot be resynchronised with confidence.
    case tooLong
}

/// Splits the byte stream into `\n`-terminated lines of at most `maximumLineBytes`.
///
/// It remembers how far it has searched, so a long line that arrives in many reads is scanned
/// once, not once per read.
struct JSONLineDecoder: ByteToMessageDecoder {
    typealias InboundOut = JSONLineFrame

    let maximumLineBytes: Int
    private var searchedBytes = 0
    private var overflowed = false

    init(maximumLineBytes: Int) {
        self.maximumLineBytes = maximumLineBytes
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if self.overflowed {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return .needMoreData
        }
        let view = buffer.readableBytesView
        let searchFrom = view.index(view.startIndex, offsetBy: self.searchedBytes)
        guard let newline = view[searchFrom...].firstIndex(of: UInt8(ascii: "\n")) else {
            self.searchedBytes = view.count
            if view.count > self.maximumLineBytes {
                self.overflow(context: context, buffer: &buffer)
            }
            return .needMoreData
        }
        let length = view.distance(from: view.startIndex, to: newline)
        self.searchedBytes = 0
        guard length <= self.maximumLineBytes else {
            self.overflow(context: context, buffer: &buffer)
            return .needMoreData
        }
        self.emit(buffer.readSlice(length: length)!, context: context)
        buffer.moveReaderIndex(forwardBy: 1)
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        if try self.decode(context: context, buffer: &buffer) == .continue { return .continue }
        // A last line without its newline still counts: `printf '{...}' | socat ...` is common.
        if seenEOF, !self.overflowed, buffer.readableBytes > 0 {
            self.emit(buffer.readSlice(length: buffer.readableBytes)!, context: context)
        }
        return .needMoreData
    }

    private func emit(_ line: ByteBuffer, context: ChannelHandlerContext) {
        var line = line
        if line.readableBytesView.last == UInt8(ascii: "\r") {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        context.fireChannelRead(Self.wrapInboundOut(.line(line)))
    }

    private mutating func overflow(context: ChannelHandlerContext, buffer: inout ByteBuffer) {
        self.overflowed = true
        buffer.moveReaderIndex(to: buffer.writerIndex)
        context.fireChannelRead(Self.wrapInboundOut(.tooLong))
    }
}
