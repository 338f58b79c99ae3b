import BrokerKit

/// The `[brokers.zmq]` settings: where the bus is and how clients name the broker.
package struct ZeroMQFeedConfiguration: Sendable, Equatable {
    /// Whether the agent's SUB socket listens (OpenAlgo's own topology: the proxy binds, the
    /// adapters' PUB sockets connect) or connects to a PUB socket that listens.
    package enum SocketMode: String, Sendable, Equatable {
        case bind
        case connect
    }

    /// The address OpenAlgo's adapters publish to (its `ZMQ_HOST`/`ZMQ_PORT`).
    package static let defaultEndpoint = "tcp://127.0.0.1:5555"
    /// What clients see as `broker` unless `broker_name` says otherwise: the bus carries no broker.
    package static let defaultBrokerName = "zmq"

    package var endpoint: String
    package var socketMode: SocketMode
    /// Reported to clients as `broker` (acks, `market_data`, `broker_info`, `status`).
    package var brokerName: String

    package init(endpoint: String = defaultEndpoint, socketMode: SocketMode = .bind, brokerName: String = defaultBrokerName) {
        self.endpoint = endpoint
        self.socketMode = socketMode
        self.brokerName = brokerName
    }

    /// Whether the endpoint can be reached from other machines: a TCP endpoint on an address other
    /// than loopback. The bus has no authentication, so anyone who reaches it can publish prices
    /// (OpenAlgo's sample configuration warns against `ZMQ_HOST=0.0.0.0` for the same reason).
    package var isReachableBeyondThisMachine: Bool {
        guard self.endpoint.hasPrefix("tcp://") else { return false }
        var host = self.endpoint.dropFirst("tcp://".count)
        if let source = host.lastIndex(of: ";") { host = host[host.index(after: source)...] }
        if let port = host.lastIndex(of: ":") { host = host[..<port] }
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return !(host.hasPrefix("127.") || host == "localhost" || host == "::1" || host == "lo")
    }

    /// Reads `endpoint`, `socket_mode` and `broker_name`, with errors that name the key.
    package init(_ settings: BrokerSettings) throws(BrokerConfigurationError) {
        self.init()
        if let endpoint = settings["endpoint"] {
            let trimmed = endpoint.trimmingSpaces()
            guard let separator = trimmed.firstRange(of: "://"), separator.lowerBound != trimmed.startIndex, separator.upperBound != trimmed.endIndex
            else {
                throw BrokerConfigurationError(
                    "[brokers.zmq] endpoint must be a ZeroMQ endpoint such as \(Self.defaultEndpoint), got '\(endpoint)'"
                )
            }
            self.endpoint = trimmed
        }
        if let mode = settings["socket_mode"] {
            guard let socketMode = SocketMode(rawValue: mode.trimmingSpaces().lowercased()) else {
                throw BrokerConfigurationError("[brokers.zmq] socket_mode must be 'bind' or 'connect', got '\(mode)'")
            }
            self.socketMode = socketMode
        }
        if let name = settings["broker_name"] {
            let trimmed = name.trimmingSpaces()
            guard !trimmed.isEmpty else {
                throw BrokerConfigurationError("[brokers.zmq] broker_name must not be empty (it is what clients see as 'broker')")
            }
            self.brokerName = trimmed
        }
    }
}
