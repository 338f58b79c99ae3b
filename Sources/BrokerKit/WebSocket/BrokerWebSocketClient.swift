import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// Receives what a ``BrokerWebSocketConnection`` reads, on the connection's event loop.
///
/// A delegate rather than an `AsyncSequence`: a busy broker socket delivers thousands of
/// messages a second, and calling the decoder right where NIO hands over the frame avoids a task
/// hop and a continuation resume per message. Run the delegate on the event loop that owns the
/// decoder's state (``BrokerWebSocketClient/connect(_:configuration:on:delegate:)`` puts the socket on
/// that loop) and no locks are needed either.
///
/// Ordering: callbacks on the connect future run before the delegate's first call (data the
/// broker sends right behind the upgrade response is held until then), so a driver can record
/// the connection before its first message arrives. If the connect fails, the delegate is never
/// called.
package protocol BrokerWebSocketDelegate: Sendable {
    /// A complete text or binary message (fragments already joined).
    func webSocket(_ connection: BrokerWebSocketConnection, didReceive message: WebSocketMessage)
    /// A ping or pong from the server; pings are answered by the client before this is called.
    /// Some brokers count these as signs of life.
    func webSocket(_ connection: BrokerWebSocketConnection, didReceiveControlFrame opcode: WebSocketOpcode)
    /// The connection is closed: `error` is `nil` after ``BrokerWebSocketConnection/close()``,
    /// and says why otherwise. Called once.
    func webSocket(_ connection: BrokerWebSocketConnection, didCloseWith error: BrokerWebSocketError?)
}

extension BrokerWebSocketDelegate {
    package func webSocket(_ connection: BrokerWebSocketConnection, didReceiveControlFrame opcode: WebSocketOpcode) {}
}

/// Opens WebSocket connections to brokers: TCP, TLS for `wss://` (certificates verified against
/// the system's trust roots, SNI sent), the HTTP/1.1 upgrade with extra headers, then framing,
/// fragment reassembly, ping answers and an optional keepalive.
package enum BrokerWebSocketClient {
    /// How the client talks to one broker.
    package struct Configuration: Sendable {
        /// Covers TCP connect, TLS handshake and upgrade together.
        package var connectTimeout: TimeAmount
        /// The largest message accepted, after joining fragments; a larger one closes the
        /// connection with 1009.
        package var maximumMessageSize: Int
        /// What the client sends on its own to keep the connection alive.
        package var keepalive: Keepalive
        /// TLS settings for `wss://`; the default verifies certificates against the system roots.
        package var tls: TLSConfiguration

        package init(
            connectTimeout: TimeAmount = .seconds(10),
            maximumMessageSize: Int = 4 << 20,
            keepalive: Keepalive = .none,
            tls: TLSConfiguration = .makeClientConfiguration()
        ) {
            self.connectTimeout = connectTimeout
            self.maximumMessageSize = maximumMessageSize
            self.keepalive = keepalive
            self.tls = tls
        }
    }

    /// What to send to keep a connection alive, since brokers differ (spec §0.3).
    package enum Keepalive: Sendable, Equatable {
        case none
        /// A text message every `interval` (Angel One's documented `"ping"`).
        case text(String, every: TimeAmount)
        /// A WebSocket ping every `interval`; a ping still unanswered when the next is due closes
        /// the connection with ``BrokerWebSocketError/Kind/pingTimeout``.
        case ping(every: TimeAmount)
    }

    /// Connects and upgrades; the connection's socket runs on `eventLoop`, where `delegate` is called.
    package static func connect(
        _ request: BrokerWebSocketRequest,
        configuration: Configuration = Configuration(),
        on eventLoop: any EventLoop,
        delegate: some BrokerWebSocketDelegate
    ) -> EventLoopFuture<BrokerWebSocketConnection> {
        let url = request.url
        let sslContext: NIOSSLContext?
        do {
            sslContext = url.isSecure ? try NIOSSLContext(configuration: configuration.tls) : nil
        } catch {
            return eventLoop.makeFailedFuture(BrokerWebSocketError.transport(error))
        }
        let promise = eventLoop.makePromise(of: BrokerWebSocketConnection.self)
        let timeout = eventLoop.scheduleTask(in: configuration.connectTimeout) {
            promise.fail(BrokerWebSocketError.connectTimeout(url, after: configuration.connectTimeout))
        }
        promise.futureResult.whenComplete { _ in timeout.cancel() }

        var headers = HTTPHeaders([("Host", url.hostHeader)])
        headers.add(contentsOf: request.headers)
        headers.replaceOrAdd(name: "Content-Length", value: "0")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.target, headers: headers)

        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    if let sslContext {
                        let isAddressLiteral = (try? SocketAddress(ipAddress: url.host, port: 0)) != nil
                        try operations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: isAddressLiteral ? nil : url.host))
                    }
                    let upgrader = NIOTypedWebSocketClientUpgrader<UpgradeOutcome>(
                        maxFrameSize: configuration.maximumMessageSize,
                        enableAutomaticErrorHandling: true,
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                // The peer may have closed while the HTTP handlers were being removed;
                                // a handler added now would never see the close, so fail the connect instead.
                                guard channel.isActive else { throw BrokerWebSocketError.closedDuringHandshake(url) }
                                let connection = BrokerWebSocketConnection(channel: channel)
                                try channel.pipeline.syncOperations.addHandlers(
                                    NIOWebSocketFrameAggregator(
                                        minNonFinalFragmentSize: 0,
                                        maxAccumulatedFrameCount: .max,
                                        maxAccumulatedFrameSize: configuration.maximumMessageSize
                                    ),
                                    BrokerWebSocketHandler(connection: connection, delegate: delegate, keepalive: configuration.keepalive)
                                )
                                return .upgraded(connection)
                            }
                        }
                    )
                    let upgrade = NIOTypedHTTPClientUpgradeConfiguration<UpgradeOutcome>(
                        upgradeRequestHead: head,
                        upgraders: [upgrader],
                        notUpgradingCompletionHandler: { channel in
                            channel.eventLoop.makeCompletedFuture {
                                let rejection = channel.eventLoop.makePromise(of: BrokerWebSocketError.self)
                                try channel.pipeline.syncOperations.addHandler(UpgradeRejectionHandler(url: url, rejection: rejection))
                                return .rejected(rejection.futureResult)
                            }
                        }
                    )
                    var pipeline = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: upgrade)
                    // Brokers may send right behind the 101 (in the same TCP read); NIO's default drops those bytes.
                    pipeline.leftOverBytesStrategy = .forwardBytes
                    let outcome = try operations.configureUpgradableHTTPClientPipeline(configuration: pipeline)
                    outcome.whenComplete { result in
                        switch result {
                        case .success(.upgraded(let connection)):
                            promise.succeed(connection)
                        case .success(.rejected(let rejection)):
                            rejection.whenSuccess { promise.fail($0) }
                        case .failure(let error) where channel.isActive:
                            promise.fail(BrokerWebSocketError.transport(error))
                        case .failure:
                            // The connection closed, or never opened (refused): the connect result
                            // below reports which. Failing here first would call a refused
                            // connection "closed during the handshake", depending on callback order.
                            break
                        }
                    }
                    return ()
                }
            }
        bootstrap.connect(host: url.host, port: url.port).whenComplete { result in
            switch result {
            case .success(let channel):
                promise.futureResult.whenFailure { _ in channel.close(promise: nil) }
                channel.closeFuture.whenComplete { _ in promise.fail(BrokerWebSocketError.closedDuringHandshake(url)) }
            case .failure(let error):
                promise.fail(BrokerWebSocketError.transport(error))
            }
        }
        return promise.futureResult
    }

    /// Connects and upgrades; see ``connect(_:configuration:on:delegate:)``.
    package static func connect(
        _ request: BrokerWebSocketRequest,
        configuration: Configuration = Configuration(),
        on eventLoop: any EventLoop,
        delegate: some BrokerWebSocketDelegate
    ) async throws(BrokerWebSocketError) -> BrokerWebSocketConnection {
        do {
            return try await (Self.connect(request, configuration: configuration, on: eventLoop, delegate: delegate) as EventLoopFuture).get()
        } catch let error as BrokerWebSocketError {
            throw error
        } catch {
            throw .transport(error)
        }
    }

    private enum UpgradeOutcome: Sendable {
        case upgraded(BrokerWebSocketConnection)
        case rejected(EventLoopFuture<BrokerWebSocketError>)
    }
}

/// An open broker socket. Sending is safe from any thread (off the event loop it costs a hop);
/// on the event loop it writes straight through.
package final class BrokerWebSocketConnection: Sendable {
    private let channel: any Channel

    init(channel: any Channel) {
        self.channel = channel
    }

    /// The loop the socket and the delegate run on.
    package var eventLoop: any EventLoop { self.channel.eventLoop }

    /// Completes when the socket is closed.
    package var closeFuture: EventLoopFuture<Void> { self.channel.closeFuture }

    /// Sends one message.
    package func send(_ message: WebSocketMessage) {
        self.channel.writeAndFlush(Self.frame(message), promise: nil)
    }

    /// Sends messages in order with one flush (a subscription replay after reconnect).
    package func send(_ messages: [WebSocketMessage]) {
        guard !messages.isEmpty else { return }
        if self.channel.eventLoop.inEventLoop {
            for message in messages { self.channel.write(Self.frame(message), promise: nil) }
            self.channel.flush()
        } else {
            self.channel.eventLoop.execute { [self] in self.send(messages) }
        }
    }

    package func send(text: String) { self.send(.text(text)) }

    package func send(binary: ByteBuffer) { self.send(.binary(binary)) }

    /// Sends a close frame (1000) and closes the socket; the delegate then sees a `nil` error.
    @discardableResult
    package func close() -> EventLoopFuture<Void> {
        let promise = self.channel.eventLoop.makePromise(of: Void.self)
        self.channel.triggerUserOutboundEvent(CloseRequest(), promise: nil)
        self.channel.closeFuture.cascade(to: promise)
        return promise.futureResult
    }

    /// Closes the socket at once, without a close frame (what a dead peer gets).
    package func abort() {
        self.channel.close(promise: nil)
    }

    private static func frame(_ message: WebSocketMessage) -> WebSocketFrame {
        switch message {
        case .text(let text):
            return WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: text))
        case .binary(let bytes):
            return WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: bytes)
        }
    }
}

/// The user event ``BrokerWebSocketConnection/close()`` sends down the pipeline.
private struct CloseRequest: Sendable {}

/// Turns frames into delegate calls, answers pings and close frames, and runs the keepalive.
private final class BrokerWebSocketHandler<Delegate: BrokerWebSocketDelegate>: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let connection: BrokerWebSocketConnection
    private let delegate: Delegate
    private let keepalive: BrokerWebSocketClient.Keepalive
    private var keepaliveTask: RepeatedTask?
    private var awaitingPong = false
    /// Why the connection is ending, once known; reported when the channel goes inactive.
    private var closeError: BrokerWebSocketError?
    private var closing = false
    private var reported = false

    init(connection: BrokerWebSocketConnection, delegate: Delegate, keepalive: BrokerWebSocketClient.Keepalive) {
        self.connection = connection
        self.delegate = delegate
        self.keepalive = keepalive
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let interval: TimeAmount
        switch self.keepalive {
        case .none: return
        case .text(_, let every), .ping(let every): interval = every
        }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.keepaliveTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            handler.value.sendKeepalive(context: boundContext.value)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.keepaliveTask?.cancel()
        self.keepaliveTask = nil
    }

    private func sendKeepalive(context: ChannelHandlerContext) {
        switch self.keepalive {
        case .none:
            return
        case .text(let text, _):
            context.writeAndFlush(
                self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: text))),
                promise: nil
            )
        case .ping(let interval):
            if self.awaitingPong {
                self.fail(context: context, .pingTimeout(interval))
                return
            }
            self.awaitingPong = true
            let payload = context.channel.allocator.buffer(string: "openalgo")
            context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, maskKey: .random(), data: payload)), promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.opcode {
        case .binary:
            self.delegate.webSocket(self.connection, didReceive: .binary(frame.unmaskedData))
        case .text:
            self.delegate.webSocket(self.connection, didReceive: .text(String(buffer: frame.unmaskedData)))
        case .ping:
            if !self.closing {
                let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
                context.writeAndFlush(self.wrapOutboundOut(pong), promise: nil)
            }
            self.delegate.webSocket(self.connection, didReceiveControlFrame: .ping)
        case .pong:
            self.awaitingPong = false
            self.delegate.webSocket(self.connection, didReceiveControlFrame: .pong)
        case .connectionClose:
            var payload = frame.unmaskedData
            let code = payload.readWebSocketErrorCode()
            let reason = payload.readString(length: payload.readableBytes) ?? ""
            if !self.closing {
                self.closeError = .closedByServer(code: code, reason: reason)
                self.closing = true
                var echo = context.channel.allocator.buffer(capacity: 2)
                echo.write(webSocketErrorCode: code ?? .normalClosure)
                let reply = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: echo)
                self.writeThenClose(reply, context: context)
            } else {
                context.close(promise: nil)
            }
        default:
            self.fail(context: context, .protocolViolation("unexpected opcode \(frame.opcode)"))
        }
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is CloseRequest else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        promise?.succeed()
        guard !self.closing else { return }
        self.closing = true
        var payload = context.channel.allocator.buffer(capacity: 2)
        payload.write(webSocketErrorCode: .normalClosure)
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: payload)
        self.writeThenClose(frame, context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOWebSocketError || error is NIOWebSocketFrameAggregator.Error {
            self.fail(context: context, .protocolViolation("\(error)"))
        } else {
            self.fail(context: context, .transport(error))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.keepaliveTask?.cancel()
        self.keepaliveTask = nil
        if !self.reported {
            self.reported = true
            let error: BrokerWebSocketError? = self.closing && self.closeError == nil ? nil : (self.closeError ?? .connectionLost)
            self.delegate.webSocket(self.connection, didCloseWith: error)
        }
        context.fireChannelInactive()
    }

    private func writeThenClose(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        let channel = context.channel
        context.writeAndFlush(self.wrapOutboundOut(frame)).whenComplete { _ in channel.close(promise: nil) }
    }

    private func fail(context: ChannelHandlerContext, _ error: BrokerWebSocketError) {
        if self.closeError == nil && !self.closing { self.closeError = error }
        self.closing = true
        context.close(promise: nil)
    }
}

/// Reads the response to a refused upgrade, so the error can carry its status and the broker's
/// explanation (Angel One puts it in `x-error-message`, others in a short body).
private final class UpgradeRejectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private static let maximumBodyBytes = 512
    private let url: WebSocketURL
    private let rejection: EventLoopPromise<BrokerWebSocketError>
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()

    init(url: WebSocketURL, rejection: EventLoopPromise<BrokerWebSocketError>) {
        self.url = url
        self.rejection = rejection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body(var bytes):
            let room = Self.maximumBodyBytes - self.body.readableBytes
            if room > 0, let slice = bytes.readSlice(length: min(room, bytes.readableBytes)) { self.body.writeImmutableBuffer(slice) }
        case .end:
            self.finish(context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.finish(context: context)
        context.fireChannelInactive()
    }

    private func finish(context: ChannelHandlerContext) {
        guard let head = self.head else {
            self.rejection.succeed(.closedDuringHandshake(self.url))
            return
        }
        self.head = nil
        let explanation = head.headers.first(name: "x-error-message") ?? trimmed(String(buffer: self.body))
        self.rejection.succeed(
            .upgradeRejected(
                self.url,
                status: Int(head.status.code),
                reason: head.status.reasonPhrase,
                detail: explanation.isEmpty ? nil : explanation
            )
        )
        context.close(promise: nil)
    }
}

private func trimmed(_ text: String) -> String {
    var slice = Substring(text)
    while let first = slice.first, first.isWhitespace { slice = slice.dropFirst() }
    while let last = slice.last, last.isWhitespace { slice = slice.dropLast() }
    return String(slice)
}
