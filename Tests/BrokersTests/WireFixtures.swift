import MarketData
import NIOCore

/// The tick's wire `data` object, as the agent sends it to clients.
func dataJSON(_ tick: Tick) -> String {
    var buffer = ByteBufferAllocator().buffer(capacity: 512)
    MarketDataEnvelope.writeData(of: tick, into: &buffer)
    return String(buffer: buffer)
}

/// The reference's fixed clock, 1700000000.123 s, as epoch milliseconds.
let referenceClock: Int64 = 1_700_000_000_123
