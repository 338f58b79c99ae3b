import BrokerKit
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// A WebSocket server on 127.0.0.1 (ephemeral port) standing in for a broker in tests.
///
/// It records every upgrade request (URI and headers) and every message clients send, answers
/// pings, and lets a test push text, binary and fragmented messages, drop connections without a
/// close frame, refuse new connections, or reject the upgrade with an HTTP status (failed auth).
/// It sends nothing on its own, so a test that stops sending makes the feed stall.
public final class FakeBrokerServer: Sendable {
    /// What the server does with a new connection.
    public enum Admission: Sendable, Equatable {
        case accept
        /// Close the TCP connection as soon as it is accepted.
        case refuse
        /// Complete the upgrade (subject to the upgrade policy), then close the connection at once:
        /// a broker that accepts and drops.
        case acceptThenDrop
        /// Answer the upgrade with this status and an `x-error-message` header, then close.
        case reject(status: HTTPResponseStatus, message: String)
        /// Answer the upgrade with this status and body (a broker's own error document), then close.
        case respond(status: HTTPResponseStatus, contentType: String, body: String)
    }

    public struct Handshake: Sendable {
        public var uri: String
        public var headers: HTTPHeaders

        /// The query parameters of ``uri``, percent-decoded.
        public var queryItems: [String: String] {
            guard let query = self.uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return [:] }
            var items: [String: String] = [:]
            for pair in query.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                items[percentDecoded(parts[0])] = parts.count > 1 ? percentDecoded(parts[1]) : ""
            }
            return items
        }
    }

    public struct Received: Sendable, Equatable {
        /// Which accepted connection (0-based, in order of upgrade) sent it.
        public var connection: Int
        package var message: WebSocketMessage
    }

    public struct State: Sendable {
        public var admission = Admission.accept
        /// Decides, per upgrade request, whether to accept it (checked after ``admission`` accepts
        /// the TCP connection): a broker that validates credentials in the URL or headers.
        public var upgradePolicy: (@Sendable (Handshake) -> Admission)?
        /// Told of every message a client sends, after it is recorded (protocol-aware fakes
        /// track subscriptions with it).
        public var messageObserver: (@Sendable (Received) -> Void)?
        /// Sent on every new connection right behind the upgrade response, as some brokers do.
        public var greeting: String?
        public var handshakes: [Handshake] = []
        public var received: [Received] = []
        public var connections: [any Channel] = []
        public var openConnections = 0
        public var pingsAnswered = 0
        public var pongsReceived = 0
        public var refusedConnections = 0
        public var rejectedUpgrades = 0
    }

    private let state: NIOLockedValueBox<State>
    private let serverChannel: any Channel

    private init(serverChannel: any Channel, state: NIOLockedValueBox<State>) {
        self.serverChannel = serverChannel
        self.state = state
    }

    /// - Parameter tls: serve `wss://` with this configuration (e.g. ``TestCertificates/serverConfiguration()``).
    public static func start(tls: TLSConfiguration? = nil) async throws -> FakeBrokerServer {
        let state = NIOLockedValueBox(State())
        let sslContext = try tls.map { try NIOSSLContext(configuration: $0) }
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                    try Self.configure(channel, state: state)
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return FakeBrokerServer(serverChannel: channel, state: state)
    }

    public var port: Int { self.serverChannel.localAddress!.port! }

    public func url(_ pathAndQuery: String = "/") -> String { "ws://127.0.0.1:\(self.port)\(pathAndQuery)" }

    public var snapshot: State { self.state.withLockedValue { $0 } }

    public func setAdmission(_ admission: Admission) {
        self.state.withLockedValue { $0.admission = admission }
    }

    public func setGreeting(_ text: String?) {
        self.state.withLockedValue { $0.greeting = text }
    }

    public func setUpgradePolicy(_ policy: (@Sendable (Handshake) -> Admission)?) {
        self.state.withLockedValue { $0.upgradePolicy = policy }
    }

    public func setMessageObserver(_ observer: (@Sendable (Received) -> Void)?) {
        self.state.withLockedValue { $0.messageObserver = observer }
    }

    /// Sends to the most recent connection.
    package func send(_ message: WebSocketMessage) {
        guard let channel = self.state.withLockedValue({ $0.connections.last }) else { return }
        Self.write(message, to: channel)
    }

    /// Sends to connection `index` (0-based, in order of upgrade) if it is still open.
    package func send(_ message: WebSocketMessage, toConnection index: Int) {
        guard let channel = self.state.withLockedValue({ $0.connections.indices.contains(index) ? $0.connections[index] : nil }),
            channel.isActive
        else { return }
        Self.write(message, to: channel)
    }

    private static func write(_ message: WebSocketMessage, to channel: any Channel) {
        switch message {
        case .text(let text): channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text)), promise: nil)
        case .binary(let bytes): channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .binary, data: bytes), promise: nil)
        }
    }

    /// Sends `parts` as one text message split over a first frame and continuation frames.
    public func sendFragmented(text parts: [String]) {
        guard let channel = self.state.withLockedValue({ $0.connections.last }) else { return }
        for (index, part) in parts.enumerated() {
            let frame = WebSocketFrame(fin: index == parts.count - 1, opcode: index == 0 ? .text : .continuation, data: ByteBuffer(string: part))
            channel.write(frame, promise: nil)
        }
        channel.flush()
    }

    /// Sends a ping to the most recent connection; the client's pong is counted in `pongsReceived`.
    public func sendPing() {
        guard let channel = self.state.withLockedValue({ $0.connections.last }) else { return }
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer(string: "are you there")), promise: nil)
    }

    /// Closes every open connection abruptly: no close frame, as when a network path dies.
    public func dropConnections() {
        for channel in self.state.withLockedValue({ $0.connections }) { channel.close(promise: nil) }
    }

    /// Closes connection `index` (0-based, in order of upgrade) abruptly, leaving the others open.
    public func dropConnection(_ index: Int) {
        let channel = self.state.withLockedValue { $0.connections.indices.contains(index) ? $0.connections[index] : nil }
        channel?.close(promise: nil)
    }

    /// Sends a close frame with `code` on every open connection.
    public func closeConnections(code: WebSocketErrorCode) {
        for channel in self.state.withLockedValue({ $0.connections }) {
            var payload = ByteBuffer()
            payload.write(webSocketErrorCode: code)
            channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload), promise: nil)
        }
    }

    public func shutdown() async {
        self.dropConnections()
        try? await self.serverChannel.close()
    }

    /// Polls until `condition` holds; throws after `timeout` (generous: the machine is shared).
    public func wait(
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
    public func waitForConnections(_ count: Int) async throws {
        try await self.wait(for: "\(count) connection(s)") { $0.connections.count >= count }
    }

    /// The messages clients sent, in order.
    package var receivedMessages: [WebSocketMessage] { self.snapshot.received.map(\.message) }

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
                let handshake = Handshake(uri: head.uri, headers: head.headers)
                let decision = Self.decide(handshake, admission: admission, state: state)
                state.withLockedValue {
                    $0.handshakes.append(handshake)
                    if decision != .accept { $0.rejectedUpgrades += 1 }
                }
                return channel.eventLoop.makeSucceededFuture(decision == .accept ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    let index = state.withLockedValue { state in
                        state.connections.append(channel)
                        state.openConnections += 1
                        return state.connections.count - 1
                    }
                    channel.closeFuture.whenComplete { _ in state.withLockedValue { $0.openConnections -= 1 } }
                    channel.pipeline.syncOperations.removeHandler(name: DeclinedUpgradeHandler.name, promise: nil)
                    try channel.pipeline.syncOperations.addHandlers(
                        NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 64, maxAccumulatedFrameSize: 1 << 20),
                        RecordingHandler(connection: index, state: state)
                    )
                    if let greeting {
                        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: greeting)), promise: nil)
                    }
                    if admission == .acceptThenDrop {
                        channel.close(promise: nil)
                    }
                }
            }
        )
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
        try channel.pipeline.syncOperations.addHandler(DeclinedUpgradeHandler(admission: admission, state: state), name: DeclinedUpgradeHandler.name)
    }

    /// What to do with an upgrade request: the fixed admission first, then the policy.
    fileprivate static func decide(_ handshake: Handshake, admission: Admission, state: NIOLockedValueBox<State>) -> Admission {
        guard admission == .accept || admission == .acceptThenDrop else { return admission }
        let policy = state.withLockedValue { $0.upgradePolicy }
        return policy?(handshake) ?? .accept
    }
}

public struct TimedOut: Error, CustomStringConvertible {
    public var what: String

    public init(what: String) {
        self.what = what
    }

    public var description: String { "timed out waiting for \(self.what)" }
}

/// Polls `condition` every 10 ms until it holds; throws ``TimedOut`` after `timeout`, which is
/// generous because the test machine is shared. Never used to assert how long something took.
public func waitUntil(_ description: @autoclosure () -> String, timeout: Duration = .seconds(20), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut(what: description()) }
        try await Task.sleep(for: .milliseconds(10))
    }
}

private func percentDecoded(_ text: Substring) -> String {
    var bytes: [UInt8] = []
    var index = text.utf8.startIndex
    let utf8 = text.utf8
    while index < utf8.endIndex {
        let byte = utf8[index]
        if byte == UInt8(ascii: "%"), let end = utf8.index(index, offsetBy: 3, limitedBy: utf8.endIndex),
            let value = UInt8(String(decoding: utf8[utf8.index(after: index)..<end], as: UTF8.self), radix: 16)
        {
            bytes.append(value)
            index = end
        } else {
            bytes.append(byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
            index = utf8.index(after: index)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
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

    private func record(_ message: WebSocketMessage) {
        let received = FakeBrokerServer.Received(connection: self.connection, message: message)
        let observer = self.state.withLockedValue { state in
            state.received.append(received)
            return state.messageObserver
        }
        observer?(received)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            self.record(.text(String(buffer: frame.unmaskedData)))
        case .binary:
            self.record(.binary(frame.unmaskedData))
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

/// Answers a request the server declined to upgrade, as a broker does on bad credentials: with
/// the admission's status and error, or 400 for a request that was no WebSocket upgrade at all.
private final class DeclinedUpgradeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Its name in the pipeline: an accepted upgrade removes it before WebSocket frames flow.
    static let name = "declined-upgrade"

    let admission: FakeBrokerServer.Admission
    let state: NIOLockedValueBox<FakeBrokerServer.State>
    private var head: HTTPRequestHead?

    init(admission: FakeBrokerServer.Admission, state: NIOLockedValueBox<FakeBrokerServer.State>) {
        self.admission = admission
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            return
        case .end:
            guard let head = self.head else { return }
            let handshake = FakeBrokerServer.Handshake(uri: head.uri, headers: head.headers)
            switch FakeBrokerServer.decide(handshake, admission: self.admission, state: self.state) {
            case .reject(let status, let message):
                self.respond(context: context, status: status, headers: ["x-error-message": message], body: "{\"error\":\"\(message)\"}")
            case .respond(let status, let contentType, let body):
                self.respond(context: context, status: status, headers: ["content-type": contentType], body: body)
            case .accept, .refuse, .acceptThenDrop:
                self.respond(context: context, status: .badRequest, headers: [:], body: "expected a WebSocket upgrade")
            }
        }
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, headers: HTTPHeaders, body text: String) {
        let body = ByteBuffer(string: text)
        var headers = headers
        headers.add(name: "content-length", value: "\(body.readableBytes)")
        headers.add(name: "connection", value: "close")
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
