import MarketData

/// Serialises the hub's requests to the feed: one task runs them in order, so the feed sees
/// subscribes and unsubscribes exactly in the order the hub decided them, and the hub's event
/// loop never waits for a broker.
public final class FeedCommandQueue: Sendable {
    enum Command: Sendable {
        case subscribe([Instrument], SubscriptionMode, depth: Int, reply: @Sendable ([SubscribeOutcome]) -> Void)
        case unsubscribe([Instrument])
    }

    private let stream: AsyncStream<Command>
    private let continuation: AsyncStream<Command>.Continuation

    public init() {
        (self.stream, self.continuation) = AsyncStream.makeStream(of: Command.self)
    }

    func send(_ command: Command) {
        self.continuation.yield(command)
    }

    /// Runs the queued commands against `feed` until ``finish()`` is called.
    public func run(feed: some FeedControl) async {
        for await command in self.stream {
            switch command {
            case .subscribe(let instruments, let mode, let depth, let reply):
                reply(await feed.subscribe(instruments, mode: mode, depth: depth))
            case .unsubscribe(let instruments):
                await feed.unsubscribe(instruments)
            }
        }
    }

    /// Ends ``run(feed:)`` once the queued commands have run.
    public func finish() {
        self.continuation.finish()
    }
}
