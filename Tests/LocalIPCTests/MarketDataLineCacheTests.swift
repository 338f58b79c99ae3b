import NIOCore
import Testing

@testable import LocalIPCServer

@Suite("Market-data line cache")
struct MarketDataLineCacheTests {
    @Test("the frame every client of a tick gets is wrapped once; another frame gets its own line")
    func sharesOneLinePerFrame() {
        var cache = MarketDataLineCache()
        let allocator = ByteBufferAllocator()
        let frame = ByteBuffer(string: #"{"type": "market_data", "symbol": "SBIN"}"#)
        let first = cache.line(for: frame, allocator: allocator)
        #expect(String(buffer: first) == #"{"jsonrpc":"2.0","method":"market_data","params":{"type": "market_data", "symbol": "SBIN"}}"# + "\n")
        let again = cache.line(for: frame, allocator: allocator)
        let firstStart = first.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(again.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == firstStart, "the same storage, not a copy")

        let sameText = ByteBuffer(string: #"{"type": "market_data", "symbol": "SBIN"}"#)
        let other = cache.line(for: sameText, allocator: allocator)
        #expect(other == first)
        #expect(other.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } != firstStart, "another frame is wrapped anew")
        let next = cache.line(for: ByteBuffer(string: #"{"symbol": "TCS"}"#), allocator: allocator)
        #expect(String(buffer: next).contains(#""params":{"symbol": "TCS"}}"#))
    }
}
