import MarketData
import NIOConcurrencyHelpers
import NIOCore

/// Serialises the hub's requests to the feed: one task runs them in order, so the feed sees
/// subscribes, unsubscribes, starts and stops exactly in the order the hub decided them, and the
/// hub's event loop never waits for a broker.
public final class FeedCommandQueue: Sendable {
    enum Command: Sendable {
        case subscribe([Instrument], SubscriptionMode, depth: Int, reply: @Sendable ([SubscribeOutcome]) -> Void)
        case unsubscribe([Instrument], reply: @Sendable () -> Void)
        case start(FeedStartRequest, reply: @Sendable (Result<Void, FeedStartFailure>) -> Void)
        case stop(reply: @Sendable () -> Void)
        case checkCredentials(reply: @Sendable (Bool) -> Void)
    }

    private let stream: AsyncStream<Command>
    private let continuation: AsyncStream<Command>.Continuation
    private let runningSince = NIOLockedValueBox<NIODeadline?>(nil)

    public init() {
        (self.stream, self.continuation) = AsyncStream.makeStream(of: Command.self)
    }

    /// Queues `command`; once the queue has finished, answers it at once as a feed that is gone
    /// would, so that nobody waits for a reply that never comes.
    func send(_ command: Command) {
        guard case .terminated = self.continuation.yield(command) else { return }
        switch command {
        case .subscribe(let instruments, _, _, let reply): reply(instruments.map { _ in .refused(message: "The agent is shutting down.") })
        case .unsubscribe(_, let reply): reply()
        case .start(_, let reply): reply(.failure(FeedStartFailure(reason: "The agent is shutting down.")))
        case .stop(let reply): reply()
        case .checkCredentials(let reply): reply(false)
        }
    }

    /// Runs the queued commands against `feed` until ``finish()`` is called.
    public func run(feed: some FeedControl) async {
        for await command in self.stream {
            self.runningSince.withLockedValue { $0 = .now() }
            defer { self.runningSince.withLockedValue { $0 = nil } }
            switch command {
            case .subscribe(let instruments, let mode, let depth, let reply):
                reply(await feed.subscribe(instruments, mode: mode, depth: depth))
            case .unsubscribe(let instruments, let reply):
                await feed.unsubscribe(instruments)
                reply()
            case .start(let request, let reply):
                reply(await feed.start(request))
            case .stop(let reply):
                await feed.stop()
                reply()
            case .checkCredentials(let reply):
                reply(await feed.credentialsChangedSinceStart())
            }
        }
    }

    /// When the command the feed is carrying out started, or `nil` while the queue is idle: a
    /// command that never finishes means the feed is wedged, and the watchdog stops vouching for it.
    public var commandRunningSince: NIODeadline? {
        self.runningSince.withLockedValue { $0 }
    }

    /// Ends ``run(feed:)`` once the queued commands have run.
    public func finish() {
        self.continuation.finish()
    }
}
