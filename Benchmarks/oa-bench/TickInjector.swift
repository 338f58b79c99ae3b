import BenchmarkSupport
import NIOConcurrencyHelpers
import NIOPosix
import ZeroMQ

#if canImport(Glibc)
import Glibc
#endif

/// What the injector has sent, shared between its thread and the benchmark: the measured window
/// (in the same epoch nanoseconds as the ticks' timestamps) and the ticks sent inside it, per symbol.
struct InjectionLedger: Sendable {
    var window: Range<Int64>?
    var ticksInWindow: [Int]
    /// The timestamp of the last tick recorded: once it is past the window, every tick of the
    /// window has been counted (a tick's timestamp is taken just before it is sent and recorded).
    var lastTimestamp = Int64.min
    var stopRequested = false
    var failure: String?

    init(universe: Int) {
        self.ticksInWindow = Array(repeating: 0, count: universe)
    }

    mutating func recordSent(symbolIndex: Int, timestampNanoseconds: Int64) {
        self.lastTimestamp = timestampNanoseconds
        if let window = self.window, window.contains(timestampNanoseconds) {
            self.ticksInWindow[symbolIndex] += 1
        }
    }
}

/// Publishes ticks on the ZeroMQ bus at a fixed total rate, the way OpenAlgo's adapters feed both
/// OpenAlgo's Python proxy and the agent's `zmq` feed, so that either server can be driven with
/// the same ticks. Runs on a thread of its own (libzmq sockets are not thread-safe, and pacing
/// must not wait behind the client event loops), sleeping to absolute deadlines.
final class TickInjector: Sendable {
    enum SocketRole: String, Sendable {
        case bind
        case connect
    }

    let endpoint: String
    let role: SocketRole
    let schedule: InjectionSchedule
    let messages: AdapterMessageFactory
    private let ledger: NIOLockedValueBox<InjectionLedger>
    private let thread = NIOThreadPool(numberOfThreads: 1)
    private let finished: NIOLockedValueBox<Task<Void, Never>?> = NIOLockedValueBox(nil)

    init(endpoint: String, role: SocketRole, schedule: InjectionSchedule, mode: BenchMode) {
        self.endpoint = endpoint
        self.role = role
        self.schedule = schedule
        self.messages = AdapterMessageFactory(mode: mode, universe: schedule.universe)
        self.ledger = NIOLockedValueBox(InjectionLedger(universe: schedule.universe))
    }

    /// Opens the PUB socket and starts publishing; fails if the endpoint cannot be bound.
    func start() async throws {
        self.thread.start()
        let opened = NIOLockedValueBox<Result<Void, ZeroMQError>?>(nil)
        let task = Task {
            do {
                try await self.thread.runIfActive { self.publish(opened: opened) }
            } catch {
                self.ledger.withLockedValue { $0.failure = "\(error)" }
            }
        }
        self.finished.withLockedValue { $0 = task }
        while true {
            switch opened.withLockedValue({ $0 }) {
            case .success:
                return
            case .failure(let error):
                await task.value
                try await self.thread.shutdownGracefully()
                throw error
            case nil:
                try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    /// Counts, from now on, the ticks whose timestamps fall in `window`.
    func measure(window: Range<Int64>) {
        self.ledger.withLockedValue { $0.window = window }
    }

    /// The ledger once every tick stamped before `end` has been counted; fails if the injector stopped.
    func ledger(countedUntil end: Int64) async throws -> InjectionLedger {
        while true {
            let ledger = self.snapshot
            if let failure = ledger.failure { throw ClientFailure(description: "the tick injector failed: \(failure)") }
            if ledger.lastTimestamp >= end { return ledger }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    var snapshot: InjectionLedger {
        self.ledger.withLockedValue { $0 }
    }

    func stop() async throws {
        self.ledger.withLockedValue { $0.stopRequested = true }
        await self.finished.withLockedValue { $0 }?.value
        try await self.thread.shutdownGracefully()
    }

    /// The injector thread's body.
    private func publish(opened: NIOLockedValueBox<Result<Void, ZeroMQError>?>) {
        let socket: ZeroMQSocket
        do {
            let context = try ZeroMQContext()
            socket = try ZeroMQSocket(context: context, kind: .publisher)
            // Never drop a tick on our side: a drop must be the server's doing to count as one.
            try socket.setHighWaterMark(send: 10_000_000)
            try socket.setLinger(milliseconds: 0)
            switch self.role {
            case .bind: try socket.bind(self.endpoint)
            case .connect: try socket.connect(self.endpoint)
            }
            opened.withLockedValue { $0 = .success(()) }
        } catch {
            opened.withLockedValue { $0 = .failure(error) }
            return
        }
        defer { socket.close() }
        let start = MonotonicClock.nanoseconds()
        var next = 0
        while true {
            let due = self.schedule.ticksDue(afterNanoseconds: MonotonicClock.nanoseconds() - start)
            while next < due {
                let symbol = self.schedule.symbolIndex(ofTick: next)
                let timestamp = WallClock.nanoseconds()
                let body = self.messages.body(symbolIndex: symbol, sequence: next / self.schedule.universe, timestampNanoseconds: timestamp)
                do {
                    try socket.send([self.messages.topic(symbolIndex: symbol), body])
                } catch {
                    self.ledger.withLockedValue { $0.failure = "\(error)" }
                    return
                }
                self.ledger.withLockedValue { $0.recordSent(symbolIndex: symbol, timestampNanoseconds: timestamp) }
                next += 1
            }
            if self.ledger.withLockedValue({ $0.stopRequested }) { return }
            MonotonicClock.sleep(until: start + self.schedule.dueOffsetNanoseconds(ofTick: next))
        }
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds, and sleeping until an absolute point of it.
enum MonotonicClock {
    static func nanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    static func sleep(until deadline: Int64) {
        var target = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, nil) == EINTR {}
    }
}

/// `CLOCK_REALTIME` in nanoseconds since the epoch: the clock of `data.timestamp`.
enum WallClock {
    static func nanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}
