import BrokerKit
import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOPosix
import TickRecording
import WireJSON

#if canImport(Glibc)
import Glibc
#endif

/// A feed that plays a recording (`oactl record`, `[record]`) into the hub, so strategies and
/// front ends can be tested offline against a real session.
///
/// Playback starts with the first subscription, so a client that connects after the agent starts
/// sees the whole recording, and only subscribed instruments are delivered. Records keep their
/// recorded gaps, divided by the speed; at `max` the feed waits for the hub to take in each batch
/// instead, so the backlog stays small. The player runs on a thread of its own: it reads the file
/// and sleeps, neither of which belongs on an event loop or the cooperative pool.
package final class ReplayFeed: BrokerAdapter {
    package let brokerName = "replay"
    package let configuration: ReplayConfiguration
    private let paths: [String]
    private let logger: Logger
    private let player: ReplayPlayer

    package init(configuration: ReplayConfiguration, logger: Logger) throws(BrokerConfigurationError) {
        self.configuration = configuration
        do {
            self.paths = try RecordingFiles.resolve(configuration.file)
        } catch {
            throw BrokerConfigurationError("[brokers.replay] file: \(error)")
        }
        self.logger = logger
        self.player = ReplayPlayer(paths: self.paths, speed: configuration.speed, loop: configuration.loop, logger: logger)
    }

    package var connectionState: FeedConnectionState {
        self.player.connectionState
    }

    package func connect(sink: any FeedEventSink) async throws {
        self.player.start(sink: sink)
        sink.feedStateChanged(.connected)
        self.logger.info(
            "replay ready; playback starts with the first subscription",
            metadata: ["files": "\(self.paths.joined(separator: ","))", "speed": "\(self.configuration.speed)"]
        )
    }

    /// Every instrument is accepted: one the recording lacks simply never ticks, as on a quiet day.
    package func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) async -> [SubscribeOutcome] {
        self.player.subscribe(instruments)
        return instruments.map { _ in .subscribed(actualDepth: nil) }
    }

    package func unsubscribe(_ instruments: [Instrument]) async {
        self.player.unsubscribe(instruments)
    }

    package func disconnect() async {
        await self.player.stop()
    }

    /// The position: record N of M, the recorded time, the speed and completed loops.
    package var statusDetail: (key: String, value: JSONValue)? {
        ("replay", self.player.position.json(files: self.paths, speed: self.configuration.speed, loop: self.configuration.loop))
    }
}

/// Where playback is, as `status` shows it.
struct ReplayPosition: Sendable, Equatable {
    enum Phase: String, Sendable {
        case waiting = "waiting for the first subscription"
        case playing
        case finished
        case stopped
        case failed
    }

    var phase = Phase.waiting
    /// The 1-based number of the record last played in this pass; 0 before the first.
    var record = 0
    /// Complete records in the recording; `nil` until counted.
    var records: Int?
    var recordedAt: Int64?
    var delivered = 0
    var loopsCompleted = 0
    var failure: String?

    func json(files: [String], speed: ReplaySpeed, loop: Bool) -> JSONValue {
        var object: JSONObject = [
            "state": .string(self.phase.rawValue),
            "record": .int(self.record),
            "records": self.records.map { .int($0) } ?? .null,
            "recorded_at_ns": self.recordedAt.map { .int($0) } ?? .null,
            "recorded_at": self.recordedAt.map { .string(RecordingTime.iso8601(epochNanoseconds: $0)) } ?? .null,
            "delivered": .int(self.delivered),
            "speed": .string(speed.description),
            "loop": .bool(loop),
            "loops_completed": .int(self.loopsCompleted),
            "files": .array(files.map { .string($0) }),
        ]
        if let failure { object["error"] = .string(failure) }
        return .object(object)
    }
}

/// The playback thread and the state it shares with the feed's callers.
private final class ReplayPlayer: @unchecked Sendable {
    private struct Shared {
        var subscribed: Set<Instrument> = []
        var started = false
        var stopRequested = false
        var threadStarted = false
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
        var threadFinished = false
        var connection = FeedConnectionState.disconnected
    }

    /// At full speed, the player waits for the hub after every batch of this many ticks.
    private static let maximumSpeedBatch = 1024
    /// The longest single sleep, so that a stop is noticed quickly.
    private static let sleepSlice: Int64 = 20_000_000

    private let paths: [String]
    private let speed: ReplaySpeed
    private let loop: Bool
    private let logger: Logger
    private let shared = NIOLockedValueBox(Shared())
    private let positionBox = NIOLockedValueBox(ReplayPosition())
    private let thread = NIOThreadPool(numberOfThreads: 1)

    init(paths: [String], speed: ReplaySpeed, loop: Bool, logger: Logger) {
        self.paths = paths
        self.speed = speed
        self.loop = loop
        self.logger = logger
    }

    var position: ReplayPosition { self.positionBox.withLockedValue { $0 } }
    var connectionState: FeedConnectionState { self.shared.withLockedValue { $0.connection } }

    func start(sink: any FeedEventSink) {
        self.shared.withLockedValue { shared in
            shared.threadStarted = true
            shared.connection = .connected
        }
        self.thread.start()
        self.thread.submit { _ in self.run(sink: sink) }
    }

    func subscribe(_ instruments: [Instrument]) {
        self.shared.withLockedValue { shared in
            shared.subscribed.formUnion(instruments)
            shared.started = true
        }
    }

    func unsubscribe(_ instruments: [Instrument]) {
        self.shared.withLockedValue { $0.subscribed.subtract(instruments) }
    }

    func stop() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = self.shared.withLockedValue { shared in
                shared.stopRequested = true
                shared.connection = .disconnected
                if shared.threadFinished || !shared.threadStarted { return true }
                shared.stopWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    private var stopRequested: Bool { self.shared.withLockedValue { $0.stopRequested } }

    private func run(sink: any FeedEventSink) {
        defer { self.finish() }
        guard self.waitForFirstSubscription() else { return }
        do {
            let count = try TickRecordReader.countLines(self.paths)
            self.positionBox.withLockedValue { $0.records = count }
            let reader = TickRecordReader(paths: self.paths)
            self.positionBox.withLockedValue { $0.phase = .playing }
            while true {
                guard try self.playOnePass(reader, sink: sink) else { return }
                self.positionBox.withLockedValue { $0.loopsCompleted += 1 }
                if reader.partialLines > 0 || reader.skippedLines > 0 {
                    self.logger.warning(
                        "replay skipped unreadable lines",
                        metadata: ["partial": "\(reader.partialLines)", "invalid": "\(reader.skippedLines)"]
                    )
                }
                guard self.loop else { break }
                reader.rewind()
            }
            self.positionBox.withLockedValue { $0.phase = .finished }
            self.logger.info("replay finished", metadata: ["delivered": "\(self.position.delivered)"])
        } catch {
            self.logger.error("replay failed", metadata: ["error": "\(error)"])
            self.positionBox.withLockedValue { position in
                position.phase = .failed
                position.failure = error.description
            }
        }
    }

    private func waitForFirstSubscription() -> Bool {
        while true {
            let (started, stopped) = self.shared.withLockedValue { ($0.started, $0.stopRequested) }
            if stopped { return false }
            if started { return true }
            Self.sleep(nanoseconds: 5_000_000)
        }
    }

    /// Plays every record once; `false` when stopped part-way.
    private func playOnePass(_ reader: TickRecordReader, sink: any FeedEventSink) throws(TickRecordingError) -> Bool {
        var firstRecorded: Int64?
        var startedAt: Int64 = 0
        var number = 0
        var sinceWait = 0
        while let record = try reader.next() {
            number += 1
            if case .factor(let factor) = self.speed {
                if let firstRecorded {
                    guard self.sleep(until: ReplaySchedule.due(record.receivedAt, firstRecorded: firstRecorded, startedAt: startedAt, factor: factor))
                    else { return false }
                } else {
                    firstRecorded = record.receivedAt
                    startedAt = Self.monotonicNow()
                }
            }
            let (subscribed, stopped) = self.shared.withLockedValue { ($0.subscribed.contains(record.tick.instrument), $0.stopRequested) }
            if stopped { return false }
            self.positionBox.withLockedValue { position in
                position.record = number
                position.recordedAt = record.receivedAt
                if subscribed { position.delivered += 1 }
            }
            guard subscribed else { continue }
            sink.receive(record.tick)
            if case .maximum = self.speed {
                sinceWait += 1
                if sinceWait >= Self.maximumSpeedBatch {
                    sinceWait = 0
                    guard self.waitForHub(sink) else { return false }
                }
            }
        }
        return true
    }

    /// Sleeps until the monotonic time `due`, in slices; `false` when stopped meanwhile.
    private func sleep(until due: Int64) -> Bool {
        while true {
            if self.stopRequested { return false }
            let remaining = due - Self.monotonicNow()
            if remaining <= 200_000 { return true }
            Self.sleep(nanoseconds: min(remaining, Self.sleepSlice))
        }
    }

    /// Waits until the hub has taken in what was given so far; `false` when stopped meanwhile.
    private func waitForHub(_ sink: any FeedEventSink) -> Bool {
        let taken = ConditionLock(value: false)
        sink.afterPendingTicks {
            taken.lock()
            taken.unlock(withValue: true)
        }
        while !taken.lock(whenValue: true, timeoutSeconds: 0.1) {
            if self.stopRequested { return false }
        }
        taken.unlock()
        return true
    }

    private func finish() {
        let waiters = self.shared.withLockedValue { shared in
            shared.threadFinished = true
            defer { shared.stopWaiters = [] }
            return shared.stopWaiters
        }
        if self.stopRequested {
            self.positionBox.withLockedValue { if $0.phase != .failed { $0.phase = .stopped } }
        }
        for waiter in waiters { waiter.resume() }
        self.thread.shutdownGracefully { _ in }
    }

    private static func monotonicNow() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    private static func sleep(nanoseconds: Int64) {
        var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}

/// When each record of a recording plays.
package enum ReplaySchedule {
    /// The monotonic time at which a record received at `receivedAt` plays, when the first one
    /// (received at `firstRecorded`) played at `startedAt`: the recorded gap divided by the speed.
    /// Receive times come from a file, so any two may be far apart or out of order: a record from
    /// before the first plays at once, and a gap too long for the clock waits as long as it can.
    package static func due(_ receivedAt: Int64, firstRecorded: Int64, startedAt: Int64, factor: Double) -> Int64 {
        let (gap, overflow) = receivedAt.subtractingReportingOverflow(firstRecorded)
        let recordedGap = overflow ? (receivedAt < firstRecorded ? Int64.min : Int64.max) : gap
        guard recordedGap > 0 else { return startedAt }
        let wait = Int64(saturating: Double(recordedGap) / factor)
        let (due, late) = startedAt.addingReportingOverflow(wait)
        return late ? Int64.max : due
    }
}
