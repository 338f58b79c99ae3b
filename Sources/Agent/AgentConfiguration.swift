import Brokers
import LocalIPC
import Logging
import MarketData
import NIOCore
import ProxyServer

/// Everything the agent needs to start, after flags, environment and `agent.toml` were merged.
public struct AgentConfiguration: Sendable {
    public var proxy = ProxyConfiguration()
    /// The feed to stream from; `simulator` by default, so the agent runs with no account.
    public var broker = "simulator"
    /// Settings per broker, from `[brokers.<name>]` and `OPENALGO_BROKER_<NAME>_<KEY>`.
    public var brokers: [String: BrokerSettings] = [:]
    /// The LTP coalescing window; 0 disables it.
    public var ltpThrottle = TimeAmount.milliseconds(50)
    /// How long the fan-out waits after one batch of ticks before the next (`tick_batch_ms`), so
    /// that ticks arriving meanwhile reach each client in one write. A tick after a quiet spell
    /// goes out at once; only a busy feed's ticks wait, at most this long.
    public var tickBatchWindow = TimeAmount.milliseconds(5)
    public var logLevel = Logger.Level.info
    /// The configuration file that was read, if any.
    public var configurationFile: String?
    /// Whether SIGTERM and SIGINT stop the agent; embedders and tests stop it with ``AgentRuntime/shutDown()``.
    public var handleSignals = true
    /// The local JSON-RPC socket (`ipc_socket`, `--ipc-socket`); by default in the session's runtime directory.
    public var ipcSocketPath: String
    /// Market data held for a local client that is not reading (`ipc_budget_bytes`), before it gets `closing`.
    public var ipcOutboxBudgetBytes = 4 << 20
    /// Event loops WebSocket connections are spread over (`event_loops`), the hub's included; 0
    /// means one per two cores.
    public var clientEventLoops = 0

    /// The number of event loops for WebSocket connections: ``clientEventLoops``, or one per two
    /// cores, leaving the other half to the programs reading the ticks (on 2 cores, one loop
    /// spends less CPU per frame than two, with lower latency: see BENCHMARKS.md).
    public var resolvedClientEventLoops: Int {
        self.clientEventLoops > 0 ? self.clientEventLoops : max(1, System.coreCount / 2)
    }
    /// The always-on recording of `[record]`, if configured.
    public var record: RecordConfiguration?

    public init() {
        self.ipcSocketPath = IPCSocketPath.defaultPath(environment: ProcessEnvironment.current())
    }

    /// The settings of the selected broker.
    public var brokerSettings: BrokerSettings {
        self.brokers[self.broker.lowercased()] ?? BrokerSettings()
    }
}

/// A configuration value the agent cannot use. The message names the key, where it came from
/// and what is expected, so a user can fix it without reading the source.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { self.message }
}

/// `[record]`: a recording the agent runs for as long as it runs, as `oactl record` would.
public struct RecordConfiguration: Sendable, Equatable {
    /// `instruments`: `EXCHANGE:SYMBOL` entries, as a TOML list or one comma-separated string.
    public var instruments: [Instrument] = []
    /// `mode`: LTP, Quote or Depth (default Quote).
    public var mode = SubscriptionMode.quote
    /// `depth`: book levels asked of the feed in Depth mode (default 5).
    public var depth = 5
    /// `output` (or `directory`, meaning `<directory>/ticks.jsonl`): written as `name-YYYY-MM-DD.jsonl`.
    public var output = ""

    public init() {}
}
