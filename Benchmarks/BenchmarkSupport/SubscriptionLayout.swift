/// An OpenAlgo subscription mode, as clients ask for it and as the bus's topics name it.
public enum BenchMode: String, Sendable, CaseIterable {
    case ltp
    case quote
    case depth

    /// The `mode` number of `subscribe` requests and of `market_data` frames.
    public var number: Int {
        switch self {
        case .ltp: return 1
        case .quote: return 2
        case .depth: return 3
        }
    }

    /// The last part of the bus topic (`NSE_BENCH1_QUOTE`).
    public var topicSuffix: String {
        self.rawValue.uppercased()
    }
}

/// Which symbols each client subscribes to: client `c` takes the `symbolsPerClient` consecutive
/// symbols of the universe starting at `c` (wrapping), so with a universe as large as one
/// client's list every client has the same symbols, and with a larger one the load spreads.
/// The first `stalled` clients stop reading once subscribed and are not expected to receive.
public struct SubscriptionLayout: Sendable, Equatable {
    public let clients: Int
    public let symbolsPerClient: Int
    public let universe: Int
    public let stalled: Int

    public init(clients: Int, symbolsPerClient: Int, universe: Int, stalled: Int) {
        self.clients = clients
        self.symbolsPerClient = symbolsPerClient
        self.universe = max(universe, symbolsPerClient)
        self.stalled = min(stalled, clients)
    }

    /// `BENCH1`, `BENCH2`, ... for symbol indices 0, 1, ...
    public static func symbolName(index: Int) -> String {
        "BENCH\(index + 1)"
    }

    /// The universe indices of the symbols client `client` subscribes to.
    public func symbolIndices(ofClient client: Int) -> [Int] {
        (0..<self.symbolsPerClient).map { (client + $0) % self.universe }
    }

    public func isStalled(client: Int) -> Bool {
        client < self.stalled
    }

    /// How many reading (not stalled) clients subscribe to each symbol of the universe.
    public var readersPerSymbol: [Int] {
        var readers = Array(repeating: 0, count: self.universe)
        for client in self.stalled..<self.clients {
            for symbol in self.symbolIndices(ofClient: client) { readers[symbol] += 1 }
        }
        return readers
    }

    /// The frames the reading clients should receive, all together, for `ticks[s]` ticks of symbol `s`.
    public func expectedFrames(ticksPerSymbol ticks: [Int]) -> Int {
        zip(self.readersPerSymbol, ticks).reduce(0) { $0 + $1.0 * $1.1 }
    }

    /// The frames client `client` should receive for `ticks[s]` ticks of symbol `s`.
    public func expectedFrames(ofClient client: Int, ticksPerSymbol ticks: [Int]) -> Int {
        self.symbolIndices(ofClient: client).reduce(0) { $0 + ticks[$1] }
    }

    /// The `subscribe` request of client `client`, as the OpenAlgo SDK writes it.
    public func subscribeRequest(ofClient client: Int, mode: BenchMode) -> String {
        let list = self.symbolIndices(ofClient: client).map { #"{"symbol": "\#(Self.symbolName(index: $0))", "exchange": "NSE"}"# }
        return #"{"action": "subscribe", "mode": \#(mode.number), "symbols": [\#(list.joined(separator: ", "))]}"#
    }

    /// The local socket's `ws_subscribe` request of client `client`.
    public func localSubscribeRequest(ofClient client: Int, mode: BenchMode) -> String {
        let list = self.symbolIndices(ofClient: client).map { #"{"symbol": "\#(Self.symbolName(index: $0))", "exchange": "NSE"}"# }
        return
            #"{"jsonrpc": "2.0", "id": 1, "method": "ws_subscribe", "params": {"mode": \#(mode.number), "symbols": [\#(list.joined(separator: ", "))]}}"#
    }
}
