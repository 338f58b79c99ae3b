import Agent
import FakeBrokers
import Logging
import NIOCore
import ProxyServer
import StreamingHub
import Testing
import WireJSON

#if canImport(Glibc)
import Glibc
#endif

extension SocketTests {
    /// Close codes, deadlines and limits, observed from a real client socket.
    @Suite("WebSocket connection behaviour")
    struct ConnectionBehaviourTests {
        @Test("an unauthenticated connection is closed with 4401 at the auth deadline; failed attempts do not close it")
        func authDeadline() async throws {
            try await TestAgent.with(TestAgent.configuration { $0.proxy.authTimeout = .milliseconds(400) }) { agent in
                let client = try agent.client(authenticate: false)
                try client.send(#"{"action": "authenticate", "api_key": "wrong"}"#)
                #expect(try client.receiveReply().objectValue?["message"] == "Invalid API key")
                let close = try client.receiveClose()
                #expect(close.closeCode == 4401)
                #expect(close.closeReason == "auth timeout")

                let authenticated = try agent.client()
                try authenticated.send(#"{"action": "ping"}"#)
                #expect(try authenticated.receiveReply().objectValue?["type"] == "pong")
            }
        }

        @Test("repeated wrong keys on one connection hold back its next messages, which are still answered in order")
        func failedAuthenticationSlowdown() async throws {
            try await TestAgent.with { agent in
                let client = try agent.client(authenticate: false)
                for _ in 0..<3 {
                    try client.send(#"{"action": "authenticate", "api_key": "guess"}"#)
                    #expect(try client.receiveReply().objectValue?["message"] == "Invalid API key")
                }
                let held = NIODeadline.now()
                try client.send(#"{"action": "ping", "_pingId": 1}"#)
                try client.send(#"{"action": "authenticate", "api_key": "\#(TestAgent.apiKey)"}"#)
                #expect(try client.receiveReply().objectValue?["_pingId"] == 1)
                #expect(NIODeadline.now() - held >= .milliseconds(450), "the third failure holds messages back for 500 ms")
                #expect(try client.receiveReply().objectValue?["type"] == "auth", "a right key after the penalty still works")
            }
        }

        @Test("a message over 1 MiB closes the connection with 1009")
        func oversizedMessage() async throws {
            try await TestAgent.with { agent in
                let client = try agent.client()
                let filler = String(repeating: "x", count: 1 << 20)
                try client.send(#"{"action": "ping", "pad": "\#(filler)"}"#)
                let close = try client.receiveClose()
                #expect(close.closeCode == 1009)
                #expect(close.closeReason == "frame exceeds limit of 1048576 bytes")
            }
        }

        @Test("fragmented messages are reassembled, and their total counts against the limit")
        func fragmentedMessages() async throws {
            try await TestAgent.with { agent in
                let client = try agent.client()
                try client.sendFrame(opcode: 0x1, payload: Array(#"{"action": "#.utf8), fin: false)
                try client.sendFrame(opcode: 0x0, payload: Array(#""ping", "_pingId": 5}"#.utf8), fin: true)
                #expect(try client.receiveReply().objectValue?["_pingId"] == 5)
                let half = [UInt8](repeating: UInt8(ascii: " "), count: 600 << 10)
                try client.sendFrame(opcode: 0x1, payload: half, fin: false)
                try client.sendFrame(opcode: 0x0, payload: half, fin: true)
                #expect(try client.receiveClose().closeCode == 1009)
            }
        }

        @Test("past max_clients the next client is closed with 1013 and counted")
        func maxClients() async throws {
            try await TestAgent.with(TestAgent.configuration { $0.proxy.maxClients = 2 }) { agent in
                let first = try agent.client()
                let second = try agent.client()
                let third = try TestWebSocketClient(port: agent.port)
                let close = try third.receiveClose()
                #expect(close.closeCode == 1013)
                #expect(close.closeReason == "try again later")
                #expect(try await agent.runtime.webSocketServer.refusedConnectionCount() == 1)
                try first.send(#"{"action": "ping"}"#)
                try second.send(#"{"action": "ping"}"#)
                #expect(try first.receiveReply().objectValue?["type"] == "pong")
                #expect(try second.receiveReply().objectValue?["type"] == "pong")
            }
        }

        @Test("the server pings; a client that never answers is closed with 1011, one that answers stays")
        func keepalive() async throws {
            try await TestAgent.with(
                TestAgent.configuration {
                    $0.proxy.pingInterval = .milliseconds(200)
                    $0.proxy.pingTimeout = .milliseconds(600)
                }
            ) { agent in
                let silent = try agent.client()
                let polite = try agent.client()
                let until = NIODeadline.now() + .seconds(2)
                var pongs = 0
                while NIODeadline.now() < until {
                    let frame = try polite.receiveFrame()
                    #expect(frame.opcode != 0x8, "a client that answers pings must not be closed")
                    if frame.opcode == 0x9 {
                        try polite.sendFrame(opcode: 0xA, payload: frame.payload)
                        pongs += 1
                    }
                }
                var sawPing = false
                var close: TestWebSocketClient.Frame?
                while close == nil {
                    let frame = try silent.receiveFrame()
                    if frame.opcode == 0x9 { sawPing = true }
                    if frame.opcode == 0x8 { close = frame }
                }
                #expect(sawPing)
                #expect(close?.closeCode == 1011)
                #expect(close?.closeReason == "keepalive ping timeout")
                #expect(pongs >= 3)
            }
        }

        @Test("the server answers WebSocket pings and echoes a client's close")
        func controlFrames() async throws {
            try await TestAgent.with { agent in
                let client = try agent.client()
                try client.sendFrame(opcode: 0x9, payload: Array("hello".utf8))
                var pong: TestWebSocketClient.Frame
                repeat { pong = try client.receiveFrame() } while pong.opcode != 0xA
                #expect(pong.text == "hello")
                try client.sendFrame(opcode: 0x8, payload: [0x03, 0xE8])
                #expect(try client.receiveClose().closeCode == 1000)
            }
        }

        @Test("shutdown closes every client with 1001")
        func shutdown() async throws {
            var logger = Logger(label: "test")
            logger.logLevel = .warning
            let runtime = try await AgentRuntime(configuration: TestAgent.configuration(), apiKey: TestAgent.resolvedKey, logger: logger)
            let task = Task { try await runtime.run() }
            let client = try TestWebSocketClient(port: runtime.webSocketServer.localAddress.port!)
            try client.authenticate(TestAgent.apiKey)
            await runtime.shutDown()
            let close = try client.receiveClose()
            #expect(close.closeCode == 1001)
            try await task.value
        }

        @Test("plain HTTP gets 426 Upgrade Required; any path upgrades")
        func plainHTTP() async throws {
            try await TestAgent.with { agent in
                let response = try TestWebSocketClient.plainHTTPGet(port: agent.port)
                #expect(response.hasPrefix("HTTP/1.1 426 Upgrade Required"))
                let client = try TestWebSocketClient(port: agent.port, path: "/ws")
                #expect(try client.authenticate(TestAgent.apiKey).objectValue?["type"] == "auth")
            }
        }
    }
}
