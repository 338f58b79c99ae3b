import Agent
import FakeBrokers
import LocalIPC
import Logging
import NIOCore
import ProxyServer
import StreamingHub
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A real agent on an ephemeral port of 127.0.0.1, with the simulator feed, for one test.
struct TestAgent {
    static let apiKey = "7f3c0a5e9b1d2c4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6"

    static let resolvedKey = APIKeyStore.ResolvedKey(key: Self.apiKey, source: "test", generated: false, isManaged: false)

    let runtime: AgentRuntime
    let task: Task<Void, any Error>

    var port: Int { self.runtime.webSocketServer.localAddress.port! }

    /// The test default: an ephemeral port, no signal handling, a 20 ticks/s simulator, then `modify`.
    static func configuration(_ modify: (inout AgentConfiguration) -> Void = { _ in }) -> AgentConfiguration {
        var configuration = AgentConfiguration()
        configuration.proxy.port = 0
        configuration.handleSignals = false
        configuration.brokers["simulator"] = .init(["ticks_per_second": "20", "seed": "7"])
        configuration.ipcSocketPath = temporarySocketPath()
        // Two loops, so that every real-socket test has clients on the hub's loop and on another.
        configuration.clientEventLoops = 2
        modify(&configuration)
        return configuration
    }

    /// Runs `body` against a fresh agent, then shuts it down and waits for it to stop.
    static func with<Result>(
        _ configuration: AgentConfiguration = Self.configuration(),
        apiKey: APIKeyStore.ResolvedKey = Self.resolvedKey,
        reloadSource: ConfigurationSource? = nil,
        _ body: (TestAgent) async throws -> Result
    ) async throws -> Result {
        try await LiveAgentLock.shared.run { try await self.run(configuration, apiKey: apiKey, reloadSource: reloadSource, body) }
    }

    private static func run<Result>(
        _ configuration: AgentConfiguration,
        apiKey: APIKeyStore.ResolvedKey,
        reloadSource: ConfigurationSource?,
        _ body: (TestAgent) async throws -> Result
    ) async throws -> Result {
        var logger = Logger(label: "test-agent")
        logger.logLevel = getenv("OPENALGO_TEST_LOG_LEVEL").flatMap { Logger.Level(rawValue: String(cString: $0)) } ?? .warning
        let runtime = try await AgentRuntime(
            configuration: configuration,
            apiKey: apiKey,
            logger: logger,
            reloadSource: reloadSource
        )
        let agent = TestAgent(runtime: runtime, task: Task { try await runtime.run() })
        let hub = runtime.hub
        while try await hub.eventLoop.submit({ hub.value.feedState }).get() != .connected {
            try await Task.sleep(for: .milliseconds(5))
        }
        do {
            let result = try await body(agent)
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

    func metrics() async throws -> HubMetrics {
        let hub = self.runtime.hub
        return try await hub.eventLoop.submit { hub.value.metrics }.get()
    }

    /// A client of the local JSON-RPC socket, greeted.
    func localClient(timeout: Duration = .seconds(10)) throws -> IPCClient {
        try IPCClient(path: self.runtime.configuration.ipcSocketPath, timeout: timeout)
    }

    var socketPath: String { self.runtime.configuration.ipcSocketPath }

    /// A connected client, already authenticated unless `authenticate` is false.
    func client(authenticate: Bool = true, receiveBuffer: Int32? = nil) throws -> TestWebSocketClient {
        let client = try TestWebSocketClient(port: self.port, receiveBuffer: receiveBuffer)
        if authenticate { try client.authenticate(Self.apiKey) }
        return client
    }
}

/// A socket path in a new private directory under /tmp, short enough for `sockaddr_un`.
func temporarySocketPath() -> String {
    var template = Array("/tmp/oa-test-XXXXXX".utf8CString)
    let directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    return directory + "/agent.sock"
}

/// The resident set size of this process, from /proc.
func residentMemoryBytes() -> Int {
    guard let file = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(file) }
    var size = 0
    var resident = 0
    guard
        withUnsafeMutablePointer(
            to: &size,
            { sizePointer in
                withUnsafeMutablePointer(to: &resident) { residentPointer in
                    withVaList([sizePointer, residentPointer]) { vfscanf(file, "%ld %ld", $0) }
                }
            }
        ) == 2
    else { return 0 }
    return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Every suite that talks to a live agent over sockets runs one test at a time: the test clients
/// block their thread while they wait for frames, and parallel ones would starve the agent's tasks.
@Suite("The agent over real sockets", .serialized)
struct SocketTests {}
