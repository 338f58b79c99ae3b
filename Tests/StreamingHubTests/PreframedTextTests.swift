import NIOCore
import StreamingHub
import Testing

@Suite("Pre-framed WebSocket text")
struct PreframedTextTests {
    func preframed(_ length: Int) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: length + PreframedText.headroom)
        PreframedText.reserveHeadroom(in: &buffer)
        buffer.writeRepeatingByte(UInt8(ascii: "x"), count: length)
        PreframedText.writeHeader(into: &buffer)
        return buffer
    }

    @Test(
        "the header is RFC 6455's for a final unmasked text frame, at each length boundary",
        arguments: [
            (0, [0x81, 0x00]), (125, [0x81, 125]), (126, [0x81, 126, 0x00, 126]), (65_535, [0x81, 126, 0xFF, 0xFF]),
            (65_536, [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] as [(Int, [UInt8])]
    )
    func headers(length: Int, header: [UInt8]) throws {
        let payload = self.preframed(length)
        #expect(payload.readableBytes == length, "readers of the payload do not see the header")
        let frame = try #require(PreframedText.frame(of: payload))
        #expect(Array(frame.readableBytesView.prefix(header.count)) == header)
        #expect(frame.readableBytes == header.count + length)
    }

    @Test("a buffer without a header is not mistaken for one")
    func withoutHeader() {
        #expect(PreframedText.frame(of: ByteBuffer(string: "plain")) == nil)
        var skipped = ByteBuffer(string: "ab{}")
        skipped.moveReaderIndex(forwardBy: 2)
        #expect(PreframedText.frame(of: skipped) == nil, "bytes in front that are not a header")
        var shortened = self.preframed(20)
        shortened.moveWriterIndex(to: shortened.writerIndex - 1)
        #expect(PreframedText.frame(of: shortened) == nil, "a header whose length does not match")
        #expect(PreframedText.frame(of: self.preframed(20).getSlice(at: 10, length: 20)!) == nil, "a slice has no headroom")
    }
}
