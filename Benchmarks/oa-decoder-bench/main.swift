import AngelOneFeed
import CAllocationCounter
import DhanFeed
import MarketData
import NIOCore
import OpenAlgoBusFeed
import ZeroMQ
import ZerodhaFeed

#if canImport(Glibc)
import Glibc
#endif

/// Decodes and normalises realistic frames of each broker in a loop and reports packets per second
/// and allocation calls per packet. Frames are built from the documented layouts, as in the tests.
struct Bytes {
    var bytes: [UInt8] = []
    let bigEndian: Bool

    mutating func put<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: self.bigEndian ? value.bigEndian : value.littleEndian) { self.bytes.append(contentsOf: $0) }
    }

    mutating func zeros(_ count: Int) { self.bytes += repeatElement(0, count: count) }
}

func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// A Kite frame of 10 full packets (the Depth case), as Kite batches ticks of one second.
func zerodhaFrame() -> ByteBuffer {
    var frame = Bytes(bigEndian: true)
    frame.put(UInt16(10))
    for index in 0..<10 {
        frame.put(UInt16(184))
        frame.put(UInt32(738_561 + 256 * UInt32(index)))
        for field in 0..<15 { frame.put(UInt32(250_000 + field)) }
        for level in 0..<10 {
            frame.put(UInt32(100 + level))
            frame.put(UInt32(250_000 + 5 * level))
            frame.put(UInt16(level + 1))
            frame.zeros(2)
        }
    }
    return ByteBuffer(bytes: frame.bytes)
}

/// An Angel SnapQuote packet (one per frame).
func angelFrame() -> ByteBuffer {
    var packet = Bytes(bigEndian: false)
    packet.put(UInt8(3))
    packet.put(UInt8(1))
    packet.bytes += Array("2885".utf8)
    packet.zeros(21)
    packet.put(Int64(1))
    packet.put(Int64(1_700_000_000_000))
    for field in 0..<4 { packet.put(Int64(250_000 + field)) }
    packet.put(Double(50_000).bitPattern)
    packet.put(Double(60_000).bitPattern)
    for field in 0..<6 { packet.put(Int64(250_000 + field)) }  // OHLC, last trade time, OI
    packet.put(Double(0).bitPattern)
    for level in 0..<10 {
        packet.put(UInt16(level < 5 ? 1 : 0))
        packet.put(Int64(100 + level))
        packet.put(Int64(250_000 + 5 * level))
        packet.put(UInt16(level + 1))
    }
    for field in 0..<4 { packet.put(Int64(270_000 + field)) }
    return ByteBuffer(bytes: packet.bytes)
}

/// A Dhan frame of 10 Full packets back to back.
func dhanFrame() -> ByteBuffer {
    var frame = Bytes(bigEndian: false)
    for index in 0..<10 {
        frame.put(UInt8(8))
        frame.put(UInt16(162))
        frame.put(UInt8(1))
        frame.put(UInt32(2885 + index))
        frame.put(Float(2500.5).bitPattern)
        frame.put(UInt16(10))
        for _ in 0..<5 { frame.put(UInt32(1_700_000_000)) }
        for _ in 0..<3 { frame.put(UInt32(4321)) }
        for _ in 0..<4 { frame.put(Float(2500.25).bitPattern) }
        for level in 0..<5 {
            frame.put(UInt32(100 + level))
            frame.put(UInt32(200 + level))
            frame.put(UInt16(1))
            frame.put(UInt16(2))
            frame.put(Float(2500 - Float(level) / 4).bitPattern)
            frame.put(Float(2501 + Float(level) / 4).bitPattern)
        }
    }
    return ByteBuffer(bytes: frame.bytes)
}

struct Result {
    var broker: String
    var mode: String
    var packets: Int
    var seconds: Double
    var allocations: Int

    var packetsPerSecond: Double { Double(self.packets) / self.seconds }
    var allocationsPerPacket: Double { Double(self.allocations) / Double(self.packets) }
}

/// `oa-decoder-bench [CASE [FRAMES]]`: only the cases whose name contains CASE (`zmq-depth`), each
/// with FRAMES frames instead of its default, so that callgrind can count one case's instructions.
let caseFilter = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : ""
let framesOverride = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) : nil

func measure(_ broker: String, mode: String = "depth", frames: Int, _ body: () throws -> Int) rethrows -> Result? {
    guard caseFilter.isEmpty || broker.contains(caseFilter) else { return nil }
    let frames = framesOverride ?? frames
    _ = try body()  // warm up
    let allocationsBefore = oa_allocation_count()
    let start = now()
    var packets = 0
    for _ in 0..<frames { packets += try body() }
    let seconds = now() - start
    return Result(broker: broker, mode: mode, packets: packets, seconds: seconds, allocations: Int(oa_allocation_count() - allocationsBefore))
}

/// Messages as OpenAlgo's Angel adapter publishes them on the ZeroMQ bus (`json.dumps` of its
/// normalised dict), for the `zmq` feed: an LTP body, a Quote body (as `zmq-ingest.py` sends) and
/// a Depth body of about 850 bytes with five levels a side.
func zeroMQMessages() -> [(mode: String, topic: ByteBuffer, body: ByteBuffer)] {
    func levels(_ base: Double, _ step: Double) -> String {
        (0..<5).map { #"{"price": \#(base + step * Double($0)), "quantity": \#(50 * ($0 + 1)), "orders": \#($0 + 2)}"# }.joined(separator: ", ")
    }
    let ltp = #"{"ltp": 1424.05, "ltt": 1746171226000, "symbol": "RELIANCE", "exchange": "NSE", "mode": 1, "timestamp": 1795737969836}"#
    let quote = """
        {"ltp": 1424.05, "ltt": 1746171226000, "volume": 100000, "open": 1415.0, "high": 1432.5, "low": 1408.0, "close": 1418.0, \
        "last_quantity": 50, "average_price": 1420.12, "total_buy_quantity": 5000, "total_sell_quantity": 7000, "symbol": "RELIANCE", \
        "exchange": "NSE", "mode": 2, "timestamp": 1795737969836}
        """
    let depth = """
        {"ltp": 1424.05, "ltt": 1746171226000, "volume": 100000, "open": 1415.0, "high": 1432.5, "low": 1408.0, "close": 1418.0, \
        "last_quantity": 50, "oi": 0, "upper_circuit": 1560.0, "lower_circuit": 1276.0, "depth": {"buy": [\(levels(1423.9, -0.05))], \
        "sell": [\(levels(1424.1, 0.05))]}, "symbol": "RELIANCE", "exchange": "NSE", "mode": 3, "timestamp": 1795737969836}
        """
    return [
        ("ltp", ByteBuffer(string: "NSE_RELIANCE_LTP"), ByteBuffer(string: ltp)),
        ("quote", ByteBuffer(string: "NSE_RELIANCE_QUOTE"), ByteBuffer(string: quote)),
        ("depth", ByteBuffer(string: "NSE_RELIANCE_DEPTH"), ByteBuffer(string: depth)),
    ]
}

/// The `zmq` feed's thread for one message: the Quote message received from a SUB socket into the
/// reused `ZeroMQMessage` and decoded, as `ZeroMQFeed` does. A PUB socket sends it on the same
/// thread over `inproc`, so the figures include libzmq's send and its one allocation (the copy of a
/// body longer than 33 bytes into a message).
@MainActor
func measureZeroMQSocket(frames: Int) throws -> Result? {
    guard caseFilter.isEmpty || "zmq-socket".contains(caseFilter) else { return nil }
    let quote = zeroMQMessages()[1]
    let context = try ZeroMQContext()
    let publisher = try ZeroMQSocket(context: context, kind: .publisher)
    let subscriber = try ZeroMQSocket(context: context, kind: .subscriber)
    defer {
        publisher.close()
        subscriber.close()
    }
    try publisher.setLinger(milliseconds: 0)
    try subscriber.setLinger(milliseconds: 0)
    try subscriber.subscribe()
    try publisher.bind("inproc://oa-decoder-bench")
    try subscriber.connect("inproc://oa-decoder-bench")
    let sent = [Array(quote.topic.readableBytesView), Array(quote.body.readableBytesView)]
    var message = ZeroMQMessage()
    var decoder = ZeroMQBusDecoder()
    // The subscription reaches the PUB socket with its next send; until then it drops messages.
    var received = false
    while !received {
        try publisher.send(sent)
        received = try subscriber.receive(into: &message, wait: false)
    }
    return try measure("zmq-socket", mode: "quote", frames: frames) {
        try publisher.send(sent)
        guard try subscriber.receive(into: &message, wait: false), case .tick(let tick) = decoder.decode(message) else { return 0 }
        checksum += tick.ltp ?? 0
        return 1
    }
}

let instrument = Instrument(exchange: "NSE", symbol: "RELIANCE")
var checksum = 0.0
let kite = zerodhaFrame()
let angel = angelFrame()
let dhan = dhanFrame()

let results = try
    ([
        measure("zerodha", frames: 200_000) {
            var count = 0
            for packet in try ZerodhaTickDecoder.decode(frame: kite) {
                checksum += ZerodhaTickNormalizer.tick(from: packet, instrument: instrument, mode: .depth, receivedAt: 0).ltp ?? 0
                count += 1
            }
            return count
        },
        measure("angel", frames: 2_000_000) {
            let packet = try AngelOneTickDecoder.decode(frame: angel)
            checksum += AngelOneTickNormalizer.tick(from: packet, instrument: instrument, mode: .depth, receivedAt: 0).ltp ?? 0
            return 1
        },
        measure("dhan", frames: 200_000) {
            var count = 0
            for packet in try DhanTickDecoder.decode(frame: dhan) {
                checksum += DhanTickNormalizer.tick(from: packet, instrument: instrument, mode: .depth, receivedAt: 0)?.ltp ?? 0
                count += 1
            }
            return count
        },
    ]
    + zeroMQMessages().map { message in
        measure("zmq-\(message.mode)", mode: message.mode, frames: 200_000) {
            guard case .tick(let tick) = ZeroMQBusDecoder.decode(topic: message.topic, body: message.body) else { return 0 }
            checksum += tick.ltp ?? 0
            return 1
        }
    } + [try measureZeroMQSocket(frames: 200_000)]).compactMap { $0 }

for result in results {
    print(
        "{\"broker\": \"\(result.broker)\", \"mode\": \"\(result.mode)\", \"packets\": \(result.packets), \"seconds\": \(result.seconds), "
            + "\"packets_per_second\": \(Int(result.packetsPerSecond)), \"allocations_per_packet\": \(result.allocationsPerPacket)}"
    )
}
print("")
print("broker     packets     packets/s   ns/packet  allocations/packet")
for result in results {
    let name = result.broker + String(repeating: " ", count: max(0, 9 - result.broker.count))
    print("\(name)  \(result.packets)  \(Int(result.packetsPerSecond))  \(Int(1e9 / result.packetsPerSecond))  \(result.allocationsPerPacket)")
}
print("(checksum \(checksum))")
