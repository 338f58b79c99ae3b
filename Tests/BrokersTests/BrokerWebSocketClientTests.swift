import BrokerKit
import FakeBrokers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Broker WebSocket client")
struct BrokerWebSocketClientTests {
    let eventLoop = MultiThreadedEventLoopGroup.singleton.next()

    func connect(
        _ server: FakeBrokerServer,
        path: String = "/",
        headers: [(String, String)] = [],
        configuration: BrokerWebSocketClient.Configuration = .init(),
        delegate: RecordingDelegate
    ) async throws -> BrokerWebSocketConnection {
        let request = try BrokerWebSocketRequest(url: server.url(path), headers: headers)
        return try await BrokerWebSocketClient.connect(request, configuration: configuration, on: self.eventLoop, delegate: delegate)
    }

    @Test("the server sees the path, query and extra headers; messages flow both ways; close reports no error")
    func handshakeAndMessages() async throws {
        let server = try await FakeBrokerServer.start()
        defer { Task { await server.shutdown() } }
        let delegate = RecordingDelegate()
        let connection = try await self.connect(
            server,
            path: "/smart-stream?api_key=k&access_token=t",
            headers: [("Authorization", "jwt-token"), ("x-client-code", "A123")],
            delegate: delegate
        )
        let handshake = try #require(server.snapshot.handshakes.first)
        #expect(handshake.uri == "/smart-stream?api_key=k&access_token=t")
        #expect(handshake.headers["Authorization"] == ["jwt-token"])
        #expect(handshake.headers["x-client-code"] == ["A123"])
        #expect(handshake.headers["Host"] == ["127.0.0.1:\(server.port)"])

        connection.send(text: "{\"a\":\"subscribe\"}")
        connection.send(binary: ByteBuffer(bytes: [1, 2, 3]))
        try await server.wait(for: "two messages") { $0.received.count == 2 }
        #expect(server.receivedMessages == [.text("{\"a\":\"subscribe\"}"), .binary(ByteBuffer(bytes: [1, 2, 3]))])

        server.send(.binary(ByteBuffer(bytes: [0xFF])))
        server.send(.text("{\"type\":\"error\"}"))
        try await waitUntil("two messages at the client") { delegate.snapshot.messages.count == 2 }
        #expect(delegate.snapshot.messages == [.binary(ByteBuffer(bytes: [0xFF])), .text("{\"type\":\"error\"}")])

        try await connection.close().get()
        try await waitUntil("close reported") { delegate.snapshot.closed }
        #expect(delegate.snapshot.closeError == nil)
    }

    @Test("wss: a certificate that chains to a trusted root connects (with SNI); the system's roots refuse a private CA")
    func verifiedTLS() async throws {
        let server = try await FakeBrokerServer.start(tls: try TestCertificates.serverConfiguration())
        defer { Task { await server.shutdown() } }
        let request = try BrokerWebSocketRequest(url: "wss://localhost:\(server.port)/feed?token=t", headers: [])

        let trusted = RecordingDelegate()
        let connection = try await BrokerWebSocketClient.connect(
            request,
            configuration: .init(tls: try TestCertificates.trustingClientConfiguration()),
            on: self.eventLoop,
            delegate: trusted
        )
        #expect(server.snapshot.handshakes.first?.uri == "/feed?token=t")
        #expect(server.snapshot.handshakes.first?.headers["Host"] == ["localhost:\(server.port)"])
        server.send(.text("hello over TLS"))
        try await waitUntil("a message over TLS") { trusted.snapshot.messages.count == 1 }
        #expect(trusted.snapshot.messages == [.text("hello over TLS")])
        try await connection.close().get()

        let refused = await #expect(throws: BrokerWebSocketError.self) {
            _ = try await BrokerWebSocketClient.connect(request, on: self.eventLoop, delegate: RecordingDelegate())
        }
        #expect(refused?.kind == .transport)
        #expect("\(refused?.message ?? "")".contains("CERTIFICATE_VERIFY_FAILED"), "\(refused?.message ?? "")")
        #expect(server.snapshot.handshakes.count == 1, "no upgrade request went out over an unverified connection")
    }

    @Test("fragments are joined into one message; server pings are answered and reported")
    func fragmentsAndPings() async throws {
        let server = try await FakeBrokerServer.start()
        defer { Task { await server.shutdown() } }
        let delegate = RecordingDelegate()
        let connection = try await self.connect(server, delegate: delegate)
        try await server.waitForConnections(1)
        server.sendFragmented(text: ["{\"type\":", "\"message\",", "\"data\":1}"])
        server.sendPing()
        try await waitUntil("message and ping") { delegate.snapshot.messages.count == 1 && delegate.snapshot.controlFrames == [.ping] }
        #expect(delegate.snapshot.messages == [.text("{\"type\":\"message\",\"data\":1}")])
        try await server.wait(for: "the pong") { $0.pongsReceived == 1 }
        connection.abort()
    }

    @Test("a message sent right behind the upgrade response is delivered, not dropped with the HTTP leftovers")
    func messageBehindUpgrade() async throws {
        let server = try await FakeBrokerServer.start()
        defer { Task { await server.shutdown() } }
        server.setGreeting("{\"type\":\"message\",\"data\":\"welcome\"}")
        for _ in 0..<20 {
            let delegate = RecordingDelegate()
            let connection = try await self.connect(server, delegate: delegate)
            try await waitUntil("the greeting") { delegate.snapshot.messages == [.text("{\"type\":\"message\",\"data\":\"welcome\"}")] }
            try await connection.close().get()
        }
    }

    @Test("a message over the size limit closes the connection as a protocol violation")
    func messageTooLarge() async throws {
        let server = try await FakeBrokerServer.start()
        defer { Task { await server.shutdown() } }
        let delegate = RecordingDelegate()
        _ = try await self.connect(server, configuration: .init(maximumMessageSize: 16), delegate: delegate)
        try await server.waitForConnections(1)
        server.sendFragmented(text: ["0123456789", "0123456789"])
        try await waitUntil("close") { delegate.snapshot.closed }
        #expect(delegate.snapshot.messages.isEmpty)
        #expect(delegate.snapshot.closeError?.kind == .protocolViolation)
    }

    @Test("keepalive: a text message or a WebSocket ping at the configured interval")
    func keepalive() async throws {
        let server = try await FakeBrokerServer.start()
        defer { Task { await server.shutdown() } }
        let textDelegate = RecordingDelegate()
        let textConnection = try await self.connect(
            server,
            configuration: .init(keepalive: .text("ping", every: .milliseconds(20))),
            delegate: textDelegate
        )
        try await server.wait(for: "two text pings") { $0.received.count >= 2 }
        #expect(server.receivedMessages.prefix(2) == [.text("ping"), .text("ping")])
        try await textConnection.close().get()

        let pingDelegate = RecordingDelegate()
        let pingConnection = try await self.connect(server, configuration: .init(keepalive: .ping(every: .milliseconds(20))), delegate: pingDelegate)
        try await server.wait(for: "two pings answered") { $0.pingsAnswered >= 2 }
        try await waitUntil("pongs reported") { pingDelegate.snapshot.controlFrames.contains(.pong) }
        #expect(!pingDelegate.snapshot.closed, "answered pings keep the connection open")
        try await pingConnection.close().get()
    }

    @Test("a refused upgrade fails the connect with the HTTP status and the broker's explanation")
    func upgradeRejected() async throws {
        let server = try await FakeBrokerServer.start()
        defer { Task { await server.shutdown() } }
        server.setAdmission(.reject(status: .forbidden, message: "Invalid Feed Token"))
        let error = await #expect(throws: BrokerWebSocketError.self) {
            try await self.connect(server, path: "/feed?token=secret", delegate: RecordingDelegate())
        }
        #expect(error?.kind == .upgradeRejected)
        #expect(error?.httpStatus == 403)
        #expect(error?.isAuthenticationFailure == true)
        #expect(error?.message.contains("Invalid Feed Token") == true)
        #expect(error?.message.contains("secret") == false, "the query (with its token) is not in the message")
    }

    @Test("closed or refused sockets fail the connect; wss to a plain server fails in TLS")
    func connectFailures() async throws {
        let server = try await FakeBrokerServer.start()
        defer { Task { await server.shutdown() } }
        server.setAdmission(.refuse)
        await #expect(throws: BrokerWebSocketError.self) { try await self.connect(server, delegate: RecordingDelegate()) }
        server.setAdmission(.accept)

        let tls = await #expect(throws: BrokerWebSocketError.self) {
            let request = try BrokerWebSocketRequest(url: "wss://127.0.0.1:\(server.port)/")
            _ = try await BrokerWebSocketClient.connect(request, on: self.eventLoop, delegate: RecordingDelegate())
        }
        #expect(tls?.kind == .transport)

        // A port held by a socket that never listens refuses connections, and no other test can take it meanwhile.
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, length) == 0 && getsockname(holder, $0, &length) == 0 }
        }
        #expect(bound)
        let refused = await #expect(throws: BrokerWebSocketError.self) {
            let request = try BrokerWebSocketRequest(url: "ws://127.0.0.1:\(UInt16(bigEndian: address.sin_port))/")
            _ = try await BrokerWebSocketClient.connect(request, on: self.eventLoop, delegate: RecordingDelegate())
        }
        #expect(refused?.kind == .transport)
    }

    @Test("a close frame from the server and an abrupt drop are reported with their reasons")
    func serverCloses() async throws {
        let server = try await FakeBrokerServer.start()
        defer { Task { await server.shutdown() } }
        let closedDelegate = RecordingDelegate()
        _ = try await self.connect(server, delegate: closedDelegate)
        try await server.waitForConnections(1)
        server.closeConnections(code: .policyViolation)
        try await waitUntil("close") { closedDelegate.snapshot.closed }
        #expect(closedDelegate.snapshot.closeError?.kind == .closedByServer)
        #expect(closedDelegate.snapshot.closeError?.closeCode == .policyViolation)

        let droppedDelegate = RecordingDelegate()
        _ = try await self.connect(server, delegate: droppedDelegate)
        try await server.waitForConnections(2)
        server.dropConnections()
        try await waitUntil("drop") { droppedDelegate.snapshot.closed }
        #expect(droppedDelegate.snapshot.closeError?.kind == .connectionLost)
    }

    @Test("URLs: schemes, default ports, IPv6, query kept for the request and hidden in descriptions")
    func urls() throws {
        let kite = try WebSocketURL("wss://ws.kite.trade?api_key=abc&access_token=xyz")
        #expect(kite.isSecure && kite.host == "ws.kite.trade" && kite.port == 443)
        #expect(kite.target == "/?api_key=abc&access_token=xyz")
        #expect(kite.hostHeader == "ws.kite.trade")
        #expect(kite.description == "wss://ws.kite.trade/?…")
        let local = try WebSocketURL("ws://[::1]:9000/twentydepth")
        #expect(!local.isSecure && local.host == "::1" && local.port == 9000 && local.target == "/twentydepth")
        #expect(local.hostHeader == "[::1]:9000")
        #expect(try WebSocketURL("ws://example.com").target == "/")
        #expect(throws: BrokerWebSocketError.self) { try WebSocketURL("https://example.com") }
        #expect(throws: BrokerWebSocketError.self) { try WebSocketURL("ws://example.com:99999/") }
        #expect(throws: BrokerWebSocketError.self) { try WebSocketURL("ws:///path") }
    }
}
