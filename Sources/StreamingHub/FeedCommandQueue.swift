import MarketData
import NIOConcurrencyHelpers
import NIOCore

/// Serialises the hub's requests to the feed: one task runs them in order, so the feed sees
/// subscribes and unsubscribes exactly in the order the hub decided them, and the hub's event
/// loop never waits for a broker.
public final class FeedCommandQueue: Sendable {
    enum Command: Sendable {
        case subscribe([Instrument], SubscriptionMode, depth: Int, reply: @Sendable ([SubscribeOutcome]) -> Void)
        case unsubscribe([Instrument])
        case perform(@Sendable () async -> Void)
    }

    private let stream: AsyncStream<Command>
    private let continuation: AsyncStream<Command>.Continuation
    private let runningSince = NIOLockedValueBox<NIODeadline?>(nil)

    public init() {
        (self.stream, self.continuation) = AsyncStream.makeStream(of: Command.self)
    }

    func send(_ command: Command) {
        self.continuation.yield(command)
    }

    /// Runs the queued commands against `feed` until ``finish()`` is called.
    public func run(feed: some FeedControl) async {
        for await command in self.stream {
            self.runningSince.withLockedValue { $0 = .now() }
            defer { self.runningSince.withLockedValue { $0 = nil } }
            switch command {
            case .subscribe(let instruments, let mode, let depth, let reply):
                reply(await feed.subscribe(instruments, mode: mode, depth: depth))
            case .unsubscribe(let instruments):
                await feed.unsubscribe(instruments)
            case .perform(let work):
                await work()
            }
        }
    }

    /// When the command the feed is carrying out started, or `nil` while the queue is idle: a
    /// command that never finishes means the feed is wedged, and the watchdog stops vouching for it.
    public var commandRunningSince: NIODeadline? {
        self.runningSince.withLockedValue { $0 }
    }

    /// Runs `work` in the queue's order (after the requests already queued, before later ones),
    /// so switching or stopping the feed never races a subscription.
    ///
    /// - Returns: the result, or `nil` when the queue has finished and `work` did not run.
    public func perform<Result: Sendable>(_ work: @escaping @Sendable () async -> Result) async -> Result? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Result?, Never>) in
            let queued = self.continuation.yield(.perform { continuation.resume(returning: await work()) })
            if case .terminated = queued {
                continuation.resume(returning: nil)
            }
        }
    }

    /// Ends ``run(feed:)`` once the queued commands have run.
    public func finish() {
        self.continuation.finish()
    }
}
