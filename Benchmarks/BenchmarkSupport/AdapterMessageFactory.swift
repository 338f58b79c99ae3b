/// Builds the messages an OpenAlgo broker adapter publishes on the ZeroMQ bus: topic
/// `NSE_BENCH{n}_{LTP|QUOTE|DEPTH}` and a body shaped like the adapters' `json.dumps` output
/// (Python's `", "` and `": "` separators), with prices moving from tick to tick.
public struct AdapterMessageFactory: Sendable {
    public let mode: BenchMode
    private let topics: [[UInt8]]
    private let symbolNames: [String]

    public init(mode: BenchMode, universe: Int) {
        self.mode = mode
        self.symbolNames = (1...universe).map { SubscriptionLayout.symbolName(index: $0 - 1) }
        self.topics = self.symbolNames.map { Array("NSE_\($0)_\(mode.topicSuffix)".utf8) }
    }

    public func topic(symbolIndex: Int) -> [UInt8] {
        self.topics[symbolIndex]
    }

    /// The body of tick `sequence` of symbol `symbolIndex`; `timestampNanoseconds` is the send time
    /// the receiving clients measure latency from.
    public func body(symbolIndex: Int, sequence: Int, timestampNanoseconds: Int64) -> [UInt8] {
        // Whole paise, as brokers send prices, so every printed price is exact.
        let base = 100_000 + symbolIndex * 1_000
        let ltp = base + (sequence % 400) * 5
        let ltt = timestampNanoseconds / 1_000_000
        var text = #"{"ltp": \#(Self.price(ltp)), "ltt": \#(ltt)"#
        if self.mode != .ltp {
            let volume = 100_000 + sequence * 25
            text += #", "volume": \#(volume), "open": \#(Self.price(base)), "high": \#(Self.price(base + 2_000))"#
            text += #", "low": \#(Self.price(base - 1_000)), "close": \#(Self.price(base - 500))"#
            text += #", "last_trade_quantity": \#(25 + sequence % 50), "average_price": \#(Self.price(base + 400))"#
            text += #", "total_buy_quantity": \#(5_000 + sequence % 1_000), "total_sell_quantity": \#(7_000 + sequence % 900)"#
        }
        if self.mode == .depth {
            let buy = (0..<5).map { Self.level(price: ltp - 5 * ($0 + 1), quantity: 100 * ($0 + 1), orders: $0 + 1) }
            let sell = (0..<5).map { Self.level(price: ltp + 5 * ($0 + 1), quantity: 75 * ($0 + 1), orders: $0 + 2) }
            text += #", "depth": {"buy": [\#(buy.joined(separator: ", "))], "sell": [\#(sell.joined(separator: ", "))]}"#
        }
        text += #", "symbol": "\#(self.symbolNames[symbolIndex])", "exchange": "NSE", "mode": \#(self.mode.number)"#
        text += #", "timestamp": \#(timestampNanoseconds)}"#
        return Array(text.utf8)
    }

    private static func level(price: Int, quantity: Int, orders: Int) -> String {
        #"{"price": \#(Self.price(price)), "quantity": \#(quantity), "orders": \#(orders)}"#
    }

    /// Paise as Python's `repr` of the rupee float writes it: `1234.5`, `1234.05`, `1234.0`.
    public static func price(_ paise: Int) -> String {
        let rupees = paise / 100
        let fraction = paise % 100
        if fraction == 0 { return "\(rupees).0" }
        if fraction % 10 == 0 { return "\(rupees).\(fraction / 10)" }
        return fraction < 10 ? "\(rupees).0\(fraction)" : "\(rupees).\(fraction)"
    }
}
