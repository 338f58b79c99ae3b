import MarketData
import NIOConcurrencyHelpers
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Takes ticks from the hub's event loop and writes them on a thread of its own, so a slow disk
/// never delays the fan-out.
///
/// The hub's side only appends to a locked queue. The writer thread wakes when a batch has built
/// up or a second has passed, writes what is queued, and syncs the file once a second: a crash of
/// the agent loses at most the last second, a crash of the machine about the same.
public final class TickRecordingSink: @unchecked Sendable {
    /// A recording's progress, for `status` and `oactl record`.
    public struct Progress: Sendable, Equatable {
        public var records: Int
        public var bytes: Int
        public var files: [String]
        /// Set when writing failed; the recording has stopped.
        public var failure: String?
    }

    private enum Signal: Equatable {
        case idle
        case wake
    }

    private static let batchSize = 2048

    // The queue and flags are guarded by `condition`; the writer only by being used from the writer thread.
    private let condition = ConditionLock(value: Signal.idle)
    private var queue: [TickRecord] = []
    private var stopRequested = false
    private let writer: TickRecordWriter
    private let progressBox: NIOLockedValueBox<Progress>
    private let thread = NIOThreadPool(numberOfThreads: 1)
    private var hasFinished = false
    private var stopWaiters: [CheckedContinuation<Progress, Never>] = []

    /// Starts the writer thread for `writer`.
    public init(writer: TickRecordWriter) {
        self.writer = writer
        self.progressBox = NIOLockedValueBox(Progress(records: 0, bytes: 0, files: writer.summary.files, failure: nil))
        self.thread.start()
        self.thread.submit { _ in self.run() }
    }

    public var progress: Progress { self.progressBox.withLockedValue { $0 } }

    /// Queues one tick received at `receivedAt` (epoch nanoseconds). Never blocks on I/O.
    public func append(_ tick: Tick, receivedAt: Int64) {
        self.condition.lock()
        self.queue.append(TickRecord(receivedAt: receivedAt, tick: tick))
        if self.queue.count >= Self.batchSize {
            self.condition.unlock(withValue: .wake)
        } else {
            self.condition.unlock()
        }
    }

    /// Writes what is queued, closes the file and ends the thread; returns the final progress.
    public func stop() async -> Progress {
        await withCheckedContinuation { (continuation: CheckedContinuation<Progress, Never>) in
            self.condition.lock()
            guard !self.hasFinished else {
                self.condition.unlock()
                continuation.resume(returning: self.progress)
                return
            }
            self.stopRequested = true
            self.stopWaiters.append(continuation)
            self.condition.unlock(withValue: .wake)
        }
    }

    private func run() {
        var lastSync = NIODeadlineNanoseconds.now()
        var stopping = false
        // Two arrays trade places, so neither side allocates once both have grown.
        var batch: [TickRecord] = []
        while !stopping {
            let remaining = max(0.001, 1.0 - Double(NIODeadlineNanoseconds.now() - lastSync) / 1e9)
            if !self.condition.lock(whenValue: .wake, timeoutSeconds: remaining) {
                self.condition.lock()
            }
            swap(&batch, &self.queue)
            stopping = self.stopRequested
            self.condition.unlock(withValue: .idle)
            do {
                for record in batch { try self.writer.append(record) }
                batch.removeAll(keepingCapacity: true)
                let now = NIODeadlineNanoseconds.now()
                if stopping {
                    try self.writer.close()
                } else if now - lastSync >= 1_000_000_000 {
                    try self.writer.flush(sync: true)
                    lastSync = now
                }
            } catch {
                self.progressBox.withLockedValue { $0.failure = error.description }
                self.drainAfterFailure()
                stopping = true
            }
            let summary = self.writer.summary
            self.progressBox.withLockedValue { progress in
                progress.records = summary.records
                progress.bytes = summary.bytes
                progress.files = summary.files
            }
        }
        self.condition.lock()
        self.hasFinished = true
        let waiters = self.stopWaiters
        self.stopWaiters = []
        self.condition.unlock()
        let progress = self.progress
        for waiter in waiters { waiter.resume(returning: progress) }
        self.thread.shutdownGracefully { _ in }
    }

    /// After a write error nothing more is written; ticks still queued are dropped until stop.
    private func drainAfterFailure() {
        while true {
            self.condition.lock(whenValue: .wake)
            self.queue.removeAll()
            let stop = self.stopRequested
            self.condition.unlock(withValue: .idle)
            if stop { return }
        }
    }
}

/// Monotonic nanoseconds for the writer's once-a-second sync.
enum NIODeadlineNanoseconds {
    static func now() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}
