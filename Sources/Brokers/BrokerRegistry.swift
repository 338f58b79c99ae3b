import AngelOneFeed
// Agent imports this module alone: the adapter protocol and the settings it passes come with it.
@_exported import BrokerKit
import DhanFeed
import Logging
import NIOCore
import OpenAlgoBusFeed
import ReplayFeed
import SimulatorFeed
import ZerodhaFeed

/// The brokers the agent knows by name, and how to build the ones this build implements.
public enum BrokerRegistry {
    /// One known broker.
    public struct Entry: Sendable {
        /// The canonical name, used in `[brokers.<name>]` and credential file names.
        public var name: String
        /// Other names accepted for it (OpenAlgo calls Angel One `angel`).
        public var aliases: [String]
        /// Builds the adapter; `nil` for brokers this build knows of but does not implement yet.
        public var makeAdapter: (@Sendable (BrokerAdapterContext) throws(BrokerConfigurationError) -> any BrokerAdapter)?

        public var isSupported: Bool { self.makeAdapter != nil }

        /// A broker streamed by ``PooledBrokerFeed``: the one line a new broker's target adds here.
        static func pooled<Broker: PooledFeedBroker>(_ broker: Broker.Type, aliases: [String] = []) -> Entry {
            Entry(
                name: Broker.name,
                aliases: aliases,
                makeAdapter: { context throws(BrokerConfigurationError) in try PooledBrokerFeed<Broker>(context: context) }
            )
        }
    }

    /// Every broker the agent knows, in the order they are listed to people.
    public static let entries: [Entry] = [
        .pooled(ZerodhaBroker.self),
        .pooled(AngelOneBroker.self, aliases: ["angel"]),
        .pooled(DhanBroker.self),
        Entry(name: "fyers", aliases: [], makeAdapter: nil),
        Entry(name: "upstox", aliases: [], makeAdapter: nil),
        Entry(
            name: "simulator",
            aliases: [],
            makeAdapter: { context throws(BrokerConfigurationError) in
                SimulatorFeed(configuration: try SimulatorConfiguration(context.settings), eventLoop: context.eventLoop, logger: context.logger)
            }
        ),
        Entry(
            name: "replay",
            aliases: [],
            makeAdapter: { context throws(BrokerConfigurationError) in
                try ReplayFeed(configuration: try ReplayConfiguration(context.settings), logger: context.logger)
            }
        ),
        Entry(
            name: "zmq",
            aliases: [],
            makeAdapter: { context throws(BrokerConfigurationError) in
                ZeroMQFeed(configuration: try ZeroMQFeedConfiguration(context.settings), eventLoop: context.eventLoop, logger: context.logger)
            }
        ),
    ]

    /// The brokers this build can stream from, as `get_supported_brokers` lists them.
    public static let supportedBrokers = entries.filter(\.isSupported).map(\.name)

    /// Every known canonical name.
    public static let knownBrokers = entries.map(\.name)

    /// The entry for `name` or one of its aliases (case-insensitive).
    public static func entry(named name: String) throws(BrokerConfigurationError) -> Entry {
        let key = name.lowercased()
        guard let entry = entries.first(where: { $0.name == key || $0.aliases.contains(key) }) else {
            let known = entries.map { $0.aliases.isEmpty ? $0.name : "\($0.name) (\($0.aliases.joined(separator: ", ")))" }
            throw BrokerConfigurationError(
                "unknown broker '\(name)'; known brokers: \(known.joined(separator: ", ")); this build supports: \(supportedBrokers.joined(separator: ", "))"
            )
        }
        return entry
    }

    /// The canonical name of a broker this build can stream from, or an error that lists the
    /// known and the supported ones.
    public static func supportedName(_ name: String) throws(BrokerConfigurationError) -> String {
        let entry = try entry(named: name)
        guard entry.isSupported else {
            throw BrokerConfigurationError(
                "broker '\(entry.name)' is not available in this build yet; this build supports: \(supportedBrokers.joined(separator: ", "))"
            )
        }
        return entry.name
    }

    /// Creates the adapter for `name` (case-insensitive, aliases accepted).
    ///
    /// - Parameters:
    ///   - eventLoop: where the adapter runs its timers and I/O; not the hub's loop, so that a
    ///     busy feed and a busy fan-out use both cores.
    ///   - credentials: values given explicitly (IPC `ws_connect`), which win over stored ones.
    ///   - environment: the process environment, where stored credentials are found.
    public static func makeAdapter(
        named name: String,
        settings: BrokerSettings,
        eventLoop: any EventLoop,
        logger: Logger,
        credentials: [String: String] = [:],
        environment: [String: String] = [:]
    ) throws(BrokerConfigurationError) -> any BrokerAdapter {
        let entry = try entry(named: try supportedName(name))
        guard let makeAdapter = entry.makeAdapter else { preconditionFailure("supportedName(_:) returned an unsupported broker") }
        let context = BrokerAdapterContext(
            broker: entry.name,
            settings: settings,
            credentials: credentials,
            environment: environment,
            eventLoop: eventLoop,
            logger: logger
        )
        return try makeAdapter(context)
    }
}
