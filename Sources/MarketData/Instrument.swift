/// A tradable thing as OpenAlgo names it: an exchange code (`NSE`, `NFO`, `NSE_INDEX`, ...) and the
/// OpenAlgo symbol on it (`RELIANCE`, `NIFTY28DEC2425000CE`, `NIFTY`).
///
/// Both parts are kept exactly as the client sent them: the reference matches subscriptions by
/// the literal strings, and the envelope echoes them back unchanged.
public struct Instrument: Hashable, Sendable, CustomStringConvertible {
    public var exchange: String
    public var symbol: String

    public init(exchange: String, symbol: String) {
        self.exchange = exchange
        self.symbol = symbol
    }

    /// `EXCHANGE:SYMBOL`, the spelling used in logs and on the command line.
    public var description: String { "\(self.exchange):\(self.symbol)" }
}

/// The exchange codes OpenAlgo uses, and what the agent knows about each.
public enum ExchangeCode {
    /// Exchanges whose code spans two `_`-separated parts in a topic.
    public static let twoPartExchanges: Set<String> = ["NSE_INDEX", "BSE_INDEX", "MCX_INDEX", "GLOBAL_INDEX"]

    /// Cash, derivative, currency, commodity and index exchanges of OpenAlgo.
    public static let known: Set<String> = [
        "NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX", "NCDEX", "NSE_INDEX", "BSE_INDEX", "MCX_INDEX",
    ]

    /// Exchanges whose instruments are futures and options (they carry open interest).
    public static let derivatives: Set<String> = ["NFO", "BFO", "CDS", "BCD", "MCX", "NCDEX"]

    /// Exchanges whose instruments are indices (no volume, no order book).
    public static let indices: Set<String> = ["NSE_INDEX", "BSE_INDEX", "MCX_INDEX", "GLOBAL_INDEX"]
}
