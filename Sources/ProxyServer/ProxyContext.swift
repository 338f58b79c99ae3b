import Logging
import MarketData
import NIOCore
import StreamingHub
import WireJSON

/// What every connection of one server shares: the hub, the settings, the key, and the registry of
/// open connections. Confined to the hub's event loop, like the connections themselves.
final class ProxyContext: HubObserver {
    let hub: StreamingHub
    /// Changed by a configuration reload; connections read it when they need a limit.
    var configuration: ProxyConfiguration
    let verifier: APIKeyVerifier
    let logger: Logger
    private(set) var connections: [SubscriberID: WebSocketConnectionHandler] = [:]
    private(set) var isShuttingDown = false
    private var housekeeping: RepeatedTask?
    /// Connections refused because `max_clients` were already served.
    private(set) var refusedConnections = 0

    init(hub: StreamingHub, configuration: ProxyConfiguration, verifier: APIKeyVerifier, logger: Logger) {
        self.hub = hub
        self.configuration = configuration
        self.verifier = verifier
        self.logger = logger
    }

    var eventLoop: any EventLoop { self.hub.eventLoop }

    /// Whether another client may be served now.
    var hasRoom: Bool { !self.isShuttingDown && self.connections.count < self.configuration.maxClients }

    func makeSubscriberID() -> SubscriberID {
        self.hub.makeSubscriberID()
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

    /// Tells authenticated clients the feed changed state with a `broker_status` frame (the
    /// reference has none; the SDK ignores message types it does not know). When the feed has
    /// failed for good, every client is then closed with 1012, so the SDK reconnects and its
    /// subscriptions restart the feed.
    func feedStateChanged(_ status: HubStatus) {
        var frame: JSONObject = [
            "type": "broker_status",
            "broker": .string(status.brokerName),
            "status": .string(status.feedState.description),
        ]
        switch status.feedState {
        case .failed(let reason): frame["message"] = .string(reason)
        case .reconnecting(let attempt): frame["attempt"] = .int(attempt)
        case .connected, .connecting, .disconnected: break
        }
        for connection in self.connections.values {
            connection.sendBrokerStatus(.object(frame))
        }
        if case .failed(let reason) = status.feedState {
            for connection in self.connections.values {
                connection.close(.feedFailed(reason), graceful: false)
            }
        }
    }

    func brokerSubscriptionChanged(_ update: BrokerSubscriptionUpdate) {}

    /// Relays an order update to every connection that sent `subscribe_orders`. The agent serves
    /// one user, so every order update is that user's.
    func orderUpdateReceived(_ message: ByteBuffer) {
        for connection in self.connections.values {
            connection.sendOrderUpdate(message)
        }
    }

    /// Closes every authenticated connection after the key changed; they must authenticate anew.
    func closeAuthenticatedConnections() -> Int {
        let authenticated = self.connections.values.filter(\.isAuthenticated)
        for connection in authenticated {
            connection.close(.apiKeyRotated, graceful: false)
        }
        return authenticated.count
    }

    /// Closes every connection with 1001 and stops housekeeping.
    func shutDown() {
        self.hub.removeObserver(self)
        self.isShuttingDown = true
        self.housekeeping?.cancel()
        self.housekeeping = nil
        for connection in self.connections.values {
            connection.close(.shuttingDown, graceful: false)
        }
    }
}
