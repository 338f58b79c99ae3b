import MarketData
import NIOCore
import Testing
import TickRecording
import WireJSON

#if canImport(Glibc)
import Glibc
#endif

/// A tick with every field set, the book included, so a lost field fails the comparison.
func fullTick(_ mode: SubscriptionMode, symbol: String = "RELIANCE", seed: Double = 0) -> Tick {
    var tick = Tick(instrument: Instrument(exchange: "NSE", symbol: symbol), mode: mode)
    tick.ltp = 2500.55 + seed
    tick.lastTradeTime = 1_764_224_700_123
    tick.timestamp = 1_764_224_700_456
    tick.open = 2490.1
    tick.high = 2512.35
    tick.low = 2481.0
    tick.close = 2495.0
    tick.volume = 12_345_678
    tick.lastQuantity = 25
    tick.averagePrice = 2501.123456
    tick.totalBuyQuantity = 456_789
    tick.totalSellQuantity = 345_678
    tick.bid = 2500.5
    tick.ask = 2500.6
    tick.bidQuantity = 120
    tick.askQuantity = 80
    tick.openInterest = 9_876_543
    tick.previousOpenInterest = 9_800_000
    tick.upperCircuit = 2744.5
    tick.lowerCircuit = 2245.5
    tick.change = 5.55
    tick.changePercent = 0.2224448897795591
    tick.depth = MarketDepth(
        buy: (0..<5).map { DepthLevel(price: 2500.5 - Double($0) * 0.05, quantity: Int64(100 + $0), orders: Int64($0 + 1)) },
        sell: (0..<5).map { DepthLevel(price: 2500.6 + Double($0) * 0.05, quantity: Int64(200 + $0), orders: Int64($0 + 2)) }
    )
    return tick
}

/// A scratch directory removed at the end of the test.
final class ScratchDirectory {
    let path: String

    init() {
        var template = Array("/tmp/oa-recording-XXXXXX".utf8CString)
        self.path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    deinit {
        var matches = glob_t()
        if glob(self.path + "/*", 0, nil, &matches) == 0 {
            for index in 0..<Int(matches.gl_pathc) { unlink(matches.gl_pathv[index]!) }
        }
        globfree(&matches)
        rmdir(self.path)
    }

    func contents(_ name: String) -> [UInt8] {
        let descriptor = open(self.path + "/" + name, O_RDONLY)
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let got = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if got <= 0 { return bytes }
            bytes += chunk[0..<got]
        }
    }

    func write(_ name: String, _ bytes: [UInt8]) {
        let descriptor = open(self.path + "/" + name, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
    }
}

private func line(_ record: TickRecord) -> ByteBuffer {
    var buffer = ByteBufferAllocator().buffer(capacity: 1024)
    TickRecordFormat.write(record, into: &buffer)
    return buffer
}

@Suite struct TickRecordFormatTests {
    @Test(arguments: SubscriptionMode.allCases)
    func everyFieldRoundTrips(mode: SubscriptionMode) throws {
        let record = TickRecord(receivedAt: 1_764_224_700_456_789_012, tick: fullTick(mode))
        var encoded = line(record)
        #expect(encoded.readableBytesView.last == UInt8(ascii: "\n"))
        #expect(encoded.readableBytesView.dropLast().contains(UInt8(ascii: "\n")) == false)
        let decoded = try TickRecordFormat.read(encoded.readSlice(length: encoded.readableBytes - 1)!)
        #expect(decoded == record)
    }

    @Test func fieldsAFeedPassedThroughRoundTripUnchanged() throws {
        // What the ZeroMQ feed keeps of an adapter's body: an integer timestamp beyond 64 bits,
        // adapter-specific keys, nested values, in the adapter's order.
        let adapterFields = try #require(
            try JSONParser.parse(#"{"timestamp":1764224700456789012345678,"ltq":25,"exchange_ts":"09:15:00","flags":[1,{"a":null}]}"#).objectValue
        )
        var tick = fullTick(.quote)
        tick.timestamp = nil
        tick.extraFields = adapterFields.entries.map { Tick.ExtraField(key: $0.key, value: $0.value) }
        let record = TickRecord(receivedAt: 7, tick: tick)
        var encoded = line(record)
        let text = String(buffer: encoded)
        #expect(text.hasSuffix(#","extra":{"timestamp":1764224700456789012345678,"ltq":25,"exchange_ts":"09:15:00","flags":[1,{"a":null}]}}"# + "\n"))
        #expect(try TickRecordFormat.read(encoded.readSlice(length: encoded.readableBytes - 1)!) == record)
        #expect(throws: TickRecordingError.self) {
            try TickRecordFormat.read(ByteBuffer(string: #"{"recv_ns":5,"exchange":"NSE","symbol":"SBIN","mode":2,"extra":[1]}"#))
        }
    }

    @Test func aTickWithOnlyAPriceStaysSparse() throws {
        var tick = Tick(instrument: Instrument(exchange: "NSE_INDEX", symbol: "NIFTY_50"), mode: .ltp)
        tick.ltp = 24_000
        let record = TickRecord(receivedAt: 1, tick: tick)
        var encoded = line(record)
        let text = encoded.readString(length: encoded.readableBytes)!
        #expect(text == "{\"recv_ns\":1,\"exchange\":\"NSE_INDEX\",\"symbol\":\"NIFTY_50\",\"mode\":1,\"ltp\":24000.0}\n")
        var again = line(record)
        #expect(try TickRecordFormat.read(again.readSlice(length: again.readableBytes - 1)!) == record)
    }

    @Test func unknownKeysAreSkippedAndBadLinesRefused() throws {
        let known = try TickRecordFormat.read(
            ByteBuffer(string: "{\"recv_ns\":5,\"exchange\":\"NSE\",\"symbol\":\"SBIN\",\"mode\":2,\"ltp\":800.5,\"vendor_field\":[1,2]}")
        )
        #expect(known.tick.ltp == 800.5)
        #expect(known.receivedAt == 5)
        #expect(throws: TickRecordingError.self) { try TickRecordFormat.read(ByteBuffer(string: "{\"exchange\":\"NSE\"}")) }
        #expect(throws: TickRecordingError.self) {
            try TickRecordFormat.read(ByteBuffer(string: "{\"recv_ns\":5,\"exchange\":\"NSE\",\"symbol\":\"SBIN\",\"mode\":2,\"ltp\":\"x\"}"))
        }
    }
}

@Suite struct TickRecordFileTests {
    /// 2026-11-27 23:59:59.5 UTC and half a second later, the next day.
    static let lateOnDayOne: Int64 = 1_795_823_999_500_000_000
    static let earlyOnDayTwo: Int64 = 1_795_824_000_000_000_000

    @Test func filesRotateOnTheUTCDayOfTheReceiveTime() throws {
        let scratch = ScratchDirectory()
        let writer = try TickRecordWriter(output: scratch.path + "/ticks.jsonl", now: Self.lateOnDayOne)
        let records = [
            TickRecord(receivedAt: Self.lateOnDayOne, tick: fullTick(.depth)),
            TickRecord(receivedAt: Self.lateOnDayOne + 1, tick: fullTick(.quote, symbol: "SBIN")),
            TickRecord(receivedAt: Self.earlyOnDayTwo, tick: fullTick(.ltp, symbol: "INFY")),
        ]
        for record in records { try writer.append(record) }
        try writer.close()
        #expect(writer.summary.files == [scratch.path + "/ticks-2026-11-27.jsonl", scratch.path + "/ticks-2026-11-28.jsonl"])
        #expect(writer.summary.records == 3)
        #expect(try TickRecordReader.readAll(scratch.path + "/ticks-2026-11-27.jsonl") == Array(records[0..<2]))
        #expect(try TickRecordReader.readAll(scratch.path + "/ticks-2026-11-28.jsonl") == [records[2]])
        // The output path names the whole rotated set, in day order.
        #expect(try TickRecordReader.readAll(scratch.path + "/ticks.jsonl") == records)
        #expect(try TickRecordReader.countLines(try RecordingFiles.resolve(scratch.path + "/ticks.jsonl")) == 3)
    }

    @Test func dayNamesFollowTheCalendar() {
        #expect(RecordingDay(epochNanoseconds: 0).description == "1970-01-01")
        #expect(RecordingDay(epochNanoseconds: 951_782_400 * 1_000_000_000).description == "2000-02-29")
        #expect(RecordingDay(epochNanoseconds: Self.earlyOnDayTwo - 1).description == "2026-11-27")
        #expect(RecordingTime.iso8601(epochNanoseconds: Self.lateOnDayOne) == "2026-11-27T23:59:59.500Z")
        // The ends of the range: Int64.min overflowed working out the time of day (a replay's status trapped on it).
        #expect(RecordingTime.iso8601(epochNanoseconds: .min) == "1677-09-21T00:12:43.145Z")
        #expect(RecordingTime.iso8601(epochNanoseconds: .max) == "2262-04-11T23:47:16.854Z")
        #expect(RecordingFileName(output: "/data/ticks").path(forDay: RecordingDay(epochNanoseconds: 0)) == "/data/ticks-1970-01-01.jsonl")
        #expect(RecordingFileName(output: "a.b/ticks.gz.jsonl").path(forDay: RecordingDay(epochNanoseconds: 0)) == "a.b/ticks.gz-1970-01-01.jsonl")
    }

    @Test func aLineCutShortIsSkippedAndReportedAndAppendingStartsAFreshLine() throws {
        let scratch = ScratchDirectory()
        let records = (0..<3).map { TickRecord(receivedAt: Self.lateOnDayOne + Int64($0), tick: fullTick(.depth, seed: Double($0))) }
        var bytes: [UInt8] = []
        for record in records { bytes += line(record).readableBytesView }
        let cut = Array(bytes.dropLast(40))
        scratch.write("ticks-2026-11-27.jsonl", cut)
        let reader = try TickRecordReader(recording: scratch.path + "/ticks.jsonl")
        var read: [TickRecord] = []
        while let record = try reader.next() { read.append(record) }
        #expect(read == Array(records[0..<2]))
        #expect(reader.partialLines == 1)
        #expect(reader.skippedLines == 0)

        let writer = try TickRecordWriter(output: scratch.path + "/ticks.jsonl", now: Self.lateOnDayOne)
        try writer.append(records[2])
        try writer.close()
        let reopened = try TickRecordReader(recording: scratch.path + "/ticks.jsonl")
        var after: [TickRecord] = []
        while let record = try reopened.next() { after.append(record) }
        #expect(after == records)
        #expect(reopened.skippedLines == 1, "the cut line, now closed by a newline, is one bad line")
        #expect(reopened.partialLines == 0)
    }

    @Test func theSinkWritesOnItsThreadAndFlushesOnStop() async throws {
        let scratch = ScratchDirectory()
        let now = WallClock.epochNanoseconds()
        let sink = TickRecordingSink(writer: try TickRecordWriter(output: scratch.path + "/sink.jsonl", now: now))
        let ticks = (0..<5000).map { fullTick($0 % 2 == 0 ? .depth : .quote, seed: Double($0)) }
        for (offset, tick) in ticks.enumerated() { sink.append(tick, receivedAt: now + Int64(offset)) }
        let progress = await sink.stop()
        #expect(progress.records == 5000)
        #expect(progress.failure == nil)
        let read = try TickRecordReader.readAll(scratch.path + "/sink.jsonl")
        #expect(read.map(\.tick) == ticks)
        #expect(progress.bytes == scratch.contents(String(progress.files[0].split(separator: "/").last!)).count)
    }
}
