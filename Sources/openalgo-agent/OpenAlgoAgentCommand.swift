import Agent
import ArgumentParser
import Logging
import NIOCore
import ProxyServer

#if canImport(Glibc)
import Glibc
#endif

@main
struct OpenAlgoAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openalgo-agent",
        abstract: "Stream Indian market data from a broker to every program on this machine.",
        discussion: """
            Serves the OpenAlgo WebSocket protocol on ws://127.0.0.1:8765, so the official openalgo \
            Python SDK and other OpenAlgo clients work unchanged. With no configuration it streams \
            from the built-in simulator, so it runs without a broker account.

            Settings come from flags, then OPENALGO_* environment variables, then \
            $XDG_CONFIG_HOME/openalgo/agent.toml, then defaults. Clients authenticate with the key in \
            OPENALGO_API_KEY or ~/.config/openalgo/api-key (generated on first start).
            """,
        subcommands: [Serve.self],
        defaultSubcommand: Serve.self
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the agent (the default command).",
        discussion: """
            Examples:
              openalgo-agent                  # simulator feed, ws://127.0.0.1:8765
              openalgo-agent serve --port 9000
              OPENALGO_BROKER_SIMULATOR_TICKS_PER_SECOND=50 openalgo-agent

            Stops cleanly on SIGTERM or SIGINT: clients are closed with code 1001.
            """
    )

    @Option(help: "Address to listen on (default 127.0.0.1; keep it on loopback).")
    var host: String?

    @Option(help: "WebSocket port (default 8765; 0 picks a free one).")
    var port: Int?

    @Option(help: "Feed to stream from (default simulator).")
    var broker: String?

    @Option(help: ArgumentHelp("Configuration file (default $XDG_CONFIG_HOME/openalgo/agent.toml).", valueName: "path"))
    var config: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default info).")
    var logLevel: String?

    func run() async throws {
        let environment = currentEnvironment()
        var bootstrapLogger = Logger(label: "openalgo-agent") { StreamLogHandler.standardError(label: $0) }
        bootstrapLogger.logLevel = .info
        let configuration: AgentConfiguration
        let apiKey: APIKeyStore.ResolvedKey
        do {
            configuration = try ConfigurationLoader.load(
                overrides: CommandLineOverrides(
                    host: self.host,
                    port: self.port,
                    broker: self.broker,
                    configurationFile: self.config,
                    logLevel: self.logLevel
                ),
                environment: environment,
                logger: bootstrapLogger
            )
            apiKey = try APIKeyStore.resolve(environment: environment, logger: bootstrapLogger)
        } catch {
            throw ValidationError(error.message)
        }
        var logger = bootstrapLogger
        logger.logLevel = configuration.logLevel
        logger.info(
            "starting",
            metadata: [
                "broker": "\(configuration.broker)", "config": "\(configuration.configurationFile ?? "none")",
                "api_key_from": "\(apiKey.source)",
            ]
        )
        let runtime: AgentRuntime
        do {
            runtime = try await AgentRuntime(configuration: configuration, apiKey: apiKey.key, logger: logger)
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            logger.critical(
                "cannot start: \(configuration.proxy.host):\(configuration.proxy.port) is already in use; stop the other server (another openalgo-agent or OpenAlgo's Python WebSocket server) or choose another --port"
            )
            throw ExitCode(69)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(69)
        }
        try await runtime.run()
    }
}

private func currentEnvironment() -> [String: String] {
    var result: [String: String] = [:]
    var pointer = environ
    while let entry = pointer.pointee {
        let text = String(cString: entry)
        if let equals = text.firstIndex(of: "=") {
            result[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        pointer += 1
    }
    return result
}
