import Brokers
import LocalIPC
import LocalIPCServer
import Logging
import NIOCore
import NIOPosix
import ProxyServer
import ServiceLifecycle
import StreamingHub
import SystemdSupport
import UnixSignals

/// The running agent: one event loop for the hub, the local clients and the first share of
/// WebSocket connections, one for the feed, one more for each further share (`event_loops`), and
/// the services (feed, WebSocket server, local socket) under a
/// `ServiceGroup` that stops them in reverse order on SIGTERM or SIGINT.
public final class AgentRuntime: Sendable {
    public let configuration: AgentConfiguration
    /// The WebSocket server, bound: its ``WebSocketServer/localAddress`` has the real port.
    public let webSocketServer: WebSocketServer
    /// The local JSON-RPC socket, bound.
    public let ipcServer: IPCServer
    public let hub: NIOLoopBound<StreamingHub>
    private let recordings: RecordingController
    /// The hub's loop and the further loops WebSocket connections are spread over.
    private let group: MultiThreadedEventLoopGroup
    private let feedGroup: MultiThreadedEventLoopGroup
    private let serviceGroup: ServiceGroup
    private let logger: Logger

    /// Builds the feed, binds both servers, and reports problems (bad broker, busy port, a socket
    /// path in use) before anything runs.
    ///
    /// - Parameters:
    ///   - reloadSource: where `reload` reads the configuration again; without it, `reload` says
    ///     the agent was started without a configuration source.
    ///   - logLevel: the switch a reload turns; without it, the log level is fixed.
    ///   - environment: where brokers look for stored credentials (`CREDENTIALS_DIRECTORY`,
    ///     `XDG_CONFIG_HOME`); by default the reload source's.
    ///   - listeners: sockets systemd passed (socket activation), served instead of binding.
    ///   - serviceManager: where `READY=1`, status and watchdog pings go; by default nowhere.
    public init(
        configuration: AgentConfiguration,
        apiKey: APIKeyStore.ResolvedKey,
        logger: Logger,
        reloadSource: ConfigurationSource? = nil,
        logLevel: LogLevelSwitch? = nil,
        environment: [String: String]? = nil,
        listeners: AgentListeners = AgentListeners(),
        serviceManager: ServiceManagerLink? = nil
    ) async throws {
        self.configuration = configuration
        self.logger = logger
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.resolvedClientEventLoops)
        let feedGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        self.feedGroup = feedGroup
        let hubLoop = group.next()
        let feedLoop = feedGroup.next()
        do {
            let brokerName = try BrokerRegistry.supportedName(configuration.broker)
            let commands = FeedCommandQueue()
            let hubConfiguration = HubConfiguration(
                brokerName: brokerName,
                ltpThrottle: configuration.ltpThrottle,
                tickBatchWindow: configuration.tickBatchWindow
            )
            let (hub, sink) = try await hubLoop.submit {
                let hub = StreamingHub(eventLoop: hubLoop, configuration: hubConfiguration, commands: commands, logger: logger)
                return (NIOLoopBound(hub, eventLoop: hubLoop), hub.makeSink())
            }.get()
            self.hub = hub
            var proxyConfiguration = configuration.proxy
            proxyConfiguration.supportedBrokers = BrokerRegistry.supportedBrokers
            let webSocketServer = try await WebSocketServer.bind(
                configuration: proxyConfiguration,
                hub: hub,
                verifier: APIKeyVerifier(apiKey: apiKey.key),
                logger: logger,
                clientLoops: group,
                inheritedSocket: listeners.webSocket
            )
            if let inherited = listeners.webSocket {
                try ListenBacklog.restore(inherited)
            }
            self.webSocketServer = webSocketServer
            let link = serviceManager ?? .disconnected(logger: logger)
            let supervisor = FeedController(
                configuration: configuration,
                sink: sink,
                hub: hub,
                feedLoop: feedLoop,
                environment: environment ?? reloadSource?.environment ?? [:],
                logger: logger
            )
            let recordings = RecordingController(hub: hub, logger: logger)
            self.recordings = recordings
            let control = AgentControl(
                supervisor: supervisor,
                recordings: recordings,
                hub: hub,
                webSocketServer: webSocketServer,
                apiKey: apiKey,
                running: configuration,
                reloadSource: reloadSource,
                logLevel: logLevel,
                serviceManager: link.settings,
                logger: logger
            )
            var ipcConfiguration = IPCServerConfiguration(socketPath: configuration.ipcSocketPath)
            ipcConfiguration.agentVersion = "openalgo-agent/\(AgentVersion.current)"
            ipcConfiguration.outboxBudgetBytes = configuration.ipcOutboxBudgetBytes
            ipcConfiguration.unwritableDeadline = configuration.proxy.unwritableDeadline
            self.ipcServer = try await IPCServer.bind(
                configuration: ipcConfiguration,
                hub: hub,
                control: control,
                logger: logger,
                inheritedSocket: listeners.ipc
            )
            if let inherited = listeners.ipc {
                try ListenBacklog.restore(inherited)
            }
            let feedService = FeedService(supervisor: supervisor, hub: hub, commands: commands, logger: logger)
            let reporter = try await hubLoop.submit {
                NIOLoopBound(
                    ServiceManagerReporter(
                        hub: hub.value,
                        link: link,
                        feedLoop: feedLoop,
                        commands: commands,
                        feedCommandLimit: Self.feedCommandLimit,
                        logger: logger
                    ),
                    eventLoop: hubLoop
                )
            }.get()
            let serviceManagerService = ServiceManagerService(
                reporter: reporter,
                link: link,
                hangups: configuration.handleSignals ? await UnixSignalsSequence(trapping: .sighup) : nil,
                control: control,
                logger: logger
            )
            self.serviceGroup = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [
                        .init(service: feedService), .init(service: self.webSocketServer), .init(service: self.ipcServer),
                        .init(service: serviceManagerService),
                    ],
                    gracefulShutdownSignals: configuration.handleSignals ? [.sigterm, .sigint] : [],
                    logger: logger
                )
            )
        } catch {
            try? await feedGroup.shutdownGracefully()
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// How long one feed command may run before the watchdog stops vouching for the feed.
    static let feedCommandLimit = TimeAmount.minutes(2)

    /// Runs until SIGTERM/SIGINT or ``shutDown()``, then shuts down cleanly: local clients get a
    /// `closing` event, WebSocket clients a 1001 close, the feed is disconnected, the threads stop.
    public func run() async throws {
        // Not awaited: its subscription completes only while the feed service runs.
        Task { await self.startConfiguredRecording() }
        do {
            try await self.serviceGroup.run()
        } catch {
            await self.recordings.stopAll()
            try? await self.feedGroup.shutdownGracefully()
            try? await self.group.shutdownGracefully()
            throw error
        }
        await self.recordings.stopAll()
        try await self.feedGroup.shutdownGracefully()
        try await self.group.shutdownGracefully()
        self.logger.info("agent stopped")
    }

    /// Starts the `[record]` recording, if configured; it runs until the agent stops.
    private func startConfiguredRecording() async {
        guard let record = self.configuration.record else { return }
        let request = RecordingRequest(instruments: record.instruments, mode: record.mode, depth: record.depth, output: record.output)
        if case .failure(let error) = await self.recordings.start(request) {
            self.logger.error("the [record] recording did not start", metadata: ["error": "\(error.message)"])
        }
    }

    /// Starts the same graceful shutdown as SIGTERM; ``run()`` returns when it is done.
    public func shutDown() async {
        await self.serviceGroup.triggerGracefulShutdown()
    }
}

/// The agent's version, as `hello` and `--version` report it.
public enum AgentVersion {
    public static let current = "0.3.0"
}
