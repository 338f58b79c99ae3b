import Brokers
import LocalIPC
import Logging
import MarketData
import NIOCore
import ProxyServer
import TOMLKit

#if canImport(Glibc)
import Glibc
#endif

/// Values given on the command line; they win over everything else.
public struct CommandLineOverrides: Sendable {
    public var host: String?
    public var port: Int?
    public var broker: String?
    public var configurationFile: String?
    public var logLevel: String?
    public var ipcSocket: String?
    /// `--replay`: `[brokers.replay] file`; without `--broker` it also selects the replay feed.
    public var replayFile: String?
    /// `--speed`: `[brokers.replay] speed`.
    public var replaySpeed: String?
    /// `--loop`: `[brokers.replay] loop`.
    public var replayLoop: Bool?

    public init(
        host: String? = nil,
        port: Int? = nil,
        broker: String? = nil,
        configurationFile: String? = nil,
        logLevel: String? = nil,
        ipcSocket: String? = nil,
        replayFile: String? = nil,
        replaySpeed: String? = nil,
        replayLoop: Bool? = nil
    ) {
        self.host = host
        self.port = port
        self.broker = broker
        self.configurationFile = configurationFile
        self.logLevel = logLevel
        self.ipcSocket = ipcSocket
        self.replayFile = replayFile
        self.replaySpeed = replaySpeed
        self.replayLoop = replayLoop
    }
}

/// Builds an ``AgentConfiguration`` with the precedence flags > `OPENALGO_*` environment >
/// `agent.toml` > defaults.
///
/// Every setting is first gathered as text under its TOML key (`port`, `brokers.simulator.ticks_per_second`)
/// with a note of where it came from, then parsed once, so an error can say
/// "port (from OPENALGO_PORT) must be ..." whatever the source.
public enum ConfigurationLoader {
    /// The keys of the top level of `agent.toml`, which are also the `OPENALGO_<KEY>` variables.
    public static let topLevelKeys = [
        "host", "port", "broker", "ping_interval", "ping_timeout", "auth_timeout", "max_clients", "ltp_throttle_ms",
        "log_level", "user_id", "outbox_budget_bytes", "unwritable_deadline", "send_buffer_bytes", "ipc_socket",
        "ipc_budget_bytes", "event_loops", "tick_batch_ms",
    ]

    struct Setting {
        var value: String
        var origin: String
    }

    public static func load(
        overrides: CommandLineOverrides = CommandLineOverrides(),
        environment: [String: String],
        logger: Logger
    ) throws(ConfigurationError) -> AgentConfiguration {
        var settings: [String: Setting] = [:]
        let explicitFile = overrides.configurationFile ?? environment["OPENALGO_CONFIG"]
        let path = explicitFile ?? defaultConfigurationPath(environment: environment)
        var configuration = AgentConfiguration()
        configuration.ipcSocketPath = IPCSocketPath.defaultPath(environment: environment)
        if let path, let text = try readFile(path, required: explicitFile != nil) {
            configuration.configurationFile = path
            try flatten(try parseTOML(text, path: path), prefix: "", origin: path, into: &settings)
        }
        for (name, value) in environment where name.hasPrefix("OPENALGO_") {
            let rest = name.dropFirst("OPENALGO_".count).lowercased()
            if topLevelKeys.contains(rest) {
                settings[rest] = Setting(value: value, origin: name)
            } else if rest.hasPrefix("record_") {
                settings["record." + rest.dropFirst("record_".count)] = Setting(value: value, origin: name)
            } else if rest.hasPrefix("broker_") {
                let parts = rest.dropFirst("broker_".count).split(separator: "_", maxSplits: 1)
                if parts.count == 2 { settings["brokers.\(parts[0]).\(parts[1])"] = Setting(value: value, origin: name) }
            }
        }
        func flag(_ key: String, _ value: String?) {
            if let value { settings[key] = Setting(value: value, origin: "--" + String(key.map { $0 == "_" ? "-" : $0 })) }
        }
        flag("host", overrides.host)
        flag("port", overrides.port.map(String.init))
        flag("broker", overrides.broker)
        flag("log_level", overrides.logLevel)
        flag("ipc_socket", overrides.ipcSocket)
        if let file = overrides.replayFile {
            settings["brokers.replay.file"] = Setting(value: file, origin: "--replay")
            if overrides.broker == nil { settings["broker"] = Setting(value: "replay", origin: "--replay") }
        }
        if let speed = overrides.replaySpeed { settings["brokers.replay.speed"] = Setting(value: speed, origin: "--speed") }
        if let loop = overrides.replayLoop { settings["brokers.replay.loop"] = Setting(value: loop ? "true" : "false", origin: "--loop") }
        try apply(settings, to: &configuration, logger: logger)
        return configuration
    }

    /// `$XDG_CONFIG_HOME/openalgo/agent.toml`, or `~/.config/openalgo/agent.toml`.
    public static func defaultConfigurationPath(environment: [String: String]) -> String? {
        AgentPaths.configDirectory(environment: environment).map { $0 + "/agent.toml" }
    }

    private static func readFile(_ path: String, required: Bool) throws(ConfigurationError) -> String? {
        guard let text = AgentPaths.readTextFile(path) else {
            if required { throw ConfigurationError("cannot read configuration file \(path): \(String(cString: strerror(errno)))") }
            return nil
        }
        return text
    }

    private static func parseTOML(_ text: String, path: String) throws(ConfigurationError) -> TOMLTable {
        do {
            return try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationError("\(path): \(error.description) at line \(error.source.begin.line), column \(error.source.begin.column)")
        } catch {
            throw ConfigurationError("\(path): \(error)")
        }
    }

    private static func flatten(_ table: TOMLTable, prefix: String, origin: String, into settings: inout [String: Setting]) throws(ConfigurationError)
    {
        for key in table.keys {
            guard let value = table[key] else { continue }
            let name = prefix + key
            if let nested = value.table {
                try flatten(nested, prefix: name + ".", origin: origin, into: &settings)
            } else if let text = value.string {
                settings[name] = Setting(value: text, origin: origin)
            } else if let integer = value.int {
                settings[name] = Setting(value: String(integer), origin: origin)
            } else if let number = value.double {
                settings[name] = Setting(value: String(number), origin: origin)
            } else if let flag = value.bool {
                settings[name] = Setting(value: flag ? "true" : "false", origin: origin)
            } else if let array = value.array, array.allSatisfy({ $0.string != nil }) {
                settings[name] = Setting(value: array.compactMap(\.string).joined(separator: ","), origin: origin)
            } else {
                throw ConfigurationError("\(origin): \(name) must be a string, number or boolean")
            }
        }
    }

    private static func apply(_ settings: [String: Setting], to configuration: inout AgentConfiguration, logger: Logger) throws(ConfigurationError) {
        var record = RecordConfiguration()
        var recordOrigin: String?
        for (key, setting) in settings.sorted(by: { $0.key < $1.key }) {
            if key.hasPrefix("record.") {
                let parser = ValueParser(key: key, setting: setting)
                recordOrigin = recordOrigin ?? setting.origin
                switch key.dropFirst("record.".count) {
                case "instruments": record.instruments = try parser.instruments()
                case "mode": record.mode = try parser.mode()
                case "depth": record.depth = try parser.bookDepth()
                case "output": record.output = try parser.absolutePath()
                case "directory": record.output = try parser.absolutePath() + "/ticks.jsonl"
                default: logger.warning("ignoring unknown configuration key", metadata: ["key": "\(key)", "from": "\(setting.origin)"])
                }
                continue
            }
            if key.hasPrefix("brokers.") {
                let parts = key.dropFirst("brokers.".count).split(separator: ".", maxSplits: 1)
                guard parts.count == 2 else { throw ConfigurationError("\(setting.origin): [brokers] entries must be tables, as [brokers.<name>]") }
                configuration.brokers[String(parts[0]).lowercased(), default: BrokerSettings()].values[String(parts[1])] = setting.value
                continue
            }
            let parser = ValueParser(key: key, setting: setting)
            switch key {
            case "host": configuration.proxy.host = try parser.nonEmpty()
            case "port": configuration.proxy.port = try parser.integer(in: 0...65_535)
            case "broker": configuration.broker = try parser.broker()
            case "ping_interval": configuration.proxy.pingInterval = try parser.seconds()
            case "ping_timeout": configuration.proxy.pingTimeout = try parser.seconds()
            case "auth_timeout": configuration.proxy.authTimeout = try parser.seconds()
            case "unwritable_deadline": configuration.proxy.unwritableDeadline = try parser.seconds()
            case "max_clients": configuration.proxy.maxClients = try parser.integer(in: 1...1_000_000)
            case "outbox_budget_bytes": configuration.proxy.outboxBudgetBytes = try parser.integer(in: 4096...(1 << 32))
            case "send_buffer_bytes": configuration.proxy.socketSendBufferBytes = try parser.integer(in: 0...(64 << 20))
            case "ltp_throttle_ms": configuration.ltpThrottle = .milliseconds(Int64(try parser.integer(in: 0...60_000)))
            case "user_id": configuration.proxy.userID = try parser.nonEmpty()
            case "log_level": configuration.logLevel = try parser.logLevel()
            case "ipc_socket": configuration.ipcSocketPath = try parser.socketPath()
            case "ipc_budget_bytes": configuration.ipcOutboxBudgetBytes = try parser.integer(in: 4096...(1 << 32))
            case "event_loops": configuration.clientEventLoops = try parser.integer(in: 0...256)
            case "tick_batch_ms": configuration.tickBatchWindow = .milliseconds(Int64(try parser.integer(in: 0...1_000)))
            default: logger.warning("ignoring unknown configuration key", metadata: ["key": "\(key)", "from": "\(setting.origin)"])
            }
        }
        if let recordOrigin {
            guard !record.instruments.isEmpty, !record.output.isEmpty else {
                throw ConfigurationError("[record] (from \(recordOrigin)) needs instruments and output (or directory)")
            }
            configuration.record = record
        }
    }

    private struct ValueParser {
        var key: String
        var setting: Setting

        func failure(_ expectation: String) -> ConfigurationError {
            ConfigurationError("\(self.key) (from \(self.setting.origin)) must be \(expectation), got '\(self.setting.value)'")
        }

        func nonEmpty() throws(ConfigurationError) -> String {
            let value = self.setting.value.trimmingWhitespace()
            guard !value.isEmpty else { throw self.failure("a non-empty string") }
            return value
        }

        func broker() throws(ConfigurationError) -> String {
            do {
                return try BrokerRegistry.supportedName(self.setting.value.trimmingWhitespace())
            } catch {
                throw ConfigurationError("broker (from \(self.setting.origin)): \(error.message)")
            }
        }

        func integer(in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
            guard let value = Int(self.setting.value.trimmingWhitespace()), range.contains(value) else {
                throw self.failure("an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }

        /// From a millisecond: a value that rounds down to no time at all (`1e-12`) would make the
        /// WebSocket server's housekeeping timer, which runs at most every `ping_interval`, spin.
        func seconds() throws(ConfigurationError) -> TimeAmount {
            guard let value = Double(self.setting.value.trimmingWhitespace()), value >= 0.001, value <= 86_400 else {
                throw self.failure("a number of seconds from 0.001 to 86400")
            }
            return .nanoseconds(Int64(value * 1e9))
        }

        func bookDepth() throws(ConfigurationError) -> Int {
            guard let value = Int(self.setting.value.trimmingWhitespace()), [5, 20, 30, 50].contains(value) else {
                throw self.failure("5, 20, 30 or 50")
            }
            return value
        }

        func absolutePath() throws(ConfigurationError) -> String {
            let value = self.setting.value.trimmingWhitespace()
            guard value.hasPrefix("/") else { throw self.failure("an absolute path") }
            return value
        }

        func mode() throws(ConfigurationError) -> SubscriptionMode {
            guard let mode = SubscriptionMode(label: self.setting.value) else { throw self.failure("LTP, Quote or Depth") }
            return mode
        }

        /// `NSE:RELIANCE, NSE_INDEX:NIFTY`: comma-separated `EXCHANGE:SYMBOL` entries.
        func instruments() throws(ConfigurationError) -> [Instrument] {
            var instruments: [Instrument] = []
            for entry in self.setting.value.split(separator: ",") {
                let text = String(entry).trimmingWhitespace()
                guard let colon = text.firstIndex(of: ":"), colon != text.startIndex, text.index(after: colon) != text.endIndex else {
                    throw self.failure("a list of EXCHANGE:SYMBOL entries (e.g. NSE:RELIANCE)")
                }
                instruments.append(Instrument(exchange: text[..<colon].uppercased(), symbol: String(text[text.index(after: colon)...])))
            }
            guard !instruments.isEmpty else { throw self.failure("a non-empty list of EXCHANGE:SYMBOL entries") }
            return instruments
        }

        func socketPath() throws(ConfigurationError) -> String {
            let value = self.setting.value.trimmingWhitespace()
            guard value.hasPrefix("/"), value.utf8.count < 108 else {
                throw self.failure("an absolute path shorter than 108 bytes")
            }
            return value
        }

        func logLevel() throws(ConfigurationError) -> Logger.Level {
            guard let level = Logger.Level(rawValue: self.setting.value.lowercased()) else {
                throw self.failure("one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return level
        }
    }
}

extension String {
    /// The text without leading and trailing whitespace and line breaks.
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice = slice.dropFirst() }
        while let last = slice.last, last.isWhitespace { slice = slice.dropLast() }
        return String(slice)
    }
}
