import Agent
import Brokers
import ProxyServer
import Logging
import NIOCore
import StreamingHub

/// A real agent on an ephemeral port of 127.0.0.1, with the simulator feed, for one test.
struct TestAgent {
    static let apiKey = "7f3c0a5e9b1d2c4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6"

    let runtime: AgentRuntime
    let task: Task<Void, any Error>

    var port: Int { self.runtime.webSocketServer.localAddress.port! }

    /// Runs `body` against a fresh agent, then shuts it down and waits for it to stop.
    static func with<Result>(
        configure: (inout AgentConfiguration) -> Void = { _ in },
        _ body: (TestAgent) async throws -> Result
    ) async throws -> Result {
        var configuration = AgentConfiguration()
        configuration.proxy.port = 0
        configuration.handleSignals = false
        configuration.brokers["simulator"] = .init(["ticks_per_second": "20", "seed": "7"])
        configure(&configuration)
        var logger = Logger(label: "test-agent")
        logger.logLevel = .warning
        let runtime = try await AgentRuntime(configuration: configuration, apiKey: Self.apiKey, logger: logger)
        let agent = TestAgent(runtime: runtime, task: Task { try await runtime.run() })
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

    /// A connected client, already authenticated unless `authenticate` is false.
    func client(authenticate: Bool = true, receiveBuffer: Int32? = nil) throws -> TestWebSocketClient {
        let client = try TestWebSocketClient(port: self.port, receiveBuffer: receiveBuffer)
        if authenticate { try client.authenticate(Self.apiKey) }
        return client
    }
}
