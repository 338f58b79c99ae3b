import NIOCore
import NIOEmbedded
import Testing

@testable import LocalIPCServer

@Suite("JSON line decoder")
struct LineDecoderTests {
    private func lines(_ chunks: [String], limit: Int = 64, eof: Bool = false) throws -> [String] {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(JSONLineDecoder(maximumLineBytes: limit)))
        for chunk in chunks {
            try channel.writeInbound(channel.allocator.buffer(string: chunk))
        }
        if eof { try channel.close().wait() }
        var result: [String] = []
        while let frame = try channel.readInbound(as: JSONLineFrame.self) {
            switch frame {
            case .line(let buffer): result.append(String(buffer: buffer))
            case .tooLong: result.append("<too long>")
            }
        }
        return result
    }

    @Test("splits on newlines across reads and drops a trailing carriage return")
    func splits() throws {
        #expect(try self.lines(["{\"a\":1}\n{\"b\"", ":2}\r\n", "\n"]) == ["{\"a\":1}", "{\"b\":2}", ""])
    }

    @Test("a last line without a newline still counts at the end of input")
    func lastLine() throws {
        #expect(try self.lines(["{\"a\":1}\n{\"b\":2}"], eof: true) == ["{\"a\":1}", "{\"b\":2}"])
    }

    @Test("a line longer than the limit is reported once and nothing after it is decoded")
    func tooLong() throws {
        let long = String(repeating: "x", count: 65)
        #expect(try self.lines(["{\"ok\":1}\n", long, "\n{\"next\":1}\n"]) == ["{\"ok\":1}", "<too long>"])
        #expect(try self.lines([String(repeating: "y", count: 64) + "\n"]) == [String(repeating: "y", count: 64)])
    }
}
