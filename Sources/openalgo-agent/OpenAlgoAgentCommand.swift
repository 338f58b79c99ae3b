import Agent
import ArgumentParser
import Brokers
import LocalIPC
import LocalIPCServer
import Logging
import NIOCore
import ProxyServer
import SystemdSupport

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

            Local programs and oactl(1) control the agent over a JSON-RPC socket, by default \
            $XDG_RUNTIME_DIR/openalgo/agent.sock. See openalgo-agent(1) and openalgo-agent.toml(5).
            """,
        version: AgentVersion.current,
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
              openalgo-agent serve --broker zmq   # in place of OpenAlgo's WebSocket proxy
              openalgo-agent serve --broker replay --replay ticks.jsonl --speed 10

            Stops cleanly on SIGTERM or SIGINT: clients are closed with code 1001. SIGHUP re-reads \
            the configuration without dropping clients.

            Under systemd (see packaging/ and openalgo-agent(1)) it serves the sockets the socket \
            units pass (named ws and ipc), reports READY=1, its status and watchdog pings through \
            NOTIFY_SOCKET, and logs with journald priorities.
            """
    )

    @Option(help: "Address to listen on (default 127.0.0.1; keep it on loopback).")
    var host: String?

    @Option(help: "WebSocket port (default 8765; 0 picks a free one).")
    var port: Int?

    @Option(
        help: ArgumentHelp(
            "Feed to stream from (default simulator): \(BrokerRegistry.supportedBrokers.joined(separator: ", ")).",
            discussion:
                "zmq takes the ticks OpenAlgo's broker adapters publish on its ZeroMQ bus, in place of OpenAlgo's WebSocket proxy ([brokers.zmq] endpoint, socket_mode, broker_name)."
        )
    )
    var broker: String?

    @Option(help: ArgumentHelp("Configuration file (default $XDG_CONFIG_HOME/openalgo/agent.toml).", valueName: "path"))
    var config: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default info).")
    var logLevel: String?

    @Option(
        help: ArgumentHelp(
            "The local JSON-RPC socket for oactl and other local programs (default $XDG_RUNTIME_DIR/openalgo/agent.sock).",
            valueName: "path"
        ),
        completion: .file()
    )
    var ipcSocket: String?

    @Flag(
        help: "Ignore systemd: bind both sockets even if LISTEN_FDS passes some, and send no notifications."
    )
    var noSystemd = false

    @Option(
        help: ArgumentHelp(
            "A recording to play (implies --broker replay): a file, or the output path of a day-rotated recording.",
            valueName: "file"
        ),
        completion: .file()
    )
    var replay: String?

    @Option(help: ArgumentHelp("Replay speed: 1 (real time, the default), N times, or max.", valueName: "speed"))
    var speed: String?

    @Flag(help: "Replay the recording again from the start after its end.")
    var loop = false

    func run() async throws {
        let environment = ProcessEnvironment.current()
        let logLevel = LogLevelSwitch(.info)
        let bootstrapLogger =
            JournalLogHandler.isStandardErrorJournal(environment: environment)
            ? logLevel.makeLogger(label: "openalgo-agent", handler: JournalLogHandler())
            : logLevel.makeLogger(label: "openalgo-agent", handler: StreamLogHandler.standardError(label: "openalgo-agent"))
        let configuration: AgentConfiguration
        let apiKey: APIKeyStore.ResolvedKey
        let overrides = CommandLineOverrides(
            host: self.host,
            port: self.port,
            broker: self.broker,
            configurationFile: self.config,
            logLevel: self.logLevel,
            ipcSocket: self.ipcSocket,
            replayFile: self.replay.map(Self.absolute),
            replaySpeed: self.speed,
            replayLoop: self.loop ? true : nil
        )
        do {
            configuration = try ConfigurationLoader.load(overrides: overrides, environment: environment, logger: bootstrapLogger)
            apiKey = try APIKeyStore.resolve(environment: environment, logger: bootstrapLogger)
        } catch {
            throw ValidationError(error.message)
        }
        logLevel.current = configuration.logLevel
        let logger = bootstrapLogger
        logger.info(
            "starting",
            metadata: [
                "broker": "\(configuration.broker)", "config": "\(configuration.configurationFile ?? "none")",
                "api_key_from": "\(apiKey.source)",
            ]
        )
        let (listeners, serviceManager) = try self.serviceManager(logger: logger)
        let runtime: AgentRuntime
        do {
            runtime = try await AgentRuntime(
                configuration: configuration,
                apiKey: apiKey,
                logger: logger,
                reloadSource: ConfigurationSource(overrides: overrides, environment: environment),
                logLevel: logLevel,
                listeners: listeners,
                serviceManager: serviceManager
            )
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            logger.critical(
                "cannot start: \(configuration.proxy.host):\(configuration.proxy.port) is already in use; stop the other server (another openalgo-agent or OpenAlgo's Python WebSocket server) or choose another --port"
            )
            throw ExitCode(69)
        } catch let error as IPCServerError {
            logger.critical("cannot start: \(error)")
            throw ExitCode(69)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(69)
        }
        try await runtime.run()
    }

    /// The sockets systemd passed and the link for notifications; neither with `--no-systemd`.
    private func serviceManager(logger: Logger) throws -> (AgentListeners, ServiceManagerLink) {
        guard !self.noSystemd else { return (AgentListeners(), .disconnected(logger: logger)) }
        let listeners: AgentListeners
        do {
            listeners = try AgentListeners(SocketActivation.inheritedSockets())
        } catch {
            logger.critical("cannot use the sockets systemd passed: \(error)")
            throw ExitCode(64)
        }
        let notifier = SystemdNotifier()
        let settings = ServiceManagerLink.Settings(
            socketsInherited: listeners.isActivated,
            notifies: notifier.isEnabled,
            watchdogInterval: notifier.watchdogInterval()
        )
        if settings.socketsInherited || settings.notifies {
            logger.info(
                "started by systemd",
                metadata: [
                    "ws_fd": "\(listeners.webSocket.map(String.init) ?? "own")",
                    "ipc_fd": "\(listeners.ipc.map(String.init) ?? "own")",
                    "watchdog": "\(settings.watchdogInterval.map { "\($0)" } ?? "off")",
                ]
            )
        }
        return (listeners, ServiceManagerLink(transport: settings.notifies ? notifier : nil, settings: settings, logger: logger))
    }

    /// A relative `--replay` path made absolute, so that a reload elsewhere reads the same file.
    private static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/"), let directory = getcwd(nil, 0) else { return path }
        defer { free(directory) }
        return String(cString: directory) + "/" + path
    }
}
