import Brokers
import Logging
import NIOCore
import NIOPosix
import ProxyServer
import ServiceLifecycle
import StreamingHub
import UnixSignals

/// The running agent: one event loop for the hub and every client connection, one for the feed,
/// and the services (feed, WebSocket server) under a `ServiceGroup` that stops them in order on
/// SIGTERM or SIGINT.
public final class AgentRuntime: Sendable {
    public let configuration: AgentConfiguration
    /// The WebSocket server, bound: its ``WebSocketServer/localAddress`` has the real port.
    public let webSocketServer: WebSocketServer
    public let hub: NIOLoopBound<StreamingHub>
    private let group: MultiThreadedEventLoopGroup
    private let serviceGroup: ServiceGroup
    private let logger: Logger

    /// Builds the feed, binds the server, and reports problems (bad broker, busy port) before
    /// anything runs.
    public init(configuration: AgentConfiguration, apiKey: String, logger: Logger) async throws {
        self.configuration = configuration
        self.logger = logger
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        self.group = group
        let hubLoop = group.next()
        let feedLoop = group.next()
        do {
            let adapter = try BrokerRegistry.makeAdapter(
                named: configuration.broker,
                settings: configuration.brokerSettings,
                eventLoop: feedLoop,
                logger: logger
            )
            let commands = FeedCommandQueue()
            let hubConfiguration = HubConfiguration(brokerName: adapter.brokerName, ltpThrottle: configuration.ltpThrottle)
            let (hub, sink) = try await hubLoop.submit {
                let hub = StreamingHub(eventLoop: hubLoop, configuration: hubConfiguration, commands: commands, logger: logger)
                return (NIOLoopBound(hub, eventLoop: hubLoop), hub.makeSink())
            }.get()
            self.hub = hub
            var proxyConfiguration = configuration.proxy
            proxyConfiguration.supportedBrokers = BrokerRegistry.supportedBrokers
            self.webSocketServer = try await WebSocketServer.bind(
                configuration: proxyConfiguration,
                hub: hub,
                verifier: APIKeyVerifier(apiKey: apiKey),
                logger: logger
            )
            let feedService = FeedService(adapter: adapter, sink: sink, commands: commands, logger: logger)
            self.serviceGroup = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [.init(service: feedService), .init(service: self.webSocketServer)],
                    gracefulShutdownSignals: configuration.handleSignals ? [.sigterm, .sigint] : [],
                    logger: logger
                )
            )
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Runs until SIGTERM/SIGINT or ``shutDown()``, then shuts down cleanly: clients get a 1001
    /// close, the feed is disconnected, the threads stop.
    public func run() async throws {
        do {
            try await self.serviceGroup.run()
        } catch {
            try? await self.group.shutdownGracefully()
            throw error
        }
        try await self.group.shutdownGracefully()
        self.logger.info("agent stopped")
    }

    /// Starts the same graceful shutdown as SIGTERM; ``run()`` returns when it is done.
    public func shutDown() async {
        await self.serviceGroup.triggerGracefulShutdown()
    }
}
