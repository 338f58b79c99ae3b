import Brokers
import LocalIPC
import LocalIPCServer
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ProxyServer
import StreamingHub
import WireJSON

/// Where a reload reads the configuration again: the same flags and environment as at start.
public struct ConfigurationSource: Sendable {
    public var overrides: CommandLineOverrides
    public var environment: [String: String]

    public init(overrides: CommandLineOverrides, environment: [String: String]) {
        self.overrides = overrides
        self.environment = environment
    }
}

/// What local clients may ask of the agent beyond the hub: the feed, the API key, a reload.
final class AgentControl: IPCAgentControl {
    private let supervisor: FeedController
    private let recordings: RecordingController
    private let hub: NIOLoopBound<StreamingHub>
    private let webSocketServer: WebSocketServer
    private let apiKey: NIOLockedValueBox<APIKeyStore.ResolvedKey>
    private let running: NIOLockedValueBox<AgentConfiguration>
    private let reloadSource: ConfigurationSource?
    private let logLevel: LogLevelSwitch?
    private let serviceManager: ServiceManagerLink.Settings
    /// Settings the last reload changed that take effect only after a restart.
    private let requiresRestart = NIOLockedValueBox<[String]>([])
    private let logger: Logger

    init(
        supervisor: FeedController,
        recordings: RecordingController,
        hub: NIOLoopBound<StreamingHub>,
        webSocketServer: WebSocketServer,
        apiKey: APIKeyStore.ResolvedKey,
        running: AgentConfiguration,
        reloadSource: ConfigurationSource?,
        logLevel: LogLevelSwitch?,
        serviceManager: ServiceManagerLink.Settings,
        logger: Logger
    ) {
        self.supervisor = supervisor
        self.recordings = recordings
        self.hub = hub
        self.webSocketServer = webSocketServer
        self.apiKey = NIOLockedValueBox(apiKey)
        self.running = NIOLockedValueBox(running)
        self.reloadSource = reloadSource
        self.logLevel = logLevel
        self.serviceManager = serviceManager
        self.logger = logger
    }

    func statusDetails() -> JSONObject {
        let restart = self.requiresRestart.withLockedValue { $0 }
        var service: JSONObject = [
            "sockets": .string(self.serviceManager.socketsInherited ? "systemd" : "own"),
            "notify": .bool(self.serviceManager.notifies),
        ]
        if let watchdog = self.serviceManager.watchdogInterval {
            service["watchdog_ms"] = .int(watchdog.components.seconds * 1000 + watchdog.components.attoseconds / 1_000_000_000_000_000)
        }
        var details: JSONObject = [
            "service": .object(service), "requires_restart": .array(restart.map { .string($0) }),
            "recordings": .array(self.recordings.list()),
        ]
        if let detail = self.supervisor.statusDetail { details[detail.key] = detail.value }
        return details
    }

    func connectFeed(broker: String?, credentials: [String: String]) async -> Result<Void, RPCError> {
        if let broker {
            do {
                _ = try BrokerRegistry.supportedName(broker.lowercased())
            } catch {
                return .failure(
                    .brokerUnavailable(error.message, extra: ["supported": .array(BrokerRegistry.supportedBrokers.map { .string($0) })])
                )
            }
        }
        switch await StreamingHub.connectFeed(self.hub, FeedStartRequest(broker: broker, credentials: credentials)) {
        case .success: return .success(())
        case .failure(let failure): return .failure(.brokerUnavailable(failure.reason))
        }
    }

    func disconnectFeed() async {
        await StreamingHub.disconnectFeed(self.hub)
    }

    func startRecording(_ request: RecordingRequest) async -> Result<JSONValue, RPCError> {
        await self.recordings.start(request)
    }

    func stopRecording(id: String) async -> Result<JSONValue, RPCError> {
        await self.recordings.stop(id: id)
    }

    func apiKey(rotate: Bool) async -> Result<String, RPCError> {
        let current = self.apiKey.withLockedValue { $0 }
        guard rotate else { return .success(current.key) }
        let rotated: APIKeyStore.ResolvedKey
        do {
            rotated = try APIKeyStore.rotate(current)
        } catch {
            return .failure(.notPermitted(error.message))
        }
        self.apiKey.withLockedValue { $0 = rotated }
        let closed = (try? await self.webSocketServer.rotateAPIKey(to: rotated.key)) ?? 0
        self.logger.notice("API key rotated", metadata: ["file": "\(rotated.source)", "clients_closed": "\(closed)"])
        return .success(rotated.key)
    }

    func reload() async -> Result<JSONValue, RPCError> {
        guard let source = self.reloadSource else {
            return .failure(.notPermitted("This agent was started without a configuration source to reload."))
        }
        let fresh: AgentConfiguration
        do {
            fresh = try ConfigurationLoader.load(overrides: source.overrides, environment: source.environment, logger: self.logger)
        } catch {
            self.logger.error("configuration reload failed; keeping the running configuration", metadata: ["error": "\(error.message)"])
            return .failure(.invalidParams(field: "configuration", "The configuration was not reloaded: \(error.message)"))
        }
        let previous = self.running.withLockedValue { $0 }
        let changes = ConfigurationChanges(from: previous, to: fresh)
        if let logLevel = self.logLevel { logLevel.current = fresh.logLevel }
        let hub = self.hub
        self.supervisor.updateBrokerSettings(fresh.brokers)
        try? await hub.eventLoop.submit {
            hub.value.setLTPThrottle(fresh.ltpThrottle)
            hub.value.setTickBatchWindow(fresh.tickBatchWindow)
            hub.value.credentialsChanged()
        }.get()
        try? await self.webSocketServer.updateLimits(from: fresh.proxy)
        self.running.withLockedValue { running in
            var applied = fresh
            applied.proxy.host = running.proxy.host
            applied.proxy.port = running.proxy.port
            applied.proxy.socketSendBufferBytes = running.proxy.socketSendBufferBytes
            applied.broker = running.broker
            applied.ipcSocketPath = running.ipcSocketPath
            applied.ipcOutboxBudgetBytes = running.ipcOutboxBudgetBytes
            applied.clientEventLoops = running.clientEventLoops
            running = applied
        }
        self.requiresRestart.withLockedValue { $0 = changes.requiresRestart }
        self.logger.notice(
            "configuration reloaded",
            metadata: [
                "applied": "\(changes.applied.joined(separator: ","))",
                "requires_restart": "\(changes.requiresRestart.joined(separator: ","))",
            ]
        )
        return .success(
            .object([
                "file": fresh.configurationFile.map { .string($0) } ?? .null,
                "applied": .array(changes.applied.map { .string($0) }),
                "requires_restart": .array(changes.requiresRestart.map { .string($0) }),
            ])
        )
    }
}

/// Which settings a reload changed, split into those applied live and those that wait for a restart.
struct ConfigurationChanges: Equatable {
    var applied: [String] = []
    var requiresRestart: [String] = []

    init(from old: AgentConfiguration, to new: AgentConfiguration) {
        func compare(_ key: String, _ changed: Bool, live: Bool) {
            guard changed else { return }
            if live { self.applied.append(key) } else { self.requiresRestart.append(key) }
        }
        compare("log_level", old.logLevel != new.logLevel, live: true)
        compare("ltp_throttle_ms", old.ltpThrottle != new.ltpThrottle, live: true)
        compare("tick_batch_ms", old.tickBatchWindow != new.tickBatchWindow, live: true)
        compare("ping_interval", old.proxy.pingInterval != new.proxy.pingInterval, live: true)
        compare("ping_timeout", old.proxy.pingTimeout != new.proxy.pingTimeout, live: true)
        compare("auth_timeout", old.proxy.authTimeout != new.proxy.authTimeout, live: true)
        compare("max_clients", old.proxy.maxClients != new.proxy.maxClients, live: true)
        compare("outbox_budget_bytes", old.proxy.outboxBudgetBytes != new.proxy.outboxBudgetBytes, live: true)
        compare("unwritable_deadline", old.proxy.unwritableDeadline != new.proxy.unwritableDeadline, live: true)
        compare("user_id", old.proxy.userID != new.proxy.userID, live: true)
        compare("brokers", old.brokers != new.brokers, live: true)
        compare("host", old.proxy.host != new.proxy.host, live: false)
        compare("port", old.proxy.port != new.proxy.port, live: false)
        compare("send_buffer_bytes", old.proxy.socketSendBufferBytes != new.proxy.socketSendBufferBytes, live: false)
        compare("broker", old.broker != new.broker, live: false)
        compare("ipc_socket", old.ipcSocketPath != new.ipcSocketPath, live: false)
        compare("ipc_budget_bytes", old.ipcOutboxBudgetBytes != new.ipcOutboxBudgetBytes, live: false)
        compare("event_loops", old.clientEventLoops != new.clientEventLoops, live: false)
        compare("record", old.record != new.record, live: false)
    }
}
