import MarketData
import WireJSON

/// A market-data feed from a broker (or the simulator): it connects upstream, streams the
/// instruments it is asked for, and reports ticks and connection changes to a sink.
///
/// The hub is the only caller of ``subscribe(_:mode:depth:)`` and ``unsubscribe(_:)``, one call at
/// a time; it has already reference-counted the requests, so an adapter streams exactly what it
/// is told, at the mode it is told (a later call for the same instrument upgrades or downgrades it).
public protocol BrokerAdapter: AnyObject, Sendable {
    /// The name clients see as `broker` (`zerodha`, `angel`, `simulator`, ...).
    var brokerName: String { get }
    /// The upstream connection's state.
    var connectionState: FeedConnectionState { get }
    /// Connects upstream and starts reporting to `sink`.
    func connect(sink: any FeedEventSink) async throws
    /// Streams each instrument at `mode`; one outcome per instrument, in order.
    func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) async -> [SubscribeOutcome]
    /// Stops streaming the instruments.
    func unsubscribe(_ instruments: [Instrument]) async
    /// Closes the upstream connection.
    func disconnect() async
    /// A small member for `status` (the replay feed's position), under its own key; most feeds have none.
    var statusDetail: (key: String, value: JSONValue)? { get }
}

extension BrokerAdapter {
    public var statusDetail: (key: String, value: JSONValue)? { nil }
}

/// The text the reference's adapters put in the ack for an instrument they cannot resolve.
public func symbolNotFoundMessage(_ instrument: Instrument) -> String {
    "Symbol \(instrument.symbol) not found for exchange \(instrument.exchange)"
}
