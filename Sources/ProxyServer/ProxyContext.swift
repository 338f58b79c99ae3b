import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore
import StreamingHub
import WireJSON

/// What every connection on one event loop shares: the way to the hub, the settings, the key, and
/// the registry of that loop's open connections. Confined to its loop, like the connections.
///
/// The server keeps one per client loop (see ``ProxyLoops``); the hub's observer events reach
/// each of them as one task on its loop.
final class ProxyContext {
    let hub: HubConnector
    let eventLoop: any EventLoop
    /// Changed by a configuration reload; connections read it when they need a limit.
    var configuration: ProxyConfiguration
    let verifier: APIKeyVerifier
    let logger: Logger
    /// Connections served by all loops together, against `max_clients`.
    private let slots: ConnectionSlots
    private(set) var connections: [SubscriberID: WebSocketConnectionHandler] = [:]
    private(set) var isShuttingDown = false
    private var housekeeping: RepeatedTask?
    /// Connections this loop refused because `max_clients` were already served.
    private(set) var refusedConnections = 0

    init(
        hub: HubConnector,
        eventLoop: any EventLoop,
        configuration: ProxyConfiguration,
        verifier: APIKeyVerifier,
        slots: ConnectionSlots,
        logger: Logger
    ) {
        self.hub = hub
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.verifier = verifier
        self.slots = slots
        self.logger = logger
    }

    func makeSubscriberID() -> SubscriberID {
        self.hub.makeSubscriberID()
    }

    /// Takes one of the `max_clients` places for a new connection, if one is free; a connection
    /// that got one gives it back when it closes.
    func admitConnection() -> Bool {
        guard !self.isShuttingDown, self.slots.take(limit: self.configuration.maxClients) else {
            self.refusedConnections += 1
            return false
        }
        return true
    }

    /// Gives back the place ``admitConnection()`` took for a connection whose handlers could not
    /// be set up (its channel closed during the upgrade).
    func admissionFailed() {
        self.slots.release()
    }

    func connectionOpened(_ connection: WebSocketConnectionHandler) {
        self.connections[connection.subscriberID] = connection
    }

    func connectionClosed(_ connection: WebSocketConnectionHandler) {
        if self.connections.removeValue(forKey: connection.subscriberID) != nil {
            self.slots.release()
        }
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
        self.isShuttingDown = true
        self.housekeeping?.cancel()
        self.housekeeping = nil
        for connection in self.connections.values {
            connection.close(.shuttingDown, graceful: false)
        }
    }
}

@available(*, unavailable)
extension ProxyContext: Sendable {}

/// The `max_clients` places, shared by the connections of every loop.
final class ConnectionSlots: Sendable {
    private let taken = NIOLockedValueBox(0)

    init() {}

    /// Takes a place if fewer than `limit` are taken.
    func take(limit: Int) -> Bool {
        self.taken.withLockedValue { taken in
            guard taken < limit else { return false }
            taken += 1
            return true
        }
    }

    func release() {
        self.taken.withLockedValue { $0 -= 1 }
    }
}

/// The server's contexts, one per client event loop, and the observer on the hub's loop that
/// passes the hub's events to each of them.
struct ProxyLoops: Sendable {
    private let contexts: [NIOLoopBound<ProxyContext>]

    init(_ contexts: [NIOLoopBound<ProxyContext>]) {
        precondition(!contexts.isEmpty, "the server needs at least one event loop")
        self.contexts = contexts
    }

    /// The context of the loop a new connection was placed on.
    func context(for loop: any EventLoop) -> NIOLoopBound<ProxyContext> {
        guard let context = self.contexts.first(where: { $0.eventLoop === loop }) else {
            preconditionFailure("a connection was placed on an event loop the server does not serve")
        }
        return context
    }

    /// Runs `body` on every loop with its context and collects the results.
    func onEveryLoop<Result: Sendable>(_ body: @escaping @Sendable (ProxyContext) -> Result) async throws -> [Result] {
        var results: [Result] = []
        for context in self.contexts {
            results.append(try await context.eventLoop.submit { body(context.value) }.get())
        }
        return results
    }

    /// Runs `body` on every loop with its context, without waiting.
    func executeOnEveryLoop(inlineOnCurrentLoop: Bool = false, _ body: @escaping @Sendable (ProxyContext) -> Void) {
        for context in self.contexts {
            if inlineOnCurrentLoop && context.eventLoop.inEventLoop {
                body(context.value)
            } else {
                context.eventLoop.execute { body(context.value) }
            }
        }
    }
}

/// Passes the hub's feed-state changes and order updates to every client loop, one task per loop.
final class ProxyHubObserver: HubObserver {
    private let loops: ProxyLoops

    init(loops: ProxyLoops) {
        self.loops = loops
    }

    func feedStateChanged(_ status: HubStatus) {
        self.loops.executeOnEveryLoop { $0.feedStateChanged(status) }
    }

    func brokerSubscriptionChanged(_ update: BrokerSubscriptionUpdate) {}

    /// On the hub's own loop the order update is sent at once rather than in a task of its own:
    /// a tick fanned out after it is written to that loop's clients directly, and must not
    /// overtake it.
    func orderUpdateReceived(_ message: ByteBuffer) {
        self.loops.executeOnEveryLoop(inlineOnCurrentLoop: true) { $0.orderUpdateReceived(message) }
    }
}
