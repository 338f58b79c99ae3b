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
package enum ZeroMQTopic: Sendable, Equatable {
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

    package init(_ topic: String) {
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

    /// Tells a topic from its bytes as ``init(_:)`` tells it from its text; `nil` when the bytes
    /// are not UTF-8. An ASCII topic (every topic an adapter builds) is read as bytes, and only the
    /// exchange and symbol of a market-data topic become strings: the bus carries one topic per tick.
    package init?(utf8 topic: UnsafeRawBufferPointer) {
        guard topic.allSatisfy({ $0 < 0x80 }) else {
            guard let text = String(validating: topic, as: UTF8.self) else { return nil }
            self.init(text)
            return
        }
        // For ASCII text, String's prefix, suffix and `_` splitting are byte operations.
        if Self.hasPrefix(topic, "CACHE_INVALIDATE") {
            self = .cacheInvalidation
        } else if Self.hasSuffix(topic, "_orders") {
            self = .orderUpdate
        } else if Self.hasSuffix(topic, "_positions") || Self.hasSuffix(topic, "_margins") {
            self = .accountEvent
        } else {
            self = Self.marketData(ascii: topic)
        }
    }

    /// The exchange codes of ``twoPartExchanges`` as bytes, to compare without making strings.
    private static let twoPartExchangeBytes: [[UInt8]] = twoPartExchanges.map { Array($0.utf8) }

    private static func marketData(ascii topic: UnsafeRawBufferPointer) -> ZeroMQTopic {
        let separator = UInt8(ascii: "_")
        guard let first = topic.firstIndex(of: separator), let last = topic.lastIndex(of: separator), first != last else {
            return .malformed
        }
        let second = topic[(first + 1)...].firstIndex(of: separator)!
        let twoParts = UnsafeRawBufferPointer(rebasing: topic[..<second])
        let exchangeEnd = Self.twoPartExchangeBytes.contains { twoParts.elementsEqual($0) } ? second : first
        guard exchangeEnd + 1 < last else { return .malformed }
        guard let mode = SubscriptionMode(labelUTF8: UnsafeRawBufferPointer(rebasing: topic[(last + 1)...])) else { return .unknownMode }
        let exchange = String(decoding: UnsafeRawBufferPointer(rebasing: topic[..<exchangeEnd]), as: UTF8.self)
        let symbol = String(decoding: UnsafeRawBufferPointer(rebasing: topic[(exchangeEnd + 1)..<last]), as: UTF8.self)
        return .marketData(Instrument(exchange: exchange, symbol: symbol), mode)
    }

    private static func hasPrefix(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        bytes.count >= literal.utf8CodeUnitCount
            && UnsafeRawBufferPointer(rebasing: bytes[..<literal.utf8CodeUnitCount]).elementsEqual(
                UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
            )
    }

    private static func hasSuffix(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        bytes.count >= literal.utf8CodeUnitCount
            && UnsafeRawBufferPointer(rebasing: bytes[(bytes.count - literal.utf8CodeUnitCount)...]).elementsEqual(
                UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
            )
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
