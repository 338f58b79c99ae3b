import LocalIPC
import Logging
import ServiceLifecycle
import StreamingHub

/// Runs the feed: connects the configured broker, then carries out the hub's requests in order
/// until shutdown, when it disconnects the feed.
///
/// A broker that cannot be reached at start does not stop the agent: the feed reports `failed`,
/// clients are told, and `oactl connect` can try again (with other credentials).
struct FeedService: Service, CustomStringConvertible {
    var description: String { "FeedService" }

    let supervisor: FeedController
    let commands: FeedCommandQueue
    let logger: Logger

    func run() async throws {
        let supervisor = self.supervisor
        let commands = self.commands
        let logger = self.logger
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    if case .failure(let error)? = await commands.perform({ await supervisor.connect(broker: nil, credentials: [:]) }) {
                        logger.error(
                            "the feed did not start; fix the broker settings and run `oactl connect`",
                            metadata: ["error": "\(error.message)"]
                        )
                    }
                }
                group.addTask {
                    await commands.run(feed: supervisor)
                }
            }
        } onGracefulShutdown: {
            commands.finish()
        }
        await supervisor.disconnect()
    }
}
