import Agent
import LocalIPC
import LocalIPCServer
import Logging
import MarketData
import NIOCore
import NIOPosix
import StreamingHub
import Testing
import WireJSON

#if canImport(Glibc)
import Glibc
#endif

extension SocketTests {
    /// The local JSON-RPC socket of `ipc.md`, against a running agent.
    @Suite("Local JSON-RPC socket")
    struct LocalSocketTests {
        @Test("a raw session: hello first, replies in request order, and the code of every error")
        func rawSession() async throws {
            try await TestAgent.with { agent in
                let client = try agent.localClient()
                #expect(client.hello["protocol"] == 1)
                #expect(client.hello["pid"] == .int(getpid()))
                #expect(client.hello["agent"]?.stringValue?.hasPrefix("openalgo-agent/") == true)
                let lines = [
                    #"{"jsonrpc":"2.0","id":1,"method":"status"}"#,
                    #"{"jsonrpc":"2.0","id":2,"method":"status""#,
                    #"{"jsonrpc":"2.0","id":3,"method":"no_such_method"}"#,
                    #"{"jsonrpc":"2.0","id":4,"method":"ws_subscribe","params":{"mode":"Quote"}}"#,
                    "",
                    #"[{"jsonrpc":"2.0","id":5,"method":"metrics"},{"jsonrpc":"2.0","method":"status"},{"jsonrpc":"2.0","id":"six","method":"nope"}]"#,
                    #"{"jsonrpc":"2.0","id":7,"method":"hello","params":{"protocol":2}}"#,
                    #"{"jsonrpc":"2.0","id":8,"method":"ws_subscribe","params":{"symbols":[{"symbol":"SBIN","exchange":"NSE"}],"mode":"Full"}}"#,
                    "[]",
                    #"{"jsonrpc":"2.0","id":9,"method":"hello","params":{"protocol":1,"client":"test-suite/1"}}"#,
                ]
                try client.sendRaw(Array((lines.joined(separator: "\r\n") + "\n").utf8))
                var replies: [JSONValue] = []
                while replies.count < 9 {
                    guard let line = try client.nextLine(timeout: .seconds(10)) else {
                        Issue.record("closed early")
                        return
                    }
                    let value = try JSONParser.parse(line)
                    if value.objectValue?["method"] != nil { continue }
                    replies.append(value)
                }
                func error(_ reply: JSONValue) -> JSONObject? { reply.objectValue?["error"]?.objectValue }
                #expect(replies[0].objectValue?["id"] == 1 && replies[0].objectValue?["result"]?.objectValue?["state"] == "connected")
                #expect(replies[1].objectValue?["id"] == .null && error(replies[1])?["code"] == -32700)
                #expect(replies[2].objectValue?["id"] == 3 && error(replies[2])?["code"] == -32601)
                #expect(error(replies[3])?["code"] == -32602 && error(replies[3])?["data"]?.objectValue?["field"] == "symbols")
                let batch = try #require(replies[4].arrayValue)
                #expect(batch.count == 2, "the notification in the batch is not answered")
                #expect(batch[0].objectValue?["id"] == 5 && batch[0].objectValue?["result"]?.objectValue?["ticks_in"] != nil)
                #expect(batch[1].objectValue?["id"] == "six" && error(batch[1])?["code"] == -32601)
                #expect(error(replies[5])?["code"] == -32005 && error(replies[5])?["data"]?.objectValue?["reason"] == "oa.ipc.UnsupportedVersion")
                #expect(error(replies[6])?["code"] == -32602 && error(replies[6])?["data"]?.objectValue?["field"] == "mode")
                #expect(error(replies[7])?["code"] == -32600)
                #expect(replies[8].objectValue?["id"] == 9 && replies[8].objectValue?["result"]?.objectValue?["client"] == "test-suite/1")
                let clients = try client.call("clients")
                let me = clients.objectValue?["clients"]?.arrayValue?.first { $0.objectValue?["kind"] == "ipc" }?.objectValue
                #expect(me?["name"] == "test-suite/1" && me?["peer"] == .string("pid \(getpid())"))
            }
        }

        @Test("a line over 1 MiB gets -32600 and the connection closes")
        func overLongLine() async throws {
            try await TestAgent.with { agent in
                let client = try agent.localClient()
                try client.sendRaw([UInt8](repeating: UInt8(ascii: "x"), count: (1 << 20) + 100))
                guard case .reply(let id, .failure(let error))? = try client.nextMessage(timeout: .seconds(10)) else {
                    Issue.record("no error reply")
                    return
                }
                #expect(id == nil && error.code == -32600 && error.reason == "oa.ipc.InvalidRequest")
                #expect(try client.nextMessage(timeout: .seconds(10)) == nil, "the connection is closed")
                let other = try agent.localClient()
                #expect(try other.call("status").objectValue?["state"] == "connected", "the agent serves others")
            }
        }

        @Test("subscribe: per-symbol results, then the latest known tick first, then live data with the WebSocket bytes")
        func snapshotFirst() async throws {
            let configuration = TestAgent.configuration { $0.brokers["simulator"] = .init(["ticks_per_second": "1", "seed": "3"]) }
            try await TestAgent.with(configuration) { agent in
                let first = try agent.localClient()
                let reply = try first.call(
                    "ws_subscribe",
                    params: ["symbols": [["symbol": "SBIN", "exchange": "NSE"], ["symbol": "X", "exchange": "NOPE"]], "mode": "Quote"]
                )
                let results = try #require(reply.objectValue?["subscriptions"]?.arrayValue)
                #expect(results[0] == ["symbol": "SBIN", "exchange": "NSE", "mode": "Quote", "status": "success"])
                #expect(results[1].objectValue?["status"] == "error" && results[1].objectValue?["message"] == "Symbol X not found for exchange NOPE")
                let update = try first.nextEvent("ws_subscription_update")
                #expect(update.objectValue?["action"] == "subscribed" && update.objectValue?["scope"] == "connection")
                let live = try first.nextEvent("market_data")
                #expect(live.objectValue?["type"] == "market_data" && live.objectValue?["mode"] == 2 && live.objectValue?["broker"] == "simulator")
                try await Task.sleep(for: .milliseconds(20))

                let before = WallClock.epochMilliseconds()
                let second = try agent.localClient()
                try second.call("ws_subscribe", params: ["symbols": [["symbol": "SBIN", "exchange": "NSE"]], "mode": "LTP"])
                let snapshot = try second.nextEvent("market_data")
                let timestamp = try #require(snapshot.objectValue?["data"]?.objectValue?["timestamp"]?.intValue)
                #expect(timestamp < before, "the first frame is the tick that arrived before this subscription")
                #expect(snapshot.objectValue?["mode"] == 1, "tagged with the subscriber's mode")
            }
        }

        @Test("a Quote subscriber's snapshot is never an LTP tick: its first frame is Quote data (it was an LTP frame)")
        func snapshotNeverOfALowerMode() async throws {
            let configuration = TestAgent.configuration {
                $0.ltpThrottle = .zero
                $0.brokers["simulator"] = .init(["ticks_per_second": "20", "seed": "3"])
            }
            try await TestAgent.with(configuration) { agent in
                let chart = try agent.localClient()
                try chart.call("ws_subscribe", params: ["symbols": [["symbol": "SBIN", "exchange": "NSE"]], "mode": "LTP"])
                #expect(try chart.nextEvent("market_data").objectValue?["data"]?.objectValue?["mode"] == 1, "the feed streams LTP ticks")

                let quote = try agent.localClient()
                try quote.call("ws_subscribe", params: ["symbols": [["symbol": "SBIN", "exchange": "NSE"]], "mode": "Quote"])
                let first = try #require(try quote.nextEvent("market_data").objectValue)
                #expect(first["mode"] == 2)
                #expect(first["data"]?.objectValue?["mode"] == 2, "a Quote tick, not the LTP tick the hub held")
            }
        }

        @Test("unsubscribe: own subscriptions by symbol and mode, all, and other clients' through `client`")
        func unsubscribe() async throws {
            try await TestAgent.with { agent in
                let holder = try agent.localClient()
                try holder.call(
                    "ws_subscribe",
                    params: ["symbols": [["symbol": "SBIN", "exchange": "NSE"], ["symbol": "TCS", "exchange": "NSE"]], "mode": 1]
                )
                try holder.call("ws_subscribe", params: ["symbols": [["symbol": "SBIN", "exchange": "NSE"]], "mode": "Quote"])
                let own = try holder.call("ws_unsubscribe", params: ["symbols": [["symbol": "SBIN", "exchange": "NSE"]], "mode": "LTP"])
                #expect(own.objectValue?["successful"] == [["symbol": "SBIN", "exchange": "NSE", "mode": "LTP"]])
                let missing = try holder.call("ws_unsubscribe", params: ["symbols": [["symbol": "INFY", "exchange": "NSE"]]])
                #expect(missing.objectValue?["failed"]?.arrayValue?.first?.objectValue?["message"] == "Not subscribed to NSE:INFY.")

                let admin = try agent.localClient()
                let removed = try admin.call("ws_unsubscribe", params: ["all": true, "client": "ipc"])
                let entries = removed.objectValue?["successful"]?.arrayValue ?? []
                #expect(entries.count == 2)
                #expect(entries.allSatisfy { $0.objectValue?["client"] != nil })
                #expect(try holder.call("subscriptions").objectValue?["connection"] == [])
                #expect(try admin.call("subscriptions").objectValue?["agent"] == [])
                let refused = remoteError { try admin.call("ws_unsubscribe", params: ["all": true, "client": "client-999999"]) }
                #expect(refused != nil, "an unknown client was accepted")
                #expect(refused?.code == -32602)
            }
        }

        @Test("ws_disconnect stops the feed for everyone (broker_status to WebSocket clients); ws_connect resumes the subscriptions")
        func disconnectAndConnect() async throws {
            try await TestAgent.with { agent in
                let webSocket = try agent.client()
                try webSocket.send(#"{"action": "subscribe", "symbols": [{"symbol": "TCS", "exchange": "NSE"}], "mode": 2}"#)
                #expect(try webSocket.receiveReply().objectValue?["status"] == "success")
                _ = try webSocket.receiveMarketData()
                let local = try agent.localClient()
                try local.call("events_subscribe", params: ["events": ["ws_subscription_update"]])

                let stopped = try local.call("ws_disconnect")
                #expect(stopped.objectValue?["state"] == "disconnected" && stopped.objectValue?["connected"] == false)
                let status = try webSocket.receiveReply()
                #expect(status == ["type": "broker_status", "broker": "simulator", "status": "disconnected"])
                #expect(try local.nextEvent("ws_connection_status").objectValue?["state"] == "disconnected")
                let refused = remoteError { try local.call("ws_subscribe", params: ["symbols": [["symbol": "SBIN", "exchange": "NSE"]]]) }
                #expect(refused != nil, "subscribing without a feed succeeded")
                #expect(refused?.code == -32002 && refused?.reason == "oa.ws.NotConnected")

                let started = try local.call("ws_connect", params: ["broker": "simulator"])
                #expect(started.objectValue?["state"] == "connected" && started.objectValue?["broker"] == "simulator")
                var states: [JSONValue] = []
                while states.last != "connected" {
                    states.append(try webSocket.receiveReply().objectValue?["status"] ?? .null)
                }
                #expect(states == ["connecting", "connected"])
                let resumed = try webSocket.receiveMarketData()
                #expect(resumed["symbol"] == "TCS", "the subscription was replayed to the new feed")
                let unknown = remoteError { try local.call("ws_connect", params: ["broker": "nosuchbroker"]) }
                #expect(unknown?.code == -32003, "an unknown broker is refused")
                #expect(unknown?.message.contains("this build supports: zerodha, angelone, dhan, simulator, replay") == true)
            }
        }

        @Test("api_key: read, and rotation replaces the file and closes WebSocket clients of the old key")
        func apiKeyRotation() async throws {
            try await TestAgent.with { agent in
                let client = try agent.localClient()
                #expect(try client.call("api_key").objectValue?["api_key"] == .string(TestAgent.apiKey))
                let refused = remoteError { try client.call("api_key", params: ["rotate": true]) }
                #expect(refused != nil, "a key from the environment was rotated")
                #expect(refused?.code == -32006)
            }
            let directory = String(temporarySocketPath().dropLast("/agent.sock".count))
            let keyFile = directory + "/api-key"
            try writeFile(keyFile, TestAgent.apiKey + "\n")
            let managed = APIKeyStore.ResolvedKey(key: TestAgent.apiKey, source: keyFile, generated: false, isManaged: true)
            try await TestAgent.with(apiKey: managed) { agent in
                let old = try agent.client()
                let client = try agent.localClient()
                let rotated = try #require(try client.call("api_key", params: ["rotate": true]).objectValue?["api_key"]?.stringValue)
                #expect(rotated.count == 64 && rotated != TestAgent.apiKey)
                #expect(readFile(keyFile)?.trimmingWhitespace() == rotated)
                #expect(try old.receiveClose().closeCode == 1008)
                let fresh = try agent.client(authenticate: false)
                #expect(try fresh.authenticate(rotated).objectValue?["status"] == "success")
                let stale = try agent.client(authenticate: false)
                #expect(try stale.authenticate(TestAgent.apiKey).objectValue?["status"] == "error")
            }
        }

        @Test("reload applies what can change live and names what needs a restart; a bad file changes nothing")
        func reload() async throws {
            let directory = String(temporarySocketPath().dropLast("/agent.sock".count))
            let file = directory + "/agent.toml"
            let socket = directory + "/agent.sock"
            try writeFile(file, "port = 0\nltp_throttle_ms = 50\nipc_socket = \"\(socket)\"\n")
            let source = ConfigurationSource(overrides: CommandLineOverrides(configurationFile: file), environment: [:])
            var configuration = try ConfigurationLoader.load(overrides: source.overrides, environment: [:], logger: Logger(label: "test"))
            configuration.handleSignals = false
            try await TestAgent.with(configuration, reloadSource: source) { agent in
                let client = try agent.localClient()
                try writeFile(file, "port = 1\nltp_throttle_ms = 0\nlog_level = \"debug\"\nipc_socket = \"\(socket)\"\n")
                let result = try client.call("reload")
                #expect(result.objectValue?["applied"] == ["log_level", "ltp_throttle_ms"])
                #expect(result.objectValue?["requires_restart"] == ["port"])
                try writeFile(file, "port = \"many\"\n")
                let refused = remoteError { try client.call("reload") }
                #expect(refused != nil, "a bad file was accepted")
                #expect(refused?.message.contains("port (from \(file)) must be an integer") == true)
            }
        }

        @Test("a reader that stops gets conflated and one lagged event; past the deadline a closing event; others are unaffected")
        func slowReader() async throws {
            let configuration = TestAgent.configuration {
                $0.brokers["simulator"] = .init(["ticks_per_second": "100", "seed": "5"])
                $0.proxy.unwritableDeadline = .seconds(3)
                $0.ltpThrottle = .zero
            }
            try await TestAgent.with(configuration) { agent in
                let symbols: JSONValue = .array((1...20).map { ["symbol": .string("STOCK\($0)"), "exchange": "NSE"] })
                let slow = try agent.localClient()
                try slow.call("ws_subscribe", params: ["symbols": symbols, "mode": "Depth"])
                let healthy = try agent.localClient()
                try healthy.call("ws_subscribe", params: ["symbols": symbols, "mode": "Depth"])
                let memoryBefore = residentMemoryBytes()

                // A short stall (below the deadline): the reader catches up and is told how much it missed.
                let received = try healthy.countMarketData(for: .milliseconds(1500))
                #expect(received > 1000, "the healthy reader kept receiving while the other stalled")
                var lagged: JSONValue?
                var afterLagged = 0
                let resumeUntil = ContinuousClock.now + .seconds(5)
                while ContinuousClock.now < resumeUntil && afterLagged < 50 {
                    guard case .event(let method, let params)? = try slow.nextMessage(timeout: .seconds(5)) else { break }
                    if method == "lagged" { lagged = params } else if lagged != nil && method == "market_data" { afterLagged += 1 }
                    #expect(method != "closing")
                }
                #expect((lagged?.objectValue?["dropped"]?.intValue ?? 0) > 0, "one lagged event reports the replaced frames")
                #expect(afterLagged == 50, "the stream goes on after the lagged event")

                // A long stall (past the deadline): the agent says why and closes.
                _ = try healthy.countMarketData(for: .seconds(5))
                var closing: JSONValue?
                while let message = try slow.nextMessage(timeout: .seconds(10)) {
                    if case .event("closing", let params) = message { closing = params }
                }
                #expect(closing?.objectValue?["code"] == -32004 && closing?.objectValue?["reason"] == "oa.ipc.SlowConsumer")
                #expect(try healthy.countMarketData(for: .milliseconds(500)) > 100, "the healthy reader is unaffected")
                let metrics = try healthy.call("metrics").objectValue
                #expect((metrics?["slow_consumers_closed"]?.intValue ?? 0) >= 1)
                #expect((metrics?["frames_conflated"]?.intValue ?? 0) > 0)
                #expect(residentMemoryBytes() - memoryBefore < 48 << 20, "memory stays bounded")
            }
        }

        @Test("a peer of another user is refused, through the server's SO_PEERCRED check")
        func otherUserRefused() async throws {
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let loop = group.next()
            let hub = try await loop.submit {
                NIOLoopBound(
                    StreamingHub(
                        eventLoop: loop,
                        configuration: HubConfiguration(brokerName: "test"),
                        commands: FeedCommandQueue(),
                        logger: Logger(label: "test")
                    ),
                    eventLoop: loop
                )
            }.get()
            var configuration = IPCServerConfiguration(socketPath: temporarySocketPath())
            configuration.allowedUserID = geteuid() &+ 1
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let server = try await IPCServer.bind(configuration: configuration, hub: hub, control: RefusingControl(), logger: logger)
            let task = Task { try await server.run() }
            do {
                _ = try IPCClient(path: configuration.socketPath, timeout: .seconds(5))
                Issue.record("a peer of another user was served")
            } catch {
                #expect(error.isPermissionDenied)
            }
            #expect(try await server.refusedPeerCount() == 1)
            #expect(try await server.connectionCount() == 0)
            task.cancel()
            try await task.value
            #expect(access(configuration.socketPath, F_OK) != 0, "the socket file is removed on shutdown")
            try await group.shutdownGracefully()
        }

        @Test("the socket is private, a stale file is replaced, a live one is refused")
        func socketFile() async throws {
            try await TestAgent.with { agent in
                var status = stat()
                #expect(stat(agent.socketPath, &status) == 0 && status.st_mode & 0o777 == 0o600)
                let directory = String(agent.socketPath.dropLast("/agent.sock".count))
                do {
                    _ = try await AgentRuntime(
                        configuration: TestAgent.configuration { $0.ipcSocketPath = agent.socketPath },
                        apiKey: TestAgent.resolvedKey,
                        logger: Logger(label: "test")
                    )
                    Issue.record("a second agent took a live socket")
                } catch {
                    #expect("\(error)".contains("another agent is already serving \(agent.socketPath)"))
                }
                let nested = directory + "/sub/dir/agent.sock"
                try await TestAgent.with(TestAgent.configuration { $0.ipcSocketPath = nested }) { second in
                    var directoryStatus = stat()
                    #expect(stat(directory + "/sub/dir", &directoryStatus) == 0 && directoryStatus.st_mode & 0o777 == 0o700)
                    let status = try second.localClient().call("status")
                    #expect(status.objectValue?["state"] == "connected")
                }
            }
            let stale = temporarySocketPath()
            let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: Array(stale.utf8))
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            #expect(bound == 0)
            close(descriptor)
            try await TestAgent.with(TestAgent.configuration { $0.ipcSocketPath = stale }) { agent in
                let status = try agent.localClient().call("status")
                #expect(status.objectValue?["state"] == "connected", "the stale file was replaced")
            }
        }
    }
}

/// The agent's error for a call that must fail; `nil` when it succeeded or failed otherwise.
func remoteError(_ body: () throws -> Any) -> RPCError? {
    do {
        _ = try body()
        return nil
    } catch let error as IPCClientError {
        return error.remoteError
    } catch {
        return nil
    }
}

/// A control that refuses everything; for servers tested without an agent around them.
private struct RefusingControl: IPCAgentControl {
    func connectFeed(broker: String?, credentials: [String: String]) async -> Result<Void, RPCError> {
        .failure(.brokerUnavailable("test"))
    }

    func disconnectFeed() async {}

    func apiKey(rotate: Bool) async -> Result<String, RPCError> {
        .failure(.notPermitted("test"))
    }

    func reload() async -> Result<JSONValue, RPCError> {
        .failure(.notPermitted("test"))
    }
}

extension IPCClient {
    /// The params of the next event called `method`, skipping others.
    func nextEvent(_ method: String, timeout: Duration = .seconds(10)) throws -> JSONValue {
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero, let message = try self.nextMessage(timeout: remaining) else {
                throw IPCClientError.timedOut("the event \(method)")
            }
            if case .event(method, let params) = message { return params }
        }
    }

    enum Poll {
        case message(IPCMessage)
        case timedOut
        case closed
    }

    /// The next message before `deadline`, telling a timeout apart from other failures.
    func poll(until deadline: ContinuousClock.Instant) throws(IPCClientError) -> Poll {
        do {
            guard let message = try self.nextMessage(timeout: deadline - ContinuousClock.now) else { return .closed }
            return .message(message)
        } catch {
            guard error.isTimeout else { throw error }
            return .timedOut
        }
    }

    /// How many `market_data` events arrive in `duration`.
    func countMarketData(for duration: Duration) throws -> Int {
        let deadline = ContinuousClock.now + duration
        var count = 0
        while ContinuousClock.now < deadline {
            guard case .message(let message) = try self.poll(until: deadline) else { break }
            if case .event("market_data", _) = message { count += 1 }
        }
        return count
    }
}

func writeFile(_ path: String, _ text: String) throws {
    guard let file = fopen(path, "w") else { throw IPCClientError.connectionClosed("cannot write \(path)") }
    fputs(text, file)
    fclose(file)
}

func readFile(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}

extension String {
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while slice.first?.isWhitespace == true { slice = slice.dropFirst() }
        while slice.last?.isWhitespace == true { slice = slice.dropLast() }
        return String(slice)
    }
}
