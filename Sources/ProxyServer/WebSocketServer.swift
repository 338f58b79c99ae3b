import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import ServiceLifecycle
import StreamingHub

/// The OpenAlgo-compatible WebSocket server, as a `Service`: bound by ``bind(configuration:hub:verifier:logger:clientLoops:inheritedSocket:)``,
/// served until graceful shutdown, when every client is closed with 1001.
///
/// Connections are spread over the client event loops, so that with many clients the writes of
/// one tick go out on several cores at once; the hub hands each loop its frames in one task per
/// batch of ticks (see ``StreamingHub``).
public final class WebSocketServer: Service {
    public let localAddress: SocketAddress
    private let serverChannel: any Channel
    private let loops: ProxyLoops
    private let hub: NIOLoopBound<StreamingHub>
    private let observer: NIOLoopBound<ProxyHubObserver>
    private let logger: Logger

    private init(
        serverChannel: any Channel,
        loops: ProxyLoops,
        hub: NIOLoopBound<StreamingHub>,
        observer: NIOLoopBound<ProxyHubObserver>,
        logger: Logger
    ) throws {
        self.serverChannel = serverChannel
        self.hub = hub
        self.loops = loops
        self.observer = observer
        self.logger = logger
        guard let address = serverChannel.localAddress else { throw ChannelError.unknownLocalAddress }
        self.localAddress = address
    }

    /// Binds the listening socket on the hub's loop. Port 0 picks a free port (see ``localAddress``).
    ///
    /// - Parameters:
    ///   - clientLoops: the loops connections are spread over; by default the hub's loop alone.
    ///   - inheritedSocket: a listening socket the service manager passed (socket activation),
    ///     served instead of binding `host:port`, so clients that connected before the agent
    ///     started are served from its backlog. NIO listens on it again with a backlog of 128;
    ///     the caller restores the manager's.
    public static func bind(
        configuration: ProxyConfiguration,
        hub: NIOLoopBound<StreamingHub>,
        verifier: APIKeyVerifier,
        logger: Logger,
        clientLoops: (any EventLoopGroup)? = nil,
        inheritedSocket: NIOBSDSocket.Handle? = nil
    ) async throws -> WebSocketServer {
        let hubLoop = hub.eventLoop
        let childGroup: any EventLoopGroup = clientLoops ?? hubLoop
        let connector = try await hubLoop.submit { hub.value.connector }.get()
        let slots = ConnectionSlots()
        var contexts: [NIOLoopBound<ProxyContext>] = []
        for loop in childGroup.makeIterator() {
            contexts.append(
                try await loop.submit {
                    let context = ProxyContext(
                        hub: connector,
                        eventLoop: loop,
                        configuration: configuration,
                        verifier: verifier,
                        slots: slots,
                        logger: logger
                    )
                    context.startHousekeeping()
                    return NIOLoopBound(context, eventLoop: loop)
                }.get()
            )
        }
        let loops = ProxyLoops(contexts)
        let observer = try await hubLoop.submit {
            let observer = ProxyHubObserver(loops: loops)
            hub.value.addObserver(observer)
            return NIOLoopBound(observer, eventLoop: hubLoop)
        }.get()
        var bootstrap = ServerBootstrap(group: hubLoop, childGroup: childGroup)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: configuration.writeBufferWaterMark)
        if configuration.socketSendBufferBytes > 0 {
            bootstrap = bootstrap.childChannelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(configuration.socketSendBufferBytes))
        }
        bootstrap =
            bootstrap
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configureChild(channel, proxy: loops.context(for: channel.eventLoop), configuration: configuration)
                }
            }
        let channel: any Channel
        do {
            if let inheritedSocket {
                channel = try await bootstrap.withBoundSocket(inheritedSocket).get()
            } else {
                channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
            }
        } catch {
            hubLoop.execute { hub.value.removeObserver(observer.value) }
            loops.executeOnEveryLoop { $0.shutDown() }
            throw error
        }
        let server = try WebSocketServer(serverChannel: channel, loops: loops, hub: hub, observer: observer, logger: logger)
        logger.info(
            "WebSocket server listening",
            metadata: [
                "address": "ws://\(server.localAddress.ipAddress ?? configuration.host):\(server.localAddress.port ?? 0)",
                "socket": "\(inheritedSocket == nil ? "own" : "inherited fd \(inheritedSocket!)")",
                "event_loops": "\(contexts.count)",
            ]
        )
        return server
    }

    private static func configureChild(
        _ channel: any Channel,
        proxy: NIOLoopBound<ProxyContext>,
        configuration: ProxyConfiguration
    ) throws {
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: configuration.maxMessageBytes,
            automaticErrorHandling: false,
            shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    let context = proxy.value
                    guard context.admitConnection() else {
                        context.logger.warning(
                            "refusing client: max_clients reached",
                            metadata: ["max_clients": "\(context.configuration.maxClients)"]
                        )
                        try channel.pipeline.syncOperations.addHandler(TryAgainLaterHandler())
                        return
                    }
                    let gateway = PreframedWriteGateway()
                    do {
                        try channel.pipeline.syncOperations.addHandler(gateway, position: .first)
                        try channel.pipeline.syncOperations.addHandlers(
                            NIOWebSocketFrameAggregator(
                                minNonFinalFragmentSize: 0,
                                maxAccumulatedFrameCount: 1024,
                                maxAccumulatedFrameSize: configuration.maxMessageBytes
                            ),
                            WebSocketConnectionHandler(proxy: context, gateway: gateway)
                        )
                    } catch {
                        // The connection handler was not added, so it will never give its place back.
                        context.admissionFailed()
                        throw error
                    }
                }
            }
        )
        let refusal = UpgradeRequiredHandler()
        let boundRefusal = NIOLoopBound(refusal, eventLoop: channel.eventLoop)
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withServerUpgrade: (
                upgraders: [upgrader],
                completionHandler: { context in
                    context.pipeline.syncOperations.removeHandler(boundRefusal.value, promise: nil)
                }
            )
        )
        try channel.pipeline.syncOperations.addHandler(refusal)
    }

    /// Serves until graceful shutdown (or cancellation), then closes every client with 1001 and stops listening.
    public func run() async throws {
        let loops = self.loops
        let observer = self.observer
        let serverChannel = self.serverChannel
        let hub = self.hub
        let stop: @Sendable () -> Void = {
            hub.eventLoop.execute {
                hub.value.removeObserver(observer.value)
                serverChannel.close(promise: nil)
            }
            loops.executeOnEveryLoop { $0.shutDown() }
        }
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await serverChannel.closeFuture.get()
            } onGracefulShutdown: {
                stop()
            }
        } onCancel: {
            stop()
        }
        self.logger.info("WebSocket server stopped")
    }

    /// Replaces the API key and closes the connections that authenticated with the old one (1008).
    ///
    /// - Returns: how many connections were closed.
    public func rotateAPIKey(to key: String) async throws -> Int {
        try await self.loops.onEveryLoop { context in
            context.verifier.replaceKey(with: key)
            return context.closeAuthenticatedConnections()
        }.reduce(0, +)
    }

    /// Applies reloaded limits (ping and auth timing, `max_clients`, budgets, `user_id`) to the
    /// running server; the address and socket options keep their startup values.
    public func updateLimits(from configuration: ProxyConfiguration) async throws {
        _ = try await self.loops.onEveryLoop { context in
            var updated = configuration
            let current = context.configuration
            updated.host = current.host
            updated.port = current.port
            updated.socketSendBufferBytes = current.socketSendBufferBytes
            updated.writeBufferWaterMark = current.writeBufferWaterMark
            updated.maxMessageBytes = current.maxMessageBytes
            updated.supportedBrokers = current.supportedBrokers
            context.configuration = updated
        }
    }

    /// Connections currently served; for tests and status.
    public func connectionCount() async throws -> Int {
        try await self.loops.onEveryLoop { $0.connections.count }.reduce(0, +)
    }

    /// Connections refused because `max_clients` were already served.
    public func refusedConnectionCount() async throws -> Int {
        try await self.loops.onEveryLoop { $0.refusedConnections }.reduce(0, +)
    }
}
