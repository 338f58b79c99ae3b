import Logging
import MarketData
import NIOCore
import NIOPosix
import ReplayFeed
import StreamingHub
import TickRecording

#if canImport(Glibc)
import Glibc
#endif

/// Measures recording and replay: what a recording costs the hub's loop per tick, how fast the
/// writer thread writes and how many bytes a tick takes, how fast a recording reads back, and how
/// fast the replay feed plays into a real hub at `max` speed.
func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// Simulator-like ticks with every field: five levels a side in Depth, none in Quote. Prices are
/// whole paise, as brokers send them (the writer's fast path; other doubles take Python's repr).
func ticks(_ mode: SubscriptionMode, count: Int) -> [Tick] {
    (0..<count).map { index in
        var tick = Tick(
            instrument: Instrument(exchange: index % 2 == 0 ? "NSE" : "NFO", symbol: index % 2 == 0 ? "RELIANCE" : "NIFTY28DEC2425000CE"),
            mode: mode
        )
        let paise = 250_000 + 5 * (index % 400)
        let price = Double(paise) / 100
        tick.ltp = price
        tick.lastTradeTime = 1_795_760_624_794 + Int64(index)
        tick.timestamp = 1_795_760_624_794 + Int64(index)
        tick.open = 2490.1
        tick.high = 2512.35
        tick.low = 2481
        tick.close = 2495
        tick.volume = 1_000_000 + Int64(index)
        tick.lastQuantity = 25
        tick.averagePrice = 2501.15
        tick.totalBuyQuantity = 456_789
        tick.totalSellQuantity = 345_678
        tick.bid = Double(paise - 5) / 100
        tick.ask = Double(paise + 5) / 100
        tick.bidQuantity = 120
        tick.askQuantity = 80
        tick.upperCircuit = 2744.5
        tick.lowerCircuit = 2245.5
        if index % 2 == 1 {
            tick.openInterest = 9_876_543
            tick.previousOpenInterest = 9_800_000
        }
        if mode == .depth {
            var buy: [DepthLevel] = []
            var sell: [DepthLevel] = []
            for level in 0..<5 {
                let offset = 5 * (level + 1)
                buy.append(DepthLevel(price: Double(paise - offset) / 100, quantity: Int64(100 + 37 * level), orders: Int64(level + 3)))
                sell.append(DepthLevel(price: Double(paise + offset) / 100, quantity: Int64(200 + 41 * level), orders: Int64(level + 2)))
            }
            tick.depth = MarketDepth(buy: buy, sell: sell)
        }
        return tick
    }
}

/// Counts the frames the hub delivers.
final class CountingSubscriber: MarketDataSubscriber {
    let subscriberID: SubscriberID
    var frames = 0

    init(id: SubscriberID) {
        self.subscriberID = id
    }

    func enqueue(_ frame: ByteBuffer, instrument: Instrument, mode: SubscriptionMode) -> Bool {
        self.frames += 1
        return false
    }

    func flushEnqueued() {}

    func describe() -> SubscriberDescription {
        SubscriberDescription(kind: .ipc, peer: "bench", connectedAt: 0, queuedBytes: 0, droppedFrames: 0)
    }
}

/// Forwards the hub's requests to the replay feed.
struct ReplayControl: FeedControl {
    let feed: ReplayFeed
    let sink: any FeedEventSink

    func start(_ request: FeedStartRequest) async -> Result<Void, FeedStartFailure> {
        do {
            try await self.feed.connect(sink: self.sink)
            return .success(())
        } catch {
            return .failure(FeedStartFailure(reason: "\(error)"))
        }
    }

    func stop() async {
        await self.feed.disconnect()
    }

    func credentialsChangedSinceStart() async -> Bool { false }

    func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) async -> [SubscribeOutcome] {
        await self.feed.subscribe(instruments, mode: mode, depth: depth)
    }

    func unsubscribe(_ instruments: [Instrument]) async {
        await self.feed.unsubscribe(instruments)
    }
}

let count = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 400_000 : 400_000
var template = Array("/tmp/oa-recording-bench-XXXXXX".utf8CString)
let directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
var depthFile = ""

for mode in [SubscriptionMode.quote, .depth] {
    let batch = ticks(mode, count: count)
    let start = WallClock.epochNanoseconds()
    let sink = TickRecordingSink(writer: try TickRecordWriter(output: "\(directory)/\(mode.label).jsonl", now: start))
    let began = now()
    for (index, tick) in batch.enumerated() { sink.append(tick, receivedAt: start + Int64(index) * 1000) }
    let appended = now()
    let progress = await sink.stop()
    let written = now()
    if mode == .depth { depthFile = progress.files[0] }
    print(
        "record \(mode.label): \(progress.records) ticks; hub side \(Int((appended - began) / Double(count) * 1e9)) ns/tick; "
            + "written at \(Int(Double(count) / (written - began))) ticks/s; \(progress.bytes / progress.records) bytes/tick"
    )
}

let readStart = now()
let reader = try TickRecordReader(recording: depthFile)
var read = 0
while try reader.next() != nil { read += 1 }
print("read Depth: \(Int(Double(read) / (now() - readStart))) ticks/s")

let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
let hubLoop = group.next()
let logger = Logger(label: "bench")
let feed = try ReplayFeed(configuration: ReplayConfiguration(file: depthFile, speed: .maximum), logger: logger)
let commands = FeedCommandQueue()
let (hub, sink, subscriber) = try await hubLoop.submit {
    let hub = StreamingHub(eventLoop: hubLoop, configuration: HubConfiguration(brokerName: "replay"), commands: commands, logger: logger)
    let subscriber = CountingSubscriber(id: hub.makeSubscriberID())
    hub.register(subscriber)
    return (NIOLoopBound(hub, eventLoop: hubLoop), hub.makeSink(), NIOLoopBound(subscriber, eventLoop: hubLoop))
}.get()
let queue = Task { await commands.run(feed: ReplayControl(feed: feed, sink: sink)) }
let replayStart = now()
try await hubLoop.submit {
    hub.value.connectFeed(FeedStartRequest()) { _ in }
    hub.value.subscribe(
        subscriber.value,
        to: [Instrument(exchange: "NSE", symbol: "RELIANCE"), Instrument(exchange: "NFO", symbol: "NIFTY28DEC2425000CE")],
        mode: .depth,
        depth: 5
    ) { _ in }
}.get()
while try await hubLoop.submit({ hub.value.metrics.ticksReceived }).get() < UInt64(count) {
    try await Task.sleep(for: .milliseconds(2))
}
let replayed = now() - replayStart
let frames = try await hubLoop.submit { subscriber.value.frames }.get()
print("replay max into the hub: \(Int(Double(count) / replayed)) ticks/s (\(frames) frames to one Depth subscriber)")
await feed.disconnect()
commands.finish()
await queue.value
try await group.shutdownGracefully()
for mode in ["Quote", "Depth"] { _ = system("rm -f \(directory)/\(mode)-*.jsonl") }
rmdir(directory)
