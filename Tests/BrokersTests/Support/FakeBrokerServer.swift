import Brokers
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// A WebSocket server on 127.0.0.1 (ephemeral port) standing in for a broker in tests.
///
/// It records every upgrade request (URI and headers) and every message clients send, answers
/// pings, and lets a test push text, binary and fragmented messages, drop connections without a
/// close frame, refuse new connections, or reject the upgrade with an HTTP status (failed auth).
/// It sends nothing on its own, so a test that stops sending makes the feed stall.
final class FakeBrokerServer: Sendable {
    /// What the server does with a new connection.
    enum Admission: Sendable, Equatable {
        case accept
        /// Close the TCP connection as soon as it is accepted.
        case refuse
        /// Answer the upgrade with this status and an `x-error-message` header, then close.
        case reject(status: HTTPResponseStatus, message: String)
    }

    struct Handshake: Sendable {
        var uri: String
        var headers: HTTPHeaders
    }

    struct Received: Sendable, Equatable {
        /// Which accepted connection (0-based, in order of upgrade) sent it.
        var connection: Int
        var message: WebSocketMessage
    }

    struct State: Sendable {
        var admission = Admission.accept
        /// Sent on every new connection right behind the upgrade response, as some brokers do.
        var greeting: String?
        var handshakes: [Handshake] = []
        var received: [Received] = []
        var connections: [any Channel] = []
        var openConnections = 0
        var pingsAnswered = 0
        var pongsReceived = 0
        var refusedConnections = 0
    }

    private let state: NIOLockedValueBox<State>
    private let serverChannel: any Channel

    private init(serverChannel: any Channel, state: NIOLockedValueBox<State>) {
        self.serverChannel = serverChannel
        self.state = state
    }

    static func start() async throws -> FakeBrokerServer {
        let state = NIOLockedValueBox(State())
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try Self.configure(channel, state: state) }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return FakeBrokerServer(serverChannel: channel, state: state)
    }

    var port: Int { self.serverChannel.localAddress!.port! }

    func url(_ pathAndQuery: String = "/") -> String { "ws://127.0.0.1:\(self.port)\(pathAndQuery)" }

    var snapshot: State { self.state.withLockedValue { $0 } }

    func setAdmission(_ admission: Admission) {
        self.state.withLockedValue { $0.admission = admission }
    }

    func setGreeting(_ text: String?) {
        self.state.withLockedValue { $0.greeting = text }
    }

    /// Sends to the most recent connection.
    func send(_ message: WebSocketMessage) {
        guard let channel = self.state.withLockedValue({ $0.connections.last }) else { return }
        switch message {
        case .text(let text): channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text)), promise: nil)
        case .binary(let bytes): channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .binary, data: bytes), promise: nil)
        }
    }

    /// Sends `parts` as one text message split over a first frame and continuation frames.
    func sendFragmented(text parts: [String]) {
        guard let channel = self.state.withLockedValue({ $0.connections.last }) else { return }
        for (index, part) in parts.enumerated() {
            let frame = WebSocketFrame(fin: index == parts.count - 1, opcode: index == 0 ? .text : .continuation, data: ByteBuffer(string: part))
            channel.write(frame, promise: nil)
        }
        channel.flush()
    }

    /// Sends a ping to the most recent connection; the client's pong is counted in `pongsReceived`.
    func sendPing() {
        guard let channel = self.state.withLockedValue({ $0.connections.last }) else { return }
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer(string: "are you there")), promise: nil)
    }

    /// Closes every open connection abruptly: no close frame, as when a network path dies.
    func dropConnections() {
        for channel in self.state.withLockedValue({ $0.connections }) { channel.close(promise: nil) }
    }

    /// Sends a close frame with `code` on every open connection.
    func closeConnections(code: WebSocketErrorCode) {
        for channel in self.state.withLockedValue({ $0.connections }) {
            var payload = ByteBuffer()
            payload.write(webSocketErrorCode: code)
            channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload), promise: nil)
        }
    }

    func shutdown() async {
        self.dropConnections()
        try? await self.serverChannel.close()
    }

    /// Polls until `condition` holds; throws after `timeout` (generous: the machine is shared).
    func wait(
        for description: String,
        timeout: Duration = .seconds(20),
        until condition: (State) -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition(self.snapshot) {
            guard ContinuousClock.now < deadline else { throw TimedOut(what: description) }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits until `count` connections have been upgraded in total. A client sees the upgrade
    /// response a moment before the server has set the connection up, so tests that push to or
    /// drop a connection wait for this first.
    func waitForConnections(_ count: Int) async throws {
        try await self.wait(for: "\(count) connection(s)") { $0.connections.count >= count }
    }

    /// The messages clients sent, in order.
    var receivedMessages: [WebSocketMessage] { self.snapshot.received.map(\.message) }

    private static func configure(_ channel: any Channel, state: NIOLockedValueBox<State>) throws {
        let (admission, greeting) = state.withLockedValue { ($0.admission, $0.greeting) }
        if admission == .refuse {
            state.withLockedValue { $0.refusedConnections += 1 }
            channel.close(promise: nil)
            return
        }
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: 1 << 20,
            automaticErrorHandling: true,
            shouldUpgrade: { channel, head in
                state.withLockedValue { $0.handshakes.append(Handshake(uri: head.uri, headers: head.headers)) }
                if case .reject = admission { return channel.eventLoop.makeSucceededFuture(nil) }
                return channel.eventLoop.makeSucceededFuture(HTTPHeaders())
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    let index = state.withLockedValue { state in
                        state.connections.append(channel)
                        state.openConnections += 1
                        return state.connections.count - 1
                    }
                    channel.closeFuture.whenComplete { _ in state.withLockedValue { $0.openConnections -= 1 } }
                    try channel.pipeline.syncOperations.addHandlers(
                        NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 64, maxAccumulatedFrameSize: 1 << 20),
                        RecordingHandler(connection: index, state: state)
                    )
                    if let greeting {
                        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: greeting)), promise: nil)
                    }
                }
            }
        )
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
        if case .reject(let status, let message) = admission {
            try channel.pipeline.syncOperations.addHandler(RejectingHandler(status: status, message: message))
        }
    }
}

struct TimedOut: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(self.what)" }
}

/// Records a connection's messages and answers its pings and close.
private final class RecordingHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let connection: Int
    let state: NIOLockedValueBox<FakeBrokerServer.State>

    init(connection: Int, state: NIOLockedValueBox<FakeBrokerServer.State>) {
        self.connection = connection
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            let message = WebSocketMessage.text(String(buffer: frame.unmaskedData))
            self.state.withLockedValue { $0.received.append(.init(connection: self.connection, message: message)) }
        case .binary:
            let message = WebSocketMessage.binary(frame.unmaskedData)
            self.state.withLockedValue { $0.received.append(.init(connection: self.connection, message: message)) }
        case .ping:
            self.state.withLockedValue { $0.pingsAnswered += 1 }
            context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .pong:
            self.state.withLockedValue { $0.pongsReceived += 1 }
        case .connectionClose:
            let channel = context.channel
            context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: frame.unmaskedData)))
                .whenComplete { _ in channel.close(promise: nil) }
        default:
            context.close(promise: nil)
        }
    }
}

/// Answers a request the server declined to upgrade with a fixed status, as a broker does on bad credentials.
private final class RejectingHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let status: HTTPResponseStatus
    let message: String

    init(status: HTTPResponseStatus, message: String) {
        self.status = status
        self.message = message
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = self.unwrapInboundIn(data) else { return }
        let body = ByteBuffer(string: "{\"error\":\"\(self.message)\"}")
        let head = HTTPResponseHead(
            version: .http1_1,
            status: self.status,
            headers: ["x-error-message": self.message, "content-length": "\(body.readableBytes)", "connection": "close"]
        )
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
