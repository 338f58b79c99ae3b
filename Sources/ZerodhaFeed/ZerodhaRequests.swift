import BrokerKit
import MarketData

/// Kite's streaming modes; one per token at a time, the last `mode` message wins.
package enum ZerodhaMode: String, Sendable, Hashable {
    case ltp
    case quote
    case full

    /// The Kite mode that serves an OpenAlgo mode: LTP → `ltp`, Quote → `quote`, Depth → `full`.
    package init(_ mode: SubscriptionMode) {
        switch mode {
        case .ltp: self = .ltp
        case .quote: self = .quote
        case .depth: self = .full
        }
    }
}

/// What Kite Ticker needs to let a client in: the Kite Connect app's API key and the day's access token.
package struct ZerodhaCredentials: Sendable, Hashable {
    package var apiKey: String
    package var accessToken: String

    package init(apiKey: String, accessToken: String) {
        self.apiKey = apiKey
        self.accessToken = accessToken
    }
}

/// The text messages Kite Ticker accepts, built exactly as Kite's clients send them.
package enum ZerodhaRequest {
    package static let defaultURL = "wss://ws.kite.trade"
    /// Tokens per connection Kite allows.
    package static let maximumTokensPerConnection = 3000
    /// Connections Kite allows one `api_key` at once.
    package static let maximumConnections = 3
    /// Tokens per subscribe or mode message; the reference batches at this size.
    package static let maximumTokensPerMessage = 200

    /// Kite authenticates with query parameters; `X-Kite-Version: 3` is what official clients send.
    package static func connection(baseURL: String = defaultURL, credentials: ZerodhaCredentials) -> BrokerConnectionRequest {
        BrokerConnectionRequest(
            url: URLQuery.append([("api_key", credentials.apiKey), ("access_token", credentials.accessToken)], to: baseURL),
            headers: [BrokerHeader("X-Kite-Version", "3")]
        )
    }

    /// `{"a":"subscribe","v":[…]}`; Kite then streams the tokens in `quote` mode until told otherwise.
    package static func subscribe(_ tokens: [UInt32]) -> String {
        "{\"a\":\"subscribe\",\"v\":\(self.list(tokens))}"
    }

    /// `{"a":"mode","v":["full",[…]]}`.
    package static func mode(_ mode: ZerodhaMode, tokens: [UInt32]) -> String {
        "{\"a\":\"mode\",\"v\":[\"\(mode.rawValue)\",\(self.list(tokens))]}"
    }

    /// `{"a":"unsubscribe","v":[…]}`.
    package static func unsubscribe(_ tokens: [UInt32]) -> String {
        "{\"a\":\"unsubscribe\",\"v\":\(self.list(tokens))}"
    }

    /// The messages that stream `tokens` at `mode`: a subscribe then a mode message per batch of at
    /// most ``maximumTokensPerMessage`` tokens, in order.
    package static func subscribeMessages(_ tokens: [UInt32], mode: SubscriptionMode) -> [String] {
        self.batches(tokens).flatMap { [self.subscribe($0), self.mode(ZerodhaMode(mode), tokens: $0)] }
    }

    /// The unsubscribe messages for `tokens`, batched like ``subscribeMessages(_:mode:)``.
    package static func unsubscribeMessages(_ tokens: [UInt32]) -> [String] {
        self.batches(tokens).map { self.unsubscribe($0) }
    }

    private static func batches(_ tokens: [UInt32]) -> [[UInt32]] {
        stride(from: 0, to: tokens.count, by: self.maximumTokensPerMessage).map {
            Array(tokens[$0..<min($0 + self.maximumTokensPerMessage, tokens.count)])
        }
    }

    private static func list(_ tokens: [UInt32]) -> String {
        "[" + tokens.map { String($0) }.joined(separator: ",") + "]"
    }
}
