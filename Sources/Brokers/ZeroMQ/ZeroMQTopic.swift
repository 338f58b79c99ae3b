import MarketData

/// What a message on OpenAlgo's ZeroMQ bus is, told from its topic (the first frame) exactly as
/// the reference's WebSocket proxy tells it (`websocket_proxy/server.py`, `zmq_listener`):
///
/// 1. a `CACHE_INVALIDATE` prefix: the Flask process asking the proxy to drop cached tokens;
/// 2. an `_orders` suffix (`{BROKER}_{user}_orders`, `ANALYZE_{user}_orders`): an order update;
/// 3. a `_positions` or `_margins` suffix: account events the proxy skips;
/// 4. anything else is market data, `{EXCHANGE}_{SYMBOL}_{MODE}`: split on `_`; fewer than three
///    parts is malformed; the last part is the mode (`LTP`, `QUOTE`, `DEPTH` in any case); the
///    exchange is two parts for `NSE_INDEX`, `BSE_INDEX`, `MCX_INDEX` and `GLOBAL_INDEX`, else
///    one; the symbol is the rest joined with `_` again, so it may contain `_` and `:`.
public enum ZeroMQTopic: Sendable, Equatable {
    case cacheInvalidation
    case orderUpdate
    case accountEvent
    case marketData(Instrument, SubscriptionMode)
    /// Fewer than three parts, or nothing left for the symbol.
    case malformed
    /// The last part names no mode.
    case unknownMode

    /// Exchanges whose code spans two `_`-separated parts of a topic (the reference's
    /// `_MULTI_SEGMENT_EXCHANGE_PREFIXES`).
    static let twoPartExchanges = ExchangeCode.twoPartExchanges

    public init(_ topic: String) {
        if topic.hasPrefix("CACHE_INVALIDATE") {
            self = .cacheInvalidation
        } else if topic.hasSuffix("_orders") {
            self = .orderUpdate
        } else if topic.hasSuffix("_positions") || topic.hasSuffix("_margins") {
            self = .accountEvent
        } else {
            self = Self.marketData(topic)
        }
    }

    private static func marketData(_ topic: String) -> ZeroMQTopic {
        let parts = topic.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return .malformed }
        let rest = parts.dropLast()
        let exchange: String
        let symbolParts: ArraySlice<Substring>
        let twoParts = "\(rest[0])_\(rest[1])"
        if Self.twoPartExchanges.contains(twoParts) {
            exchange = twoParts
            symbolParts = rest.dropFirst(2)
        } else {
            exchange = String(rest[0])
            symbolParts = rest.dropFirst()
        }
        let symbol = symbolParts.joined(separator: "_")
        guard !symbol.isEmpty else { return .malformed }
        guard let mode = SubscriptionMode(label: String(parts[parts.count - 1])) else { return .unknownMode }
        return .marketData(Instrument(exchange: exchange, symbol: symbol), mode)
    }
}
