import Logging
import NIOCore
import StreamingHub

/// What every connection of one server shares: the hub, the settings, the key, and the registry of
/// open connections. Confined to the hub's event loop, like the connections themselves.
final class ProxyContext {
    let hub: StreamingHub
    let configuration: ProxyConfiguration
    let verifier: APIKeyVerifier
    let logger: Logger
    private(set) var connections: [SubscriberID: WebSocketConnectionHandler] = [:]
    private var nextConnectionNumber: UInt64
    private(set) var isShuttingDown = false
    private var housekeeping: RepeatedTask?
    /// Connections refused because `max_clients` were already served.
    private(set) var refusedConnections = 0

    init(hub: StreamingHub, configuration: ProxyConfiguration, verifier: APIKeyVerifier, logger: Logger, firstConnectionNumber: UInt64) {
        self.hub = hub
        self.configuration = configuration
        self.verifier = verifier
        self.logger = logger
        self.nextConnectionNumber = firstConnectionNumber
    }

    var eventLoop: any EventLoop { self.hub.eventLoop }

    /// Whether another client may be served now.
    var hasRoom: Bool { !self.isShuttingDown && self.connections.count < self.configuration.maxClients }

    func makeSubscriberID() -> SubscriberID {
        self.nextConnectionNumber += 1
        return SubscriberID(rawValue: self.nextConnectionNumber)
    }

    func connectionOpened(_ connection: WebSocketConnectionHandler) {
        self.connections[connection.subscriberID] = connection
    }

    func connectionClosed(_ connection: WebSocketConnectionHandler) {
        self.connections[connection.subscriberID] = nil
    }

    func connectionRefused() {
        self.refusedConnections += 1
    }

    /// Starts the once-a-second pass that sends keepalive pings and enforces the deadlines.
    func startHousekeeping() {
        let context = NIOLoopBound(self, eventLoop: self.eventLoop)
        let period = min(TimeAmount.seconds(1), self.configuration.pingInterval)
        self.housekeeping = self.eventLoop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in
            let now = NIODeadline.now()
            for connection in context.value.connections.values {
                connection.housekeeping(now: now)
            }
        }
    }

    /// Closes every connection with 1001 and stops housekeeping.
    func shutDown() {
        self.isShuttingDown = true
        self.housekeeping?.cancel()
        self.housekeeping = nil
        for connection in self.connections.values {
            connection.close(.shuttingDown, graceful: false)
        }
    }
}
