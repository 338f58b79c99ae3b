import LocalIPC
import Logging
import NIOCore
import ServiceLifecycle
import StreamingHub

/// Runs the feed: connects the configured broker, then carries out the hub's requests in order
/// until shutdown, when it disconnects the feed.
///
/// A broker that cannot be reached at start does not stop the agent: the feed reports `failed`,
/// clients are told, the hub starts it again while anyone holds a subscription, and `oactl
/// connect` can try again at once (with other credentials).
struct FeedService: Service, CustomStringConvertible {
    var description: String { "FeedService" }

    let supervisor: FeedController
    let hub: NIOLoopBound<StreamingHub>
    let commands: FeedCommandQueue
    let logger: Logger

    func run() async throws {
        let supervisor = self.supervisor
        let hub = self.hub
        let commands = self.commands
        let logger = self.logger
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    if case .failure(let failure) = await StreamingHub.connectFeed(hub, FeedStartRequest()) {
                        logger.error(
                            "the feed did not start; it is tried again while clients subscribe, or run `oactl connect`",
                            metadata: ["error": "\(failure.reason)"]
                        )
                    }
                }
                group.addTask {
                    await commands.run(feed: supervisor)
                }
            }
        } onGracefulShutdown: {
            // Stopped in the hub first, so that it starts no feed again while the agent goes down.
            hub.eventLoop.execute {
                hub.value.disconnectFeed {}
                commands.finish()
            }
        }
        await supervisor.stop()
    }
}
