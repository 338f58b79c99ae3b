import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import StreamingHub
import Testing

/// The hub on a real event loop, with recording subscribers and a recording feed.
@Suite("Streaming hub")
struct StreamingHubTests {
    struct WaitTimedOut: Error, CustomStringConvertible {
        var what: String
        var description: String { "timed out waiting for \(self.what)" }
    }

    final class RecordingSubscriber: MarketDataSubscriber {
        let subscriberID: SubscriberID
        var frames: [(mode: SubscriptionMode, text: String)] = []
        var flushes = 0

        init(_ number: UInt64) {
            self.subscriberID = SubscriberID(rawValue: number)
        }

        private var flushPending = false

        func enqueue(_ frame: ByteBuffer, instrument: Instrument, mode: SubscriptionMode) -> Bool {
            self.frames.append((mode, String(buffer: frame)))
            defer { self.flushPending = true }
            return !self.flushPending
        }

        func flushEnqueued() {
            self.flushPending = false
            self.flushes += 1
        }

        func describe() -> SubscriberDescription {
            SubscriberDescription(kind: .ipc, peer: "test", connectedAt: 0, queuedBytes: 0, droppedFrames: 0)
        }
    }

    /// A feed that records every request; `BAD` instruments are refused, Depth is served at
    /// `servedLevels` when set. While ``hold`` is on, subscribe answers wait for ``release()``.
    final class RecordingFeed: FeedControl {
        enum Call: Equatable {
            case start
            case subscribe([Instrument], SubscriptionMode, depth: Int)
            case unsubscribe([Instrument])
        }

        let calls = NIOLockedValueBox<[Call]>([])
        let servedLevels: Int?
        let holding = NIOLockedValueBox(false)
        private let held = NIOLockedValueBox<[CheckedContinuation<Void, Never>]>([])

        init(servedLevels: Int? = nil) {
            self.servedLevels = servedLevels
        }

        func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) async -> [SubscribeOutcome] {
            self.calls.withLockedValue { $0.append(.subscribe(instruments, mode, depth: depth)) }
            if self.holding.withLockedValue({ $0 }) {
                await withCheckedContinuation { continuation in self.held.withLockedValue { $0.append(continuation) } }
            }
            return instruments.map {
                $0.exchange == "BAD"
                    ? .refused(message: "Symbol \($0.symbol) not found for exchange BAD")
                    : .subscribed(actualDepth: mode == .depth ? self.servedLevels : nil)
            }
        }

        func unsubscribe(_ instruments: [Instrument]) async {
            self.calls.withLockedValue { $0.append(.unsubscribe(instruments)) }
        }

        func start(_ request: FeedStartRequest) async -> Result<Void, FeedStartFailure> {
            self.calls.withLockedValue { $0.append(.start) }
            return .success(())
        }

        func stop() async {}

        func credentialsChangedSinceStart() async -> Bool { false }

        /// Lets every held answer go, and answers at once from now on.
        func release() {
            self.holding.withLockedValue { $0 = false }
            for continuation in self.held.withLockedValue({ held in
                defer { held = [] }
                return held
            }) { continuation.resume() }
        }

        var heldAnswers: Int { self.held.withLockedValue { $0.count } }
    }

    struct Fixture {
        let loop: any EventLoop
        let hub: NIOLoopBound<StreamingHub>
        let feed: RecordingFeed
        let commands: FeedCommandQueue
        let feedTask: Task<Void, Never>

        init(
            throttle: TimeAmount = .zero,
            batchWindow: TimeAmount = .zero,
            feed: RecordingFeed = RecordingFeed(),
            restart: FeedReconcilerStateMachine.Configuration = .init()
        ) async throws {
            self.loop = MultiThreadedEventLoopGroup.singleton.next()
            let commands = FeedCommandQueue()
            let loop = self.loop
            self.hub = try await loop.submit {
                NIOLoopBound(
                    StreamingHub(
                        eventLoop: loop,
                        configuration: HubConfiguration(
                            brokerName: "test",
                            ltpThrottle: throttle,
                            tickBatchWindow: batchWindow,
                            feedRestart: restart
                        ),
                        commands: commands,
                        logger: Logger(label: "test")
                    ),
                    eventLoop: loop
                )
            }.get()
            self.feed = feed
            self.commands = commands
            self.feedTask = Task { await commands.run(feed: feed) }
            _ = await StreamingHub.connectFeed(self.hub, FeedStartRequest())
        }

        func onLoop<Result: Sendable>(_ body: @escaping @Sendable (StreamingHub) -> Result) async throws -> Result {
            let hub = self.hub
            return try await self.loop.submit { body(hub.value) }.get()
        }

        /// Registers a subscriber and subscribes it; returns the outcomes once the feed answered.
        func subscribe(
            _ subscriber: NIOLoopBound<RecordingSubscriber>,
            _ instruments: [Instrument],
            _ mode: SubscriptionMode,
            depth: Int = 5
        ) async throws
            -> [SubscribeOutcome]
        {
            let promise = self.loop.makePromise(of: [SubscribeOutcome].self)
            let hub = self.hub
            self.loop.execute {
                hub.value.subscribe(subscriber.value, to: instruments, mode: mode, depth: depth) { promise.succeed($0) }
            }
            return try await promise.futureResult.get()
        }

        func makeSubscriber(_ number: UInt64) async throws -> NIOLoopBound<RecordingSubscriber> {
            let hub = self.hub
            let loop = self.loop
            return try await self.loop.submit {
                let subscriber = RecordingSubscriber(number)
                hub.value.register(subscriber)
                return NIOLoopBound(subscriber, eventLoop: loop)
            }.get()
        }

        /// The feed's calls after the start, once `condition` holds of them (within 10 s, else the
        /// test fails), and once the hub has taken in the answers.
        func feedCalls(until condition: @escaping ([RecordingFeed.Call]) -> Bool) async throws -> [RecordingFeed.Call] {
            try await Self.wait { condition(self.feed.calls.withLockedValue { Array($0.dropFirst()) }) }
            _ = try await self.onLoop { _ in () }
            return self.feed.calls.withLockedValue { Array($0.dropFirst()) }
        }

        /// Waits for `condition`, failing the test after 10 s.
        static func wait(_ what: String = "the condition", _ condition: () throws -> Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(10)
            while try !condition() {
                guard ContinuousClock.now < deadline else { throw WaitTimedOut(what: what) }
                try await Task.sleep(for: .milliseconds(2))
            }
        }

        /// Starts subscribing without waiting for the outcome; the box fills when it comes.
        func startSubscribe(
            _ subscriber: NIOLoopBound<RecordingSubscriber>,
            _ instruments: [Instrument],
            _ mode: SubscriptionMode,
            depth: Int = 5
        ) -> NIOLockedValueBox<[SubscribeOutcome]?> {
            let box = NIOLockedValueBox<[SubscribeOutcome]?>(nil)
            let hub = self.hub
            self.loop.execute {
                hub.value.subscribe(subscriber.value, to: instruments, mode: mode, depth: depth) { outcomes in box.withLockedValue { $0 = outcomes } }
            }
            return box
        }

        func finish() async {
            self.commands.finish()
            await self.feedTask.value
        }
    }

    let sbin = Instrument(exchange: "NSE", symbol: "SBIN")

    func tick(_ ltp: Double, mode: SubscriptionMode = .quote, instrument: Instrument? = nil) -> Tick {
        var tick = Tick(instrument: instrument ?? self.sbin, mode: mode)
        tick.ltp = ltp
        tick.timestamp = 1
        return tick
    }

    @Test("the feed follows what holders need: subscribe, upgrade, downgrade, unsubscribe, in order, one request in flight per instrument")
    func feedFollowsHolders() async throws {
        let fixture = try await Fixture()
        let a = try await fixture.makeSubscriber(1)
        let b = try await fixture.makeSubscriber(2)
        let c = try await fixture.makeSubscriber(3)
        #expect(try await fixture.subscribe(a, [self.sbin], .quote) == [.subscribed(actualDepth: nil)])
        _ = try await fixture.subscribe(b, [self.sbin], .ltp)
        _ = try await fixture.subscribe(c, [self.sbin, Instrument(exchange: "BAD", symbol: "X")], .depth)
        try await fixture.onLoop { hub in
            hub.remove(c.value)
            _ = hub.unsubscribe(a.value, from: self.sbin, mode: .quote)
            _ = hub.unsubscribeAll(b.value)
        }
        // The LTP downgrade is never sent: by the time the Quote one is answered nobody is left.
        #expect(
            try await fixture.feedCalls { $0.last == .unsubscribe([self.sbin]) } == [
                .subscribe([self.sbin], .quote, depth: 5),
                .subscribe([self.sbin, Instrument(exchange: "BAD", symbol: "X")], .depth, depth: 5),
                .subscribe([self.sbin], .quote, depth: 5),
                .unsubscribe([self.sbin]),
            ]
        )
        #expect(try await fixture.onLoop { $0.metrics.instruments } == 0)
        await fixture.finish()
    }

    @Test("a client holding LTP, Quote and Depth on one symbol gets a frame tagged with each for a Depth tick (it got only Depth)")
    func framePerHeldMode() async throws {
        let fixture = try await Fixture()
        let all = try await fixture.makeSubscriber(1)
        let quote = try await fixture.makeSubscriber(2)
        for mode in SubscriptionMode.allCases { _ = try await fixture.subscribe(all, [self.sbin], mode) }
        _ = try await fixture.subscribe(quote, [self.sbin], .quote)
        let (modes, quoteModes) = try await fixture.onLoop { hub in
            hub.publish([self.tick(10, mode: .depth), self.tick(11, mode: .quote), self.tick(12, mode: .ltp)])
            return (all.value.frames.map(\.mode), quote.value.frames.map(\.mode))
        }
        #expect(modes == [.ltp, .quote, .depth, .ltp, .quote, .ltp])
        #expect(quoteModes == [.quote, .quote], "a Quote holder gets one Quote-tagged frame for a Depth tick, none for an LTP tick")
        await fixture.finish()
    }

    @Test("a subscribe that finds a request in flight joins it and shares its refusal (it was confirmed at once)")
    func joinsRequestInFlight() async throws {
        let fixture = try await Fixture()
        let a = try await fixture.makeSubscriber(1)
        let b = try await fixture.makeSubscriber(2)
        let bad = Instrument(exchange: "BAD", symbol: "X")
        fixture.feed.holding.withLockedValue { $0 = true }
        let first = fixture.startSubscribe(a, [bad], .quote)
        try await Fixture.wait("the first request to reach the feed") { fixture.feed.heldAnswers == 1 }
        let second = fixture.startSubscribe(b, [bad], .ltp)
        _ = try await fixture.onLoop { _ in () }
        #expect(second.withLockedValue { $0 } == nil, "not confirmed while the feed has not answered")
        fixture.feed.release()
        try await Fixture.wait("both outcomes") { first.withLockedValue { $0 } != nil && second.withLockedValue { $0 } != nil }
        #expect(second.withLockedValue { $0 } == [.refused(message: "Symbol X not found for exchange BAD")])
        #expect(first.withLockedValue { $0 } == [.refused(message: "Symbol X not found for exchange BAD")])
        #expect(try await fixture.feedCalls { _ in true } == [.subscribe([bad], .quote, depth: 5)], "one request for both")
        #expect(try await fixture.onLoop { hub in hub.subscriptions(of: b.value).isEmpty && hub.subscriptions(of: a.value).isEmpty })
        await fixture.finish()
    }

    @Test("an unsubscribe while the subscribe is pending cancels it: the client ends unsubscribed and gets no data (it stayed subscribed)")
    func unsubscribeWhilePending() async throws {
        let fixture = try await Fixture()
        let a = try await fixture.makeSubscriber(1)
        fixture.feed.holding.withLockedValue { $0 = true }
        let outcome = fixture.startSubscribe(a, [self.sbin], .quote)
        try await Fixture.wait("the request to reach the feed") { fixture.feed.heldAnswers == 1 }
        #expect(try await fixture.onLoop { hub in hub.unsubscribe(a.value, from: self.sbin, mode: .quote) })
        fixture.feed.release()
        try await Fixture.wait("the subscribe's outcome") { outcome.withLockedValue { $0 } != nil }
        #expect(outcome.withLockedValue { $0 } == [.refused(message: "Unsubscribed before the broker confirmed the subscription")])
        #expect(
            try await fixture.feedCalls { $0.count == 2 } == [.subscribe([self.sbin], .quote, depth: 5), .unsubscribe([self.sbin])],
            "what the feed took for nobody is given back"
        )
        let (held, frames) = try await fixture.onLoop { hub in
            hub.publish([self.tick(10)])
            return (hub.subscriptions(of: a.value).count, a.value.frames.count)
        }
        #expect(held == 0 && frames == 0)
        await fixture.finish()
    }

    @Test("Depth 20 is not covered by a Depth 5 holder; its ack carries the levels the feed serves; a restart replays Depth 20")
    func depthIsPartOfTheModel() async throws {
        let fixture = try await Fixture(feed: RecordingFeed(servedLevels: 5))
        let five = try await fixture.makeSubscriber(1)
        let twenty = try await fixture.makeSubscriber(2)
        #expect(try await fixture.subscribe(five, [self.sbin], .depth, depth: 5) == [.subscribed(actualDepth: nil)])
        #expect(
            try await fixture.subscribe(twenty, [self.sbin], .depth, depth: 20) == [.subscribed(actualDepth: 5)],
            "asked of the feed, which serves five levels, and the ack says so"
        )
        _ = await StreamingHub.connectFeed(fixture.hub, FeedStartRequest(broker: "other"))
        #expect(
            try await fixture.feedCalls { $0.count == 4 } == [
                .subscribe([self.sbin], .depth, depth: 5), .subscribe([self.sbin], .depth, depth: 20), .start,
                .subscribe([self.sbin], .depth, depth: 20),
            ]
        )
        await fixture.finish()
    }

    @Test("a feed that fails while a subscription is held is started again by itself and asked for it again")
    func restartsFailedFeed() async throws {
        let fixture = try await Fixture(restart: .init(initialRestartDelay: .milliseconds(20), maximumRestartDelay: .milliseconds(40)))
        let a = try await fixture.makeSubscriber(1)
        _ = try await fixture.subscribe(a, [self.sbin], .quote)
        let sink = try await fixture.onLoop { $0.makeSink() }
        sink.feedStateChanged(.failed(reason: "gave up after 5 reconnect attempts"))
        #expect(
            try await fixture.feedCalls { $0.count == 3 } == [
                .subscribe([self.sbin], .quote, depth: 5), .start, .subscribe([self.sbin], .quote, depth: 5),
            ]
        )
        await fixture.finish()
    }

    @Test("the snapshot a new holder gets is never a tick of a lower mode than it holds")
    func snapshotMode() async throws {
        let fixture = try await Fixture()
        let a = try await fixture.makeSubscriber(1)
        _ = try await fixture.subscribe(a, [self.sbin], .ltp)
        let (forQuote, forLTP) = try await fixture.onLoop { hub in
            hub.publish([self.tick(10, mode: .ltp)])
            return (hub.latestFrame(for: self.sbin, mode: .quote), hub.latestFrame(for: self.sbin, mode: .ltp).map { String(buffer: $0) })
        }
        #expect(forQuote == nil)
        #expect(forLTP?.contains(#""mode": 1"#) == true)
        await fixture.finish()
    }

    @Test("a refused instrument is reported and not subscribed")
    func refused() async throws {
        let fixture = try await Fixture()
        let a = try await fixture.makeSubscriber(1)
        let bad = Instrument(exchange: "BAD", symbol: "X")
        let outcomes = try await fixture.subscribe(a, [bad, self.sbin], .ltp)
        #expect(outcomes == [.refused(message: "Symbol X not found for exchange BAD"), .subscribed(actualDepth: nil)])
        #expect(try await fixture.onLoop { hub in hub.subscriptions(of: a.value).map(\.instrument) } == [self.sbin])
        await fixture.finish()
    }

    @Test("each tick is encoded once per mode and shared; each subscriber is flushed once per batch")
    func sharedEncodingAndBatchedFlush() async throws {
        let fixture = try await Fixture()
        let a = try await fixture.makeSubscriber(1)
        let b = try await fixture.makeSubscriber(2)
        _ = try await fixture.subscribe(a, [self.sbin], .quote)
        _ = try await fixture.subscribe(b, [self.sbin], .quote)
        let ticks = [self.tick(10), self.tick(11), self.tick(12)]
        let (framesA, framesB, flushes) = try await fixture.onLoop { hub in
            hub.publish(ticks)
            return (a.value.frames.map(\.text), b.value.frames.map(\.text), a.value.flushes + b.value.flushes)
        }
        #expect(framesA.count == 3)
        #expect(framesA == framesB)
        #expect(flushes == 2, "one flush per subscriber for the whole batch")
        #expect(try await fixture.onLoop { $0.metrics.framesDelivered } == 6)
        await fixture.finish()
    }

    @Test(
        "a tick whose timestamp is no date is delivered as sent and left out of the feed latency (it trapped the agent)",
        arguments: [-9_223_372_036_854_775, Int64.min, 0]
    )
    func timestampThatIsNoDate(timestamp: Int64) async throws {
        let fixture = try await Fixture()
        let subscriber = try await fixture.makeSubscriber(1)
        _ = try await fixture.subscribe(subscriber, [self.sbin], .quote)
        var tick = self.tick(10)
        tick.timestamp = timestamp
        let hostile = tick
        let (frames, latencySamples) = try await fixture.onLoop { hub in
            hub.publish([hostile, self.tick(11)])
            return (subscriber.value.frames.map(\.text), hub.metrics.feedLatency.count)
        }
        #expect(frames.count == 2)
        #expect(frames.first?.contains("\"timestamp\": \(timestamp)") == true, "\(frames)")
        #expect(latencySamples == 1, "only the tick with a real date is measured")
        await fixture.finish()
    }

    /// A subscriber on a loop of its own, as a WebSocket connection is: it reaches the hub through
    /// the connector and records on which loop each call came.
    final class RemoteSubscriber: MarketDataSubscriber {
        let subscriberID: SubscriberID
        let deliveryEventLoop: (any EventLoop)?
        var frames: [ByteBuffer] = []
        var flushes = 0
        var callsOffLoop = 0
        private var flushPending = false

        init(_ id: SubscriberID, loop: any EventLoop) {
            self.subscriberID = id
            self.deliveryEventLoop = loop
        }

        func enqueue(_ frame: ByteBuffer, instrument: Instrument, mode: SubscriptionMode) -> Bool {
            if !self.deliveryEventLoop!.inEventLoop { self.callsOffLoop += 1 }
            self.frames.append(frame)
            defer { self.flushPending = true }
            return !self.flushPending
        }

        func flushEnqueued() {
            if !self.deliveryEventLoop!.inEventLoop { self.callsOffLoop += 1 }
            self.flushPending = false
            self.flushes += 1
        }

        func describe() -> SubscriberDescription {
            SubscriberDescription(kind: .webSocket, peer: "remote", connectedAt: 0, queuedBytes: 0, droppedFrames: 0)
        }
    }

    @Test("a subscriber on another loop gets the shared frames on its loop, flushed once per batch, after its ack")
    func subscriberOnAnotherLoop() async throws {
        let fixture = try await Fixture()
        let remoteGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let remoteLoop = remoteGroup.next()
        let connector = try await fixture.onLoop { $0.connector }
        let local = try await fixture.makeSubscriber(1)
        _ = try await fixture.subscribe(local, [self.sbin], .quote)
        let remote = try await remoteLoop.submit {
            NIOLoopBound(RemoteSubscriber(SubscriberID(rawValue: 100), loop: remoteLoop), eventLoop: remoteLoop)
        }.get()
        let acknowledged = remoteLoop.makePromise(of: (outcomes: [SubscribeOutcome], onLoop: Bool, framesBefore: Int).self)
        remoteLoop.execute {
            connector.register(remote.value)
            connector.subscribe(remote.value, to: [self.sbin], mode: .quote, depth: 5) { outcomes in
                acknowledged.succeed((outcomes, remoteLoop.inEventLoop, remote.value.frames.count))
            }
        }
        let ack = try await acknowledged.futureResult.get()
        #expect(ack.outcomes == [.subscribed(actualDepth: nil)] && ack.onLoop && ack.framesBefore == 0)

        let localFrames = try await fixture.onLoop { hub in
            hub.publish([self.tick(10), self.tick(11)])
            hub.publish([self.tick(12)])
            return local.value.frames.map(\.text)
        }
        var received: (frames: [ByteBuffer], flushes: Int, offLoop: Int) = ([], 0, 0)
        for _ in 0..<200 {
            received = try await remoteLoop.submit { (remote.value.frames, remote.value.flushes, remote.value.callsOffLoop) }.get()
            if received.frames.count == 3 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(received.frames.map { String(buffer: $0) } == localFrames)
        #expect(received.flushes == 2, "one flush per batch of ticks")
        #expect(received.offLoop == 0, "delivered on the subscriber's own loop")
        #expect(received.frames.allSatisfy { PreframedText.frame(of: $0) != nil }, "each frame carries its WebSocket header")

        let removed = remoteLoop.makePromise(of: Int.self)
        remoteLoop.execute {
            connector.unsubscribeAll(remote.value) { removed.succeed($0.count) }
        }
        #expect(try await removed.futureResult.get() == 1)
        #expect(try await fixture.onLoop { $0.metrics.framesDelivered } == 6)
        try await remoteGroup.shutdownGracefully()
        await fixture.finish()
    }

    @Test("with a batch window a tick after a quiet spell goes out at once, and ticks within the window go out together")
    func batchWindow() async throws {
        let fixture = try await Fixture(batchWindow: .seconds(2))
        let a = try await fixture.makeSubscriber(1)
        _ = try await fixture.subscribe(a, [self.sbin], .quote)
        let sink = try await fixture.onLoop { $0.makeSink() }
        sink.receive(self.tick(10))
        var delivered = 0
        for _ in 0..<100 where delivered == 0 {
            try await Task.sleep(for: .milliseconds(5))
            delivered = try await fixture.onLoop { _ in a.value.frames.count }
        }
        #expect(delivered == 1, "the first tick is not held back")

        sink.receive(self.tick(11))
        sink.receive(self.tick(12))
        sink.feedStateChanged(.disconnected)
        let fannedOut = fixture.loop.makePromise(of: Void.self)
        sink.afterPendingTicks { fannedOut.succeed(()) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await fixture.onLoop { _ in a.value.frames.count } == 1, "ticks within the window wait for its end")
        try await fannedOut.futureResult.get()
        let (frames, flushes, latest) = try await fixture.onLoop { hub in
            (a.value.frames.count, a.value.flushes, hub.latestFrame(for: self.sbin, mode: .quote))
        }
        #expect(frames == 3 && flushes == 2, "the two held ticks reach the subscriber in one flush")
        #expect(latest == nil, "the disconnect is applied after the ticks received before it")
        await fixture.finish()
    }

    @Test("LTP coalescing delivers the latest price at the end of the window; Quote is never throttled")
    func coalescingKeepsLatest() async throws {
        let fixture = try await Fixture(throttle: .milliseconds(50))
        let ltp = try await fixture.makeSubscriber(1)
        let quote = try await fixture.makeSubscriber(2)
        _ = try await fixture.subscribe(ltp, [self.sbin], .ltp)
        _ = try await fixture.subscribe(quote, [self.sbin], .quote)
        let ticks = [self.tick(100), self.tick(101), self.tick(102)]
        let immediate = try await fixture.onLoop { hub in
            hub.publish(ticks)
            return (ltp.value.frames.count, quote.value.frames.count)
        }
        #expect(immediate == (1, 3))
        try await Task.sleep(for: .milliseconds(120))
        let ltpFrames = try await fixture.onLoop { _ in ltp.value.frames.map(\.text) }
        #expect(ltpFrames.count == 2)
        #expect(ltpFrames.last?.contains(#""ltp": 102.0"#) == true, "the held frame is the latest price")
        #expect(try await fixture.onLoop { $0.metrics.ltpFramesCoalesced } == 2)
        await fixture.finish()
    }

    @Test("ticks without a timestamp get the receive time")
    func timestamps() async throws {
        let fixture = try await Fixture()
        let a = try await fixture.makeSubscriber(1)
        _ = try await fixture.subscribe(a, [self.sbin], .ltp)
        var tick = self.tick(5, mode: .ltp)
        tick.timestamp = nil
        let text = try await fixture.onLoop { [tick] hub in
            hub.publish([tick])
            return a.value.frames.first?.text ?? ""
        }
        let now = WallClock.epochMilliseconds()
        let digits = text.split(separator: "\"timestamp\": ").last?.prefix(while: \.isNumber) ?? ""
        #expect(abs((Int64(digits) ?? 0) - now) < 5_000)
        await fixture.finish()
    }

    @Test("feed latency reads a tick's timestamp in seconds, milliseconds, microseconds or nanoseconds")
    func feedLatencyUnits() async throws {
        let fixture = try await Fixture()
        let nowMilliseconds = WallClock.epochMilliseconds()
        // Each timestamp is about 2 s old; in the wrong unit it would count as 0 or as decades.
        let timestamps: [Int64] = [
            nowMilliseconds / 1000 - 2, nowMilliseconds - 2000, (nowMilliseconds - 2000) * 1000, (nowMilliseconds - 2000) * 1_000_000,
        ]
        let latency = try await fixture.onLoop { [self] hub in
            hub.publish(
                timestamps.map { timestamp in
                    var tick = self.tick(5, mode: .ltp)
                    tick.timestamp = timestamp
                    return tick
                }
            )
            return hub.metrics.feedLatency
        }
        #expect(latency.count == 4)
        #expect(latency.upperBound(quantile: 0) ?? 0 >= 1024, "every sample is about 2 s")
        #expect(latency.maximumMilliseconds < 10_000, "and none is read in the wrong unit")
        await fixture.finish()
    }
}
