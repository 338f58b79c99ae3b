import Logging
import NIOCore

/// A broker's settings: the keys of its `[brokers.<name>]` table in `agent.toml`, after
/// `OPENALGO_BROKER_<NAME>_<KEY>` environment overrides, as text.
public struct BrokerSettings: Sendable, Equatable {
    public var values: [String: String]

    public init(_ values: [String: String] = [:]) {
        self.values = values
    }

    public subscript(key: String) -> String? { self.values[key] }

    /// A numeric setting, or an error naming the key and the bad value.
    public func double(_ key: String, broker: String, default defaultValue: Double) throws(BrokerConfigurationError) -> Double {
        guard let text = self.values[key] else { return defaultValue }
        guard let value = Double(text), value.isFinite else {
            throw BrokerConfigurationError("[brokers.\(broker)] \(key) must be a number, got '\(text)'")
        }
        return value
    }
}

/// A broker name or setting the agent cannot use; the message says what to change.
public struct BrokerConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { self.message }
}

/// What an adapter factory gets to build a feed.
public struct BrokerAdapterContext: Sendable {
    /// The canonical broker name (`angelone`, even when configured as `angel`).
    public var broker: String
    public var settings: BrokerSettings
    /// Credential values given explicitly (IPC `ws_connect`); see ``BrokerCredentials``.
    public var credentials: [String: String]
    /// The process environment, for ``BrokerCredentials/load(broker:fields:optionalFields:explicit:settings:environment:)``.
    public var environment: [String: String]
    /// Where the adapter runs its sockets and timers.
    public var eventLoop: any EventLoop
    public var logger: Logger

    package init(
        broker: String,
        settings: BrokerSettings,
        credentials: [String: String],
        environment: [String: String],
        eventLoop: any EventLoop,
        logger: Logger
    ) {
        self.broker = broker
        self.settings = settings
        self.credentials = credentials
        self.environment = environment
        self.eventLoop = eventLoop
        self.logger = logger
    }
}

extension BrokerSettings {
    /// The WebSocket URL under `key`, or `defaultURL`; an error naming the key when it is not one.
    package func webSocketURL(_ key: String, broker: String, default defaultURL: String) throws(BrokerConfigurationError) -> String {
        let url = self[key] ?? defaultURL
        do {
            _ = try WebSocketURL(url)
        } catch {
            throw BrokerConfigurationError("[brokers.\(broker)] \(key): \(error.message)")
        }
        return url
    }
}
