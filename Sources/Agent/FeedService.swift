import Brokers
import Logging
import MarketData
import ServiceLifecycle
import StreamingHub

/// Runs the selected feed: connects it, then carries out the hub's subscribe and unsubscribe
/// requests in order until shutdown, when it disconnects the feed.
struct FeedService: Service {
    let adapter: any BrokerAdapter
    let sink: any FeedEventSink
    let commands: FeedCommandQueue
    let logger: Logger

    func run() async throws {
        try await self.adapter.connect(sink: self.sink)
        self.logger.info("feed connected", metadata: ["broker": "\(self.adapter.brokerName)"])
        let commands = self.commands
        await withGracefulShutdownHandler {
            await commands.run(feed: AdapterFeedControl(adapter: self.adapter))
        } onGracefulShutdown: {
            commands.finish()
        }
        await self.adapter.disconnect()
    }
}

/// Lets the hub drive any broker adapter.
struct AdapterFeedControl: FeedControl {
    let adapter: any BrokerAdapter

    func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) async -> [SubscribeOutcome] {
        await self.adapter.subscribe(instruments, mode: mode, depth: depth)
    }

    func unsubscribe(_ instruments: [Instrument]) async {
        await self.adapter.unsubscribe(instruments)
    }
}
