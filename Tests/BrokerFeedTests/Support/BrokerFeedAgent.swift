import Agent
import BrokerKit
import FakeBrokers
import LocalIPC
import Logging
import MarketData
import NIOCore
import ProxyServer
import StreamingHub
import Testing
import WireJSON

#if canImport(Glibc)
import Glibc
#endif

/// A real agent streaming from a real broker adapter for one end-to-end test: `broker = <name>`,
/// its `[brokers.<name>]` settings pointing `ws_url` at a fake broker server and
/// `instruments_file` at a fixture, on an ephemeral WebSocket port and a private IPC socket.
///
/// The agent gets an environment of its own (a fresh `HOME`, no `CREDENTIALS_DIRECTORY`), so
/// credentials stored for the person running the tests never leak in.
struct BrokerFeedAgent {
    static let apiKey = "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c"

    let runtime: AgentRuntime
    let task: Task<Void, any Error>
    let broker: String
    /// The agent's `HOME`, a new directory under /tmp.
    let home: String

    var port: Int { self.runtime.webSocketServer.localAddress.port! }

    /// Runs `body` against a fresh agent for `broker`, then shuts it down and waits for it to stop.
    ///
    /// - Parameter waitForConnected: wait until the feed is `connected` before `body` (off for
    ///   tests of feeds that cannot connect).
    static func with<Result>(
        broker: String,
        settings: [String: String],
        waitForConnected: Bool = true,
        _ body: (BrokerFeedAgent) async throws -> Result
    ) async throws -> Result {
        try await LiveAgentLock.shared.run {
            try await self.run(broker: broker, settings: settings, waitForConnected: waitForConnected, body)
        }
    }

    private static func run<Result>(
        broker: String,
        settings: [String: String],
        waitForConnected: Bool,
        _ body: (BrokerFeedAgent) async throws -> Result
    ) async throws -> Result {
        let directory = temporaryDirectory()
        var configuration = AgentConfiguration()
        configuration.proxy.port = 0
        configuration.handleSignals = false
        configuration.broker = broker
        configuration.brokers[broker] = BrokerSettings(settings)
        configuration.ipcSocketPath = directory + "/agent.sock"
        var logger = Logger(label: "broker-feed-test")
        logger.logLevel = getenv("OPENALGO_TEST_LOG_LEVEL").flatMap { Logger.Level(rawValue: String(cString: $0)) } ?? .warning
        let runtime = try await AgentRuntime(
            configuration: configuration,
            apiKey: APIKeyStore.ResolvedKey(key: Self.apiKey, source: "test", generated: false, isManaged: false),
            logger: logger,
            environment: ["HOME": directory, "XDG_CONFIG_HOME": directory + "/config", "XDG_CACHE_HOME": directory + "/cache"]
        )
        let agent = BrokerFeedAgent(runtime: runtime, task: Task { try await runtime.run() }, broker: broker, home: directory)
        do {
            if waitForConnected { try await agent.waitForFeed("connected") { $0 == .connected } }
            let result = try await withTaskExecutorPreference(BlockingTestExecutor.shared) { try await body(agent) }
            try await agent.stop()
            return result
        } catch {
            try? await agent.stop()
            throw error
        }
    }

    func stop() async throws {
        await self.runtime.shutDown()
        try await self.task.value
    }

    /// The hub's view of the feed.
    func feedState() async throws -> FeedConnectionState {
        let hub = self.runtime.hub
        return try await hub.eventLoop.submit { hub.value.feedState }.get()
    }

    /// Polls the feed state until `condition` holds.
    func waitForFeed(_ description: String, until condition: (FeedConnectionState) -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !condition(try await self.feedState()) {
            guard ContinuousClock.now < deadline else { throw TimedOut(what: "the feed to be \(description)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits until the feed has failed and returns its reason.
    func failureReason() async throws -> String {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            if case .failed(let reason) = try await self.feedState() { return reason }
            guard ContinuousClock.now < deadline else { throw TimedOut(what: "the feed to fail") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The error message of a `ws_connect` to `broker` that the agent refuses; empty if it connects.
    func refusedConnectMessage(broker: String) throws -> String {
        let client = try self.localClient()
        do {
            _ = try client.call("ws_connect", params: ["broker": .string(broker)])
            return ""
        } catch {
            return error.remoteError?.message ?? ""
        }
    }

    /// A WebSocket client, authenticated unless `authenticate` is false.
    func client(authenticate: Bool = true) throws -> TestWebSocketClient {
        let client = try TestWebSocketClient(port: self.port, timeoutSeconds: 20)
        if authenticate { try client.authenticate(Self.apiKey) }
        return client
    }

    /// A client of the local JSON-RPC socket, greeted.
    func localClient() throws -> IPCClient {
        try IPCClient(path: self.runtime.configuration.ipcSocketPath, timeout: .seconds(20))
    }
}

/// A new private directory under /tmp, short enough to hold a socket path.
func temporaryDirectory() -> String {
    var template = Array("/tmp/oa-feed-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

/// Writes `text` to `path` with `mode`.
func writeFile(_ path: String, _ text: String, mode: mode_t = 0o600) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
    guard descriptor >= 0 else { throw TimedOut(what: "opening \(path) (errno \(errno))") }
    defer { close(descriptor) }
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
}

extension IPCClient {
    /// The params of the next event called `method`, skipping others.
    func nextEvent(_ method: String, timeout: Duration = .seconds(20)) throws -> JSONValue {
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero, let message = try self.nextMessage(timeout: remaining) else {
                throw IPCClientError.timedOut("the event \(method)")
            }
            if case .event(method, let params) = message { return params }
        }
    }

    /// Reads events until one called `method` satisfies `condition`; returns its params.
    func nextEvent(_ method: String, where condition: (JSONValue) -> Bool) throws -> JSONValue {
        while true {
            let params = try self.nextEvent(method)
            if condition(params) { return params }
        }
    }
}

extension TestWebSocketClient {
    /// Reads replies until a `broker_status` frame satisfying `condition` arrives; returns it.
    func receiveBrokerStatus(where condition: (JSONObject) -> Bool) throws -> JSONObject {
        while true {
            guard let object = try self.receiveReply().objectValue, object["type"] == "broker_status" else { continue }
            if condition(object) { return object }
        }
    }

    /// The text of the next market-data frame for `symbol` at `mode`, exactly as sent except
    /// that the local-clock `timestamp` reads `T`.
    func receiveMarketDataText(symbol: String, mode: Int) throws -> String {
        while true {
            let frame = try self.receiveAnsweringPings()
            if frame.opcode == 0x8 { throw Failure(description: "closed: \(frame.closeCode ?? 0) \(frame.closeReason)") }
            guard frame.opcode == 0x1, frame.text.hasPrefix(#"{"type": "market_data""#),
                let object = try JSONParser.parse(frame.text).objectValue, object["symbol"] == .string(symbol), object["mode"] == .int(mode)
            else { continue }
            return maskingTimestamp(frame.text)
        }
    }

    /// Reads market data until a frame for `symbol` at `mode` arrives; returns it.
    func receiveMarketData(symbol: String, mode: Int) throws -> JSONObject {
        while true {
            let frame = try self.receiveMarketData()
            if frame["symbol"] == .string(symbol), frame["mode"] == .int(mode) { return frame }
        }
    }
}

/// `text` with the digits of its `"timestamp": ` field replaced by `T`.
func maskingTimestamp(_ text: String) -> String {
    guard let range = text.range(of: "\"timestamp\": ") else { return text }
    let digits = text[range.upperBound...].prefix { $0.isNumber }
    return String(text[..<range.upperBound]) + "T" + text[digits.endIndex...]
}

/// Creates a private directory; an existing one is fine.
func makeDirectory(_ path: String) throws {
    guard mkdir(path, 0o700) == 0 || errno == EEXIST else { throw TimedOut(what: "creating \(path) (errno \(errno))") }
}

/// Every end-to-end broker suite runs one test at a time: the test clients block their thread
/// while they wait for frames, and parallel agents would starve each other on two cores (tests
/// of other targets that run agents wait on ``LiveAgentLock`` too).
@Suite("Broker feeds end to end", .serialized)
struct BrokerFeedSuites {}
