import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import ServiceLifecycle
import StreamingHub

/// The OpenAlgo-compatible WebSocket server, as a `Service`: bound by ``bind(configuration:hub:verifier:logger:)``,
/// served until graceful shutdown, when every client is closed with 1001.
///
/// All connections live on the hub's event loop, so fan-out writes are direct calls. On a
/// 2-core laptop the other core is left to the feed.
public final class WebSocketServer: Service {
    public let localAddress: SocketAddress
    private let serverChannel: any Channel
    private let proxy: NIOLoopBound<ProxyContext>
    private let logger: Logger

    private init(serverChannel: any Channel, proxy: NIOLoopBound<ProxyContext>, logger: Logger) throws {
        self.serverChannel = serverChannel
        self.proxy = proxy
        self.logger = logger
        guard let address = serverChannel.localAddress else { throw ChannelError.unknownLocalAddress }
        self.localAddress = address
    }

    /// Binds the listening socket on the hub's loop. Port 0 picks a free port (see ``localAddress``).
    ///
    /// - Parameter inheritedSocket: a listening socket the service manager passed (socket
    ///   activation), served instead of binding `host:port`, so clients that connected before the
    ///   agent started are served from its backlog. NIO listens on it again with a backlog of 128;
    ///   the caller restores the manager's.
    public static func bind(
        configuration: ProxyConfiguration,
        hub: NIOLoopBound<StreamingHub>,
        verifier: APIKeyVerifier,
        logger: Logger,
        inheritedSocket: NIOBSDSocket.Handle? = nil
    ) async throws -> WebSocketServer {
        let loop = hub.eventLoop
        let proxy = try await loop.submit {
            let context = ProxyContext(
                hub: hub.value,
                configuration: configuration,
                verifier: verifier,
                logger: logger
            )
            context.startHousekeeping()
            hub.value.addObserver(context)
            return NIOLoopBound(context, eventLoop: loop)
        }.get()
        var bootstrap = ServerBootstrap(group: loop)
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
                    try Self.configureChild(channel, proxy: proxy, configuration: configuration)
                }
            }
        let channel: any Channel
        if let inheritedSocket {
            channel = try await bootstrap.withBoundSocket(inheritedSocket).get()
        } else {
            channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        }
        let server = try WebSocketServer(serverChannel: channel, proxy: proxy, logger: logger)
        logger.info(
            "WebSocket server listening",
            metadata: [
                "address": "ws://\(server.localAddress.ipAddress ?? configuration.host):\(server.localAddress.port ?? 0)",
                "socket": "\(inheritedSocket == nil ? "own" : "inherited fd \(inheritedSocket!)")",
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
                    guard context.hasRoom else {
                        context.connectionRefused()
                        context.logger.warning(
                            "refusing client: max_clients reached",
                            metadata: ["max_clients": "\(context.configuration.maxClients)"]
                        )
                        try channel.pipeline.syncOperations.addHandler(TryAgainLaterHandler())
                        return
                    }
                    try channel.pipeline.syncOperations.addHandlers(
                        NIOWebSocketFrameAggregator(
                            minNonFinalFragmentSize: 0,
                            maxAccumulatedFrameCount: 1024,
                            maxAccumulatedFrameSize: configuration.maxMessageBytes
                        ),
                        WebSocketConnectionHandler(proxy: context)
                    )
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
        let proxy = self.proxy
        let serverChannel = self.serverChannel
        let stop: @Sendable () -> Void = {
            proxy.eventLoop.execute {
                proxy.value.shutDown()
                serverChannel.close(promise: nil)
            }
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
        try await self.proxy.eventLoop.submit { [proxy] in
            proxy.value.verifier.replaceKey(with: key)
            return proxy.value.closeAuthenticatedConnections()
        }.get()
    }

    /// Applies reloaded limits (ping and auth timing, `max_clients`, budgets, `user_id`) to the
    /// running server; the address and socket options keep their startup values.
    public func updateLimits(from configuration: ProxyConfiguration) async throws {
        try await self.proxy.eventLoop.submit { [proxy] in
            var updated = configuration
            let current = proxy.value.configuration
            updated.host = current.host
            updated.port = current.port
            updated.socketSendBufferBytes = current.socketSendBufferBytes
            updated.writeBufferWaterMark = current.writeBufferWaterMark
            updated.maxMessageBytes = current.maxMessageBytes
            updated.supportedBrokers = current.supportedBrokers
            proxy.value.configuration = updated
        }.get()
    }

    /// Connections currently served; for tests and status.
    public func connectionCount() async throws -> Int {
        try await self.proxy.eventLoop.submit { [proxy] in proxy.value.connections.count }.get()
    }

    /// Connections refused because `max_clients` were already served.
    public func refusedConnectionCount() async throws -> Int {
        try await self.proxy.eventLoop.submit { [proxy] in proxy.value.refusedConnections }.get()
    }
}
