/// A market-data topic as OpenAlgo adapters publish them on the ZeroMQ bus:
/// `EXCHANGE_SYMBOL_MODE` (current) or `BROKER_EXCHANGE_SYMBOL_MODE` (the original design).
///
/// Exchanges may span two parts (`NSE_INDEX`), and symbols may contain `_` and `:`, so parsing
/// takes the mode from the end, the exchange from the front and leaves the rest to the symbol.
public struct Topic: Hashable, Sendable, CustomStringConvertible {
    public var broker: String?
    public var instrument: Instrument
    public var mode: SubscriptionMode

    public init(broker: String? = nil, instrument: Instrument, mode: SubscriptionMode) {
        self.broker = broker
        self.instrument = instrument
        self.mode = mode
    }

    /// Parses `EXCHANGE_SYMBOL_MODE`, as the reference server does; `nil` for anything it would skip.
    public init?(parsing topic: String) {
        let parts = topic.split(separator: "_", omittingEmptySubsequences: false)
        guard let parsed = Self.parse(parts[...], broker: nil) else { return nil }
        self = parsed
    }

    /// Parses `BROKER_EXCHANGE_SYMBOL_MODE`: the first part is the broker, the rest as ``init(parsing:)``.
    public init?(parsingBrokerPrefixed topic: String) {
        let parts = topic.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count >= 4, !parts[0].isEmpty, let parsed = Self.parse(parts.dropFirst(), broker: String(parts[0])) else {
            return nil
        }
        self = parsed
    }

    private static func parse(_ parts: ArraySlice<Substring>, broker: String?) -> Topic? {
        guard parts.count >= 3, let modePart = parts.last, let mode = SubscriptionMode(label: String(modePart)) else { return nil }
        let rest = parts.dropLast()
        let exchange: String
        let symbolParts: ArraySlice<Substring>
        let first = rest[rest.startIndex]
        let second = rest[rest.startIndex + 1]
        if ExchangeCode.twoPartExchanges.contains("\(first)_\(second)") {
            exchange = "\(first)_\(second)"
            symbolParts = rest.dropFirst(2)
        } else {
            exchange = String(first)
            symbolParts = rest.dropFirst()
        }
        let symbol = symbolParts.joined(separator: "_")
        guard !exchange.isEmpty, !symbol.isEmpty else { return nil }
        return Topic(broker: broker, instrument: Instrument(exchange: exchange, symbol: symbol), mode: mode)
    }

    /// The topic text: `EXCHANGE_SYMBOL_MODE`, with a `BROKER_` prefix when ``broker`` is set.
    public var description: String {
        let base = "\(self.instrument.exchange)_\(self.instrument.symbol)_\(self.mode.topicLabel)"
        if let broker { return "\(broker)_\(base)" }
        return base
    }
}
