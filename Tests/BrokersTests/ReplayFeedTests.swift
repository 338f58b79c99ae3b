import BrokerKit
import Brokers
import Logging
import MarketData
import ReplayFeed
import Testing
import TickRecording
import WireJSON

#if canImport(Glibc)
import Glibc
#endif

@Suite("The replay feed")
struct ReplayFeedTests {
    /// A recording of `count` ticks alternating between RELIANCE and SBIN, `gap` nanoseconds apart.
    static func writeRecording(count: Int, gap: Int64 = 1_000_000) throws -> (path: String, records: [TickRecord]) {
        var template = Array("/tmp/oa-replay-XXXXXX".utf8CString)
        let directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        let start = WallClock.epochNanoseconds()
        let records = (0..<count).map { index -> TickRecord in
            var tick = Tick(instrument: Instrument(exchange: "NSE", symbol: index % 2 == 0 ? "RELIANCE" : "SBIN"), mode: .quote)
            tick.ltp = 100 + Double(index) / 20
            tick.volume = Int64(index)
            tick.timestamp = 1_764_224_700_000 + Int64(index)
            return TickRecord(receivedAt: start + Int64(index) * gap, tick: tick)
        }
        let writer = try TickRecordWriter(output: directory + "/ticks.jsonl", now: start)
        for record in records { try writer.append(record) }
        try writer.close()
        return (directory + "/ticks.jsonl", records)
    }

    static func feed(_ path: String, speed: String, loop: Bool = false) throws -> ReplayFeed {
        let settings = BrokerSettings(["file": path, "speed": speed, "loop": loop ? "true" : "false"])
        return try ReplayFeed(configuration: try ReplayConfiguration(settings), logger: Logger(label: "replay-test"))
    }

    static func waitUntil(_ condition: () -> Bool) async throws {
        for _ in 0..<1000 where !condition() {
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    static func detail(_ feed: ReplayFeed) -> JSONObject {
        feed.statusDetail?.value.objectValue ?? JSONObject()
    }

    @Test("waits for the first subscription, then plays every record of the subscribed instruments, in order")
    func startsWithTheFirstSubscription() async throws {
        let (path, records) = try Self.writeRecording(count: 40)
        let feed = try Self.feed(path, speed: "max")
        let sink = RecordingSink()
        try await feed.connect(sink: sink)
        try await Task.sleep(for: .milliseconds(150))
        #expect(sink.receivedTicks.isEmpty)
        #expect(Self.detail(feed)["state"] == "waiting for the first subscription")
        let outcomes = await feed.subscribe([Instrument(exchange: "NSE", symbol: "RELIANCE")], mode: .quote, depth: 5)
        #expect(outcomes == [.subscribed(actualDepth: nil)])
        try await Self.waitUntil { Self.detail(feed)["state"] == "finished" }
        let expected = records.map(\.tick).filter { $0.instrument.symbol == "RELIANCE" }
        #expect(sink.receivedTicks == expected)
        let detail = Self.detail(feed)
        #expect(detail["record"] == 40 && detail["records"] == 40 && detail["delivered"] == 20)
        #expect(detail["recorded_at_ns"] == .int(records[39].receivedAt) && detail["speed"] == "max")
        await feed.disconnect()
    }

    @Test("--loop plays the recording again and counts the passes")
    func loops() async throws {
        let (path, records) = try Self.writeRecording(count: 10)
        let feed = try Self.feed(path, speed: "max", loop: true)
        let sink = RecordingSink()
        try await feed.connect(sink: sink)
        _ = await feed.subscribe(
            [Instrument(exchange: "NSE", symbol: "RELIANCE"), Instrument(exchange: "NSE", symbol: "SBIN")],
            mode: .quote,
            depth: 5
        )
        try await Self.waitUntil { (Self.detail(feed)["loops_completed"]?.intValue ?? 0) >= 3 }
        #expect((Self.detail(feed)["loops_completed"]?.intValue ?? 0) >= 3)
        await feed.disconnect()
        let received = sink.receivedTicks
        #expect(received.count >= 30)
        #expect(Array(received[0..<10]) == records.map(\.tick) && Array(received[10..<20]) == records.map(\.tick))
        #expect(Self.detail(feed)["state"] == "stopped" && Self.detail(feed)["loop"] == true)
    }

    @Test("keeps the recorded gaps divided by the speed (loosely: 10× takes under half the recorded span)")
    func speed() async throws {
        // 41 records 100 ms apart: a four-second span, 0.4 s at 10×; the bound leaves a busy
        // machine five times that.
        let (path, _) = try Self.writeRecording(count: 41, gap: 100_000_000)
        let feed = try Self.feed(path, speed: "10")
        let sink = RecordingSink()
        try await feed.connect(sink: sink)
        let started = ContinuousClock.now
        _ = await feed.subscribe(
            [Instrument(exchange: "NSE", symbol: "RELIANCE"), Instrument(exchange: "NSE", symbol: "SBIN")],
            mode: .quote,
            depth: 5
        )
        try await Self.waitUntil { Self.detail(feed)["state"] == "finished" }
        let elapsed = ContinuousClock.now - started
        #expect(sink.receivedTicks.count == 41)
        #expect(elapsed >= .milliseconds(390), "10× of a 4 s span sleeps at least 0.4 s")
        #expect(elapsed < .seconds(2), "10× of a 4 s span took \(elapsed)")
        await feed.disconnect()
    }

    @Test("a record received before the first plays at once: a recv_ns of Int64.min no longer traps the player")
    func receiveTimeOutOfRange() async throws {
        let (path, _) = try Self.writeRecording(count: 0)
        let lines = [
            #"{"recv_ns":1795760624794159460,"exchange":"NSE","symbol":"RELIANCE","mode":1,"ltp":1.5}"#,
            #"{"recv_ns":-9223372036854775808,"exchange":"NSE","symbol":"RELIANCE","mode":1,"ltp":2.5}"#,
            #"{"recv_ns":1795760624795159460,"exchange":"NSE","symbol":"RELIANCE","mode":1,"ltp":3.5}"#,
        ]
        let file = try #require(fopen(path, "w"))
        fputs(lines.joined(separator: "\n") + "\n", file)
        fclose(file)
        let feed = try Self.feed(path, speed: "1")
        let sink = RecordingSink()
        try await feed.connect(sink: sink)
        _ = await feed.subscribe([Instrument(exchange: "NSE", symbol: "RELIANCE")], mode: .ltp, depth: 5)
        try await Self.waitUntil { Self.detail(feed)["state"] == "finished" }
        #expect(sink.receivedTicks.map(\.ltp) == [1.5, 2.5, 3.5])
        #expect(Self.detail(feed)["state"] == "finished")
        await feed.disconnect()
    }

    @Test(
        "a record's due time is the recorded gap over the speed, clamped: far apart, out of order or at 1e-12×, nothing traps",
        arguments: [
            (Int64(2_000_000), Int64(1_000_000), 0.5, Int64(102_000_000)),
            (Int64.min, Int64(1_000_000), 1.0, Int64(100_000_000)),
            (Int64.max, Int64.min, 1.0, Int64.max),
            (Int64(1_001_000_000), Int64(1_000_000), 1e-12, Int64.max),
            (Int64.max, Int64(0), 1e-12, Int64.max),
        ]
    )
    func dueTimes(receivedAt: Int64, firstRecorded: Int64, factor: Double, due: Int64) {
        #expect(ReplaySchedule.due(receivedAt, firstRecorded: firstRecorded, startedAt: 100_000_000, factor: factor) == due)
    }

    @Test("settings: file is required, speed is a factor or max, and the recording must exist")
    func settings() throws {
        #expect(throws: BrokerConfigurationError.self) { try ReplayConfiguration(BrokerSettings()) }
        #expect(throws: BrokerConfigurationError.self) { try ReplayConfiguration(BrokerSettings(["file": "/x", "speed": "fast"])) }
        #expect(throws: BrokerConfigurationError.self) { try ReplayConfiguration(BrokerSettings(["file": "/x", "speed": "0"])) }
        #expect(
            try ReplayConfiguration(BrokerSettings(["file": "/x", "speed": "10x", "loop": "yes"]))
                == .init(file: "/x", speed: .factor(10), loop: true)
        )
        #expect(try ReplayConfiguration(BrokerSettings(["file": "/x", "speed": "MAX"])).speed == .maximum)
        #expect(throws: BrokerConfigurationError.self) { try Self.feed("/tmp/oa-no-such-recording.jsonl", speed: "1") }
        #expect(BrokerRegistry.supportedBrokers.contains("replay"))
    }
}
