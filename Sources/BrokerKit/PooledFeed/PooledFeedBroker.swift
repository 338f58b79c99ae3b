import Logging
import MarketData

/// What one broker gives ``PooledBrokerFeed``: its wire (codec, connection request), its
/// instrument master, its credentials and limits, and where each subscription streams
/// (``FeedRouting``). The feed does the rest, the same way for every broker: see
/// ``PooledBrokerFeed`` for what that is.
///
/// `init(context:)` reads and validates the broker's `[brokers.<name>]` settings, so a bad
/// value is refused when the agent starts rather than on the first subscription.
package protocol PooledFeedBroker: Sendable {
    associatedtype Codec: BrokerFeedCodec
    associatedtype Credentials: Sendable
    associatedtype Routing: FeedRouting

    /// The canonical name: `[brokers.<name>]`, credential file names, log lines.
    static var name: String { get }
    /// The name clients see as `broker`; OpenAlgo calls some brokers otherwise (`angel`).
    static var brokerName: String { get }
    /// Where the broker publishes its instrument master, and the name of its daily copy.
    static var instrumentMaster: (defaultURL: String, cacheFileName: String) { get }
    /// The credential fields ``BrokerCredentials`` looks up, in the order missing ones are named.
    static var credentialFields: [String] { get }

    init(context: BrokerAdapterContext) throws(BrokerConfigurationError)

    var limits: ConnectionPoolLimits { get }
    var configuration: FeedSupervisor<Codec>.Configuration { get }

    /// The broker's credentials from the fields found (each field is there, perhaps empty).
    static func credentials(from fields: [String: String]) -> Credentials
    static func parseInstrumentMaster(_ bytes: [UInt8]) throws(SymbolMasterError) -> SymbolMaster
    /// Whether a master entry can be streamed at all; the others are refused as unknown symbols.
    static func canStream(_ entry: BrokerInstrument) -> Bool

    func connectionRequest(_ credentials: Credentials) throws -> BrokerWebSocketRequest
    func makeCodec(master: SymbolMaster, logger: Logger) -> Codec
    /// The routing for one `connect`: it lives until the next `connect` or `disconnect`.
    func makeRouting(_ connection: FeedRoutingContext<Self>) -> Routing
}

extension PooledFeedBroker {
    package static var brokerName: String { Self.name }
    package static func canStream(_ entry: BrokerInstrument) -> Bool { true }
}

/// What a ``FeedRouting`` is made from on `connect`.
package struct FeedRoutingContext<Broker: PooledFeedBroker>: Sendable {
    package var master: SymbolMaster
    package var pool: FeedConnectionPool<Broker.Codec>
    /// The feed's sink: ticks and states go here.
    package var sink: any FeedEventSink
    package var adapter: BrokerAdapterContext
    /// Reads the credentials again (a new day's token), for sockets the routing opens itself.
    package var readCredentials: @Sendable () throws -> Broker.Credentials
}

/// Where the feed streams an instrument it has a place for in its pool: at which depth on the
/// pool, or elsewhere (Dhan's 20-level socket), and what the ack says.
package struct FeedPlacement: Sendable, Equatable {
    /// The depth the pool streams the instrument at; `nil` when it streams elsewhere.
    package var poolDepth: Int?
    /// The ack's `actualDepth`: set when the broker serves another depth than asked.
    package var actualDepth: Int?

    package init(poolDepth: Int?, actualDepth: Int?) {
        self.poolDepth = poolDepth
        self.actualDepth = actualDepth
    }

    /// On the pool, at `served` levels of book for a Depth request (the depth asked is kept for
    /// LTP and Quote, which carry no book): the rule of brokers with one fixed book depth.
    package static func pool(mode: SubscriptionMode, requested: Int, served: Int) -> FeedPlacement {
        let depth = mode == .depth ? served : requested
        return FeedPlacement(poolDepth: depth, actualDepth: mode == .depth && served != requested ? served : nil)
    }
}

/// The per-broker part of placing subscriptions, for one `connect`. ``place(_:entry:mode:depth:alreadyReserved:plan:)``
/// and ``release(_:plan:)`` run under the feed's lock, so they only decide and record; the calls
/// they lead to go in `plan`, which the feed carries out after the lock.
package protocol FeedRouting: AnyObject, Sendable {
    associatedtype Plan: FeedRoutingPlan = NoRoutingPlan

    /// Where `instrument` streams, now that it has its place in the pool (`alreadyReserved`
    /// when it streamed before this call).
    func place(
        _ instrument: Instrument,
        entry: BrokerInstrument,
        mode: SubscriptionMode,
        depth: Int,
        alreadyReserved: Bool,
        plan: inout Plan
    ) -> FeedPlacement
    /// The instruments stop streaming (the pool releases them itself).
    func release(_ instruments: [Instrument], plan: inout Plan)
    /// The pool failed for good.
    func poolFailed()
    /// Closes what the routing opened itself.
    func stop() async
}

extension FeedRouting {
    package func release(_ instruments: [Instrument], plan: inout Plan) {}
    package func poolFailed() {}
    package func stop() async {}
}

/// Calls a routing decided on under the feed's lock, made after it: ``beforePool()`` before the
/// pool's subscriptions, ``afterPool()`` after them.
package protocol FeedRoutingPlan: Sendable {
    init()
    func beforePool()
    func afterPool()
}

extension FeedRoutingPlan {
    package func beforePool() {}
    package func afterPool() {}
}

/// The plan of routings that make no calls of their own.
package struct NoRoutingPlan: FeedRoutingPlan {
    package init() {}
}

/// Every instrument on the pool at the depth asked, for brokers that serve one book depth
/// whatever is asked (their codec sends it): a Depth ack for another depth says that one.
package final class PoolRouting: FeedRouting {
    private let bookLevels: Int

    package init(bookLevels: Int) {
        self.bookLevels = bookLevels
    }

    package func place(
        _ instrument: Instrument,
        entry: BrokerInstrument,
        mode: SubscriptionMode,
        depth: Int,
        alreadyReserved: Bool,
        plan: inout NoRoutingPlan
    ) -> FeedPlacement {
        FeedPlacement(poolDepth: depth, actualDepth: mode == .depth && depth != self.bookLevels ? self.bookLevels : nil)
    }
}
