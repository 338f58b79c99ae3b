import FakeBrokers
import LocalIPC
import Testing
import WireJSON

/// A fake broker server as ``EveryBrokerFeedTests`` drives it: what every broker's fake can do,
/// under one name.
protocol FakeFeedServer: Sendable {
    /// The server of the socket the feed's state follows (Dhan's 5-level feed).
    var feedServer: FakeBrokerServer { get }
    /// The credential fields and the values the fake accepts.
    var credentials: [String: String] { get }
    /// Settings as a user writes them for this broker, with short delays for tests.
    func settings(_ extra: [String: String]) throws -> [String: String]
    /// The requests connection `index` sent, one line each, in the broker's own words.
    func requestLog(connection index: Int) -> [String]
    /// How many instruments connection `index` streams, as the fake keeps them.
    func subscriptionCount(connection index: Int) -> Int
    /// Messages from the client the fake could not read as requests.
    var unparsedRequests: [String] { get }
    /// The keepalive exchanges the fake has seen so far: heartbeats it sent (Kite), text pings the
    /// client sent (SmartAPI), WebSocket pings answered (Dhan).
    var keepalives: Int { get }
    /// The credentials `ws_connect` gives after `fields` were refused.
    func goodCredentials(_ fields: [String]) -> JSONObject
    func drop()
    func silence()
    func refuse(_ refuse: Bool)
    /// Stops sending ticks while heartbeats go on; `false` for fakes that cannot.
    func pause(_ paused: Bool) -> Bool
    func truncatedFrame()
    func garbageFrame()
    func shutdown() async
}

extension FakeFeedServer {
    var keepalives: Int { self.feedServer.snapshot.pingsAnswered }

    func goodCredentials(_ fields: [String]) -> JSONObject {
        var credentials = JSONObject()
        for field in fields { credentials[field] = self.credentials[field].map { .string($0) } }
        return credentials
    }
}

/// One instrument and the mode a test subscribes it at.
struct FeedSubscription: Sendable {
    var symbol: String
    var exchange: String
    var mode: Int
    var depth: Int?

    init(_ symbol: String, _ exchange: String, mode: Int, depth: Int? = nil) {
        self.symbol = symbol
        self.exchange = exchange
        self.mode = mode
        self.depth = depth
    }
}

/// One broker for ``EveryBrokerFeedTests``: how to start its fake, and what the broker sends
/// and says where brokers differ.
struct FeedBroker: Sendable, CustomTestStringConvertible {
    /// The canonical name (`[brokers.<name>]`, credential file names).
    var name: String
    /// What clients see as `broker`, and the name `ws_connect` is given.
    var clientName: String
    var start: @Sendable () async throws -> any FakeFeedServer

    /// An instrument the master does not know, and one subscribed next to it with the request it sends.
    var unknownSymbol: (symbol: String, exchange: String, known: FeedSubscription, requests: [String])
    /// Subscriptions replayed after a drop, and the requests that replays on the new connection.
    var replay: (subscriptions: [FeedSubscription], requests: Set<String>)
    /// A subscription replayed after a stall, and its requests on the new connection.
    var stall: (subscription: FeedSubscription, requests: [String])
    /// Settings under which only heartbeats arrive while ticks are paused, a stall timeout among them.
    var quietSettings: [String: String]
    /// A credential setting the fake refuses, and the words the refusal and `ws_connect` must carry.
    var refusedCredential: (setting: [String: String], reason: [String], connectMessage: [String])
    /// Credential fields left out, and the start of the message that names them.
    var missingCredentials: (fields: [String], message: String)
    /// The requests a subscription moving LTP → Quote → LTP → nothing sends, when the broker
    /// streams all three on one socket (Dhan moves Depth 20 to another, tested in its own suite).
    var modeChange: [String]?
    /// Checks made once good credentials over `ws_connect` connected.
    var connected: @Sendable (any FakeFeedServer) -> Void = { _ in }

    var testDescription: String { self.name }

    /// Runs `body` with the broker's fake server and an agent streaming from it.
    func withFeed(
        _ extra: [String: String] = [:],
        waitForConnected: Bool = true,
        _ body: (any FakeFeedServer, BrokerFeedAgent) async throws -> Void
    ) async throws {
        let server = try await self.start()
        do {
            try await BrokerFeedAgent.with(broker: self.name, settings: try server.settings(extra), waitForConnected: waitForConnected) {
                try await body(server, $0)
            }
            await server.shutdown()
        } catch {
            await server.shutdown()
            throw error
        }
    }
}

extension TestWebSocketClient {
    /// Sends a subscribe for one instrument and returns the ack.
    func subscribe(_ subscription: FeedSubscription) throws -> JSONObject {
        let depthField = subscription.depth.map { #", "depth": \#($0)"# } ?? ""
        try self.send(
            #"{"action": "subscribe", "symbols": [{"symbol": "\#(subscription.symbol)", "exchange": "\#(subscription.exchange)"}], "mode": \#(subscription.mode)\#(depthField)}"#
        )
        return try #require(try self.receiveReply().objectValue)
    }
}
