import Logging
import MarketData
import NIOCore
import NIOEmbedded
import NIOWebSocket
import StreamingHub
import Testing

@testable import ProxyServer

/// The connection handler alone on an `EmbeddedChannel`, with virtual time and writability under
/// the test's control: the deadlines, conflation order and close frames, byte for byte.
@Suite("WebSocket connection handler")
struct ConnectionHandlerTests {
    struct Fixture {
        let loop = EmbeddedEventLoop()
        let hub: StreamingHub
        let handler: WebSocketConnectionHandler
        let channel: EmbeddedChannel
        let proxy: ProxyContext

        /// - Parameter gateway: puts the gateway and NIO's frame encoder in front of the handler, as
        ///   the server does; outbound data is then bytes, not frames.
        init(gateway: PreframedWriteGateway? = nil, _ configure: (inout ProxyConfiguration) -> Void = { _ in }) throws {
            self.hub = StreamingHub(
                eventLoop: self.loop,
                configuration: HubConfiguration(brokerName: "test"),
                commands: FeedCommandQueue(),
                logger: Logger(label: "test")
            )
            var configuration = ProxyConfiguration()
            configure(&configuration)
            let proxy = ProxyContext(
                hub: self.hub.connector,
                eventLoop: self.loop,
                configuration: configuration,
                verifier: APIKeyVerifier(apiKey: "key"),
                slots: ConnectionSlots(),
                logger: Logger(label: "test")
            )
            self.proxy = proxy
            self.hub.addObserver(ProxyHubObserver(loops: ProxyLoops([NIOLoopBound(proxy, eventLoop: self.loop)])))
            self.handler = WebSocketConnectionHandler(proxy: proxy, gateway: gateway)
            self.channel = EmbeddedChannel(loop: self.loop)
            if let gateway {
                try self.channel.pipeline.syncOperations.addHandlers(gateway, WebSocketFrameEncoder())
            }
            try self.channel.pipeline.syncOperations.addHandler(self.handler)
            try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8765)).wait()
        }

        /// The bytes written to the socket since the last call (with a frame encoder in the pipeline).
        func written() throws -> [UInt8] {
            var bytes: [UInt8] = []
            while let buffer = try self.channel.readOutbound(as: ByteBuffer.self) {
                bytes += Array(buffer.readableBytesView)
            }
            return bytes
        }

        func send(_ text: String) throws {
            try self.channel.writeInbound(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text)))
        }

        func authenticate() throws {
            try self.send(#"{"action": "authenticate", "api_key": "key"}"#)
            #expect(try self.next()?.text.hasPrefix(#"{"type": "auth", "status": "success""#) == true)
        }

        func next() throws -> (opcode: WebSocketOpcode, text: String, code: Int?)? {
            guard let frame = try self.channel.readOutbound(as: WebSocketFrame.self) else { return nil }
            var data = frame.data
            let code = frame.opcode == .connectionClose ? data.readWebSocketErrorCode().map { Int(UInt16(webSocketErrorCode: $0)) } : nil
            return (frame.opcode, String(buffer: data), code)
        }

        func enqueue(_ symbol: String, _ payload: String) {
            self.handler.enqueue(ByteBuffer(string: payload), instrument: Instrument(exchange: "NSE", symbol: symbol), mode: .ltp)
        }

        func setWritable(_ writable: Bool) {
            self.channel.isWritable = writable
            self.channel.pipeline.fireChannelWritabilityChanged()
        }
    }

    @Test("4401 at the auth deadline, then the connection closes if the client does not answer")
    func authDeadline() throws {
        let fixture = try Fixture()
        fixture.loop.advanceTime(by: .milliseconds(14_900))
        #expect(try fixture.next() == nil)
        fixture.loop.advanceTime(by: .milliseconds(200))
        let close = try #require(try fixture.next())
        #expect(close.opcode == .connectionClose && close.code == 4401 && close.text == "auth timeout")
        #expect(fixture.channel.isActive)
        fixture.loop.advanceTime(by: .seconds(2))
        #expect(!fixture.channel.isActive)
    }

    @Test("while unwritable the latest frame per symbol is kept, and drained oldest symbol first")
    func conflation() throws {
        let fixture = try Fixture()
        try fixture.authenticate()
        fixture.enqueue("A", "a1")
        fixture.handler.flushEnqueued()
        #expect(try fixture.next()?.text == "a1")
        fixture.setWritable(false)
        fixture.enqueue("A", "a2")
        fixture.enqueue("B", "b1")
        fixture.enqueue("A", "a3")
        #expect(try fixture.next() == nil)
        #expect(fixture.hub.metrics.framesConflated == 1)
        fixture.setWritable(true)
        #expect(try fixture.next()?.text == "a3")
        #expect(try fixture.next()?.text == "b1")
        #expect(try fixture.next() == nil)
    }

    @Test("a client unwritable past the deadline gets 1008 and is counted")
    func unwritableDeadline() throws {
        let fixture = try Fixture()
        try fixture.authenticate()
        fixture.setWritable(false)
        fixture.enqueue("A", "a1")
        fixture.handler.housekeeping(now: .now() + .seconds(5))
        #expect(try fixture.next()?.opcode == .ping, "not yet past the deadline: only a keepalive ping")
        fixture.handler.housekeeping(now: .now() + .seconds(11))
        let close = try #require(try fixture.next())
        #expect(close.code == 1008 && close.text == "slow consumer: socket not writable for 10 s")
        #expect(fixture.hub.metrics.slowConsumersClosed == 1)
        fixture.loop.advanceTime(by: .milliseconds(300))
        #expect(!fixture.channel.isActive)
    }

    @Test("a client over its byte budget is closed on the next loop turn, not inside the fan-out")
    func overBudget() throws {
        let fixture = try Fixture { $0.outboxBudgetBytes = 100 }
        try fixture.authenticate()
        fixture.setWritable(false)
        fixture.enqueue("A", String(repeating: "x", count: 60))
        fixture.enqueue("B", String(repeating: "y", count: 60))
        #expect(try fixture.next() == nil, "nothing happens inside the hub's call")
        fixture.loop.run()
        let close = try #require(try fixture.next())
        #expect(close.code == 1008 && close.text == "slow consumer: more than 100 bytes of market data pending")
        #expect(fixture.hub.metrics.slowConsumersClosed == 1)
    }

    @Test("pings every interval; 1011 when a ping stays unanswered past the timeout; a pong clears it")
    func keepalive() throws {
        let fixture = try Fixture()
        try fixture.authenticate()
        let start = NIODeadline.now()
        fixture.handler.housekeeping(now: start + .seconds(5))
        #expect(try fixture.next()?.opcode == .ping)
        try fixture.channel.writeInbound(WebSocketFrame(fin: true, opcode: .pong, data: ByteBuffer()))
        fixture.handler.housekeeping(now: start + .seconds(10))
        #expect(try fixture.next()?.opcode == .ping)
        fixture.handler.housekeeping(now: start + .seconds(19))
        #expect(try fixture.next() == nil)
        fixture.handler.housekeeping(now: start + .seconds(20))
        let close = try #require(try fixture.next())
        #expect(close.code == 1011 && close.text == "keepalive ping timeout")
    }

    @Test("feed state changes reach authenticated clients as broker_status; a failed feed closes them with 1012")
    func brokerStatus() throws {
        let fixture = try Fixture()
        try fixture.authenticate()
        let sink = fixture.hub.makeSink()
        sink.feedStateChanged(.reconnecting(attempt: 2))
        fixture.loop.run()
        #expect(
            try fixture.next()?.text == #"{"type": "broker_status", "broker": "test", "status": "reconnecting", "attempt": 2}"#
        )
        sink.feedStateChanged(.failed(reason: "5 attempts failed"))
        fixture.loop.run()
        #expect(
            try fixture.next()?.text
                == #"{"type": "broker_status", "broker": "test", "status": "failed", "message": "5 attempts failed"}"#
        )
        let close = try #require(try fixture.next())
        #expect(close.opcode == .connectionClose && close.code == 1012 && close.text == "broker feed failed: 5 attempts failed")
    }

    @Test("a client's close is answered with the same code")
    func peerClose() throws {
        let fixture = try Fixture()
        var data = ByteBuffer()
        data.write(webSocketErrorCode: .goingAway)
        try fixture.channel.writeInbound(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))
        #expect(try fixture.next()?.code == 1001)
        #expect(!fixture.channel.isActive)
    }

    @Test("a frame the hub built goes to the socket as the shared bytes, in order with frames the encoder frames")
    func preframedWrites() throws {
        let fixture = try Fixture(gateway: PreframedWriteGateway())
        try fixture.send(#"{"action": "authenticate", "api_key": "key"}"#)
        let auth = try fixture.written()
        #expect(auth.first == 0x81)
        #expect(String(decoding: auth, as: UTF8.self).contains(#"{"type": "auth", "status": "success""#))

        var shared = ByteBufferAllocator().buffer(capacity: 64)
        PreframedText.reserveHeadroom(in: &shared)
        shared.writeString(#"{"ltp": 1}"#)
        PreframedText.writeHeader(into: &shared)
        let sbin = Instrument(exchange: "NSE", symbol: "SBIN")
        fixture.handler.enqueue(shared, instrument: sbin, mode: .ltp)
        fixture.handler.enqueue(ByteBuffer(string: "plain"), instrument: Instrument(exchange: "NSE", symbol: "INFY"), mode: .ltp)
        fixture.handler.enqueue(shared, instrument: sbin, mode: .ltp)
        #expect(try fixture.written().isEmpty, "nothing before the flush")
        fixture.handler.flushEnqueued()

        let sharedBytes = [0x81, 10] + Array(#"{"ltp": 1}"#.utf8)
        #expect(try fixture.written() == sharedBytes + [0x81, 5] + Array("plain".utf8) + sharedBytes)
        #expect(shared.readableBytes == 10, "the shared frame itself is unchanged")
    }
}
