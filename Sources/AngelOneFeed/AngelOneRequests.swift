import BrokerKit
import MarketData

extension AngelOneMode {
    /// The SmartAPI mode that serves an OpenAlgo mode: LTP → 1, Quote → 2, Depth → 3 (SnapQuote).
    package init(_ mode: SubscriptionMode) {
        switch mode {
        case .ltp: self = .ltp
        case .quote: self = .quote
        case .depth: self = .snapQuote
        }
    }
}

/// What SmartAPI's streaming endpoint checks on upgrade: the session JWT, API key, client code and
/// feed token from the login.
package struct AngelOneCredentials: Sendable, Hashable {
    package var apiKey: String
    package var clientCode: String
    /// Sent as the `Authorization` header exactly as given (the login's `jwtToken`).
    package var jwtToken: String
    package var feedToken: String

    package init(apiKey: String, clientCode: String, jwtToken: String, feedToken: String) {
        self.apiKey = apiKey
        self.clientCode = clientCode
        self.jwtToken = jwtToken
        self.feedToken = feedToken
    }
}

/// The tokens of one exchange type in a request's `tokenList`.
package struct AngelOneTokenGroup: Sendable, Hashable {
    package var exchangeType: AngelOneExchangeType
    package var tokens: [String]

    package init(exchangeType: AngelOneExchangeType, tokens: [String]) {
        self.exchangeType = exchangeType
        self.tokens = tokens
    }
}

/// The JSON text messages SmartAPI WebSocket 2.0 accepts.
package enum AngelOneRequest {
    package static let defaultURL = "wss://smartapisocket.angelone.in/smart-stream"
    /// Token subscriptions per session; each token counts once per mode it is subscribed at.
    package static let maximumSubscriptionsPerSession = 1000
    /// Sessions (connections) SmartAPI allows one client code at once.
    package static let maximumSessions = 3
    /// Depth-20 is limited to 50 tokens, NSE cash only.
    package static let maximumDepth20Tokens = 50
    /// The text heartbeat SmartAPI answers with `pong`; send it every 30 s.
    package static let heartbeat = "ping"

    /// Authentication is by upgrade headers; the URL carries nothing.
    package static func connection(baseURL: String = defaultURL, credentials: AngelOneCredentials) -> BrokerConnectionRequest {
        BrokerConnectionRequest(
            url: baseURL,
            headers: [
                BrokerHeader("Authorization", credentials.jwtToken),
                BrokerHeader("x-api-key", credentials.apiKey),
                BrokerHeader("x-client-code", credentials.clientCode),
                BrokerHeader("x-feed-token", credentials.feedToken),
            ]
        )
    }

    /// `{"correlationID":…,"action":1,"params":{"mode":…,"tokenList":[{"exchangeType":…,"tokens":[…]}]}}`.
    ///
    /// - Parameter correlationID: echoed in SmartAPI's error replies; the docs ask for 10 characters.
    package static func subscribe(mode: AngelOneMode, groups: [AngelOneTokenGroup], correlationID: String) -> String {
        self.message(action: 1, mode: mode, groups: groups, correlationID: correlationID)
    }

    /// The same shape with `"action":0`.
    package static func unsubscribe(mode: AngelOneMode, groups: [AngelOneTokenGroup], correlationID: String) -> String {
        self.message(action: 0, mode: mode, groups: groups, correlationID: correlationID)
    }

    /// Groups tokens by exchange type, groups in order of first appearance, duplicates dropped.
    package static func groups(_ tokens: [(exchangeType: AngelOneExchangeType, token: String)]) -> [AngelOneTokenGroup] {
        var groups: [AngelOneTokenGroup] = []
        var positions: [AngelOneExchangeType: Int] = [:]
        var seen: Set<String> = []
        for (exchangeType, token) in tokens where seen.insert("\(exchangeType.rawValue)|\(token)").inserted {
            if let position = positions[exchangeType] {
                groups[position].tokens.append(token)
            } else {
                positions[exchangeType] = groups.count
                groups.append(AngelOneTokenGroup(exchangeType: exchangeType, tokens: [token]))
            }
        }
        return groups
    }

    private static func message(action: Int, mode: AngelOneMode, groups: [AngelOneTokenGroup], correlationID: String) -> String {
        let list = groups.map { group in
            let tokens = group.tokens.map(JSONText.quoted).joined(separator: ",")
            return "{\"exchangeType\":\(group.exchangeType.rawValue),\"tokens\":[\(tokens)]}"
        }
        return "{\"correlationID\":\(JSONText.quoted(correlationID)),\"action\":\(action),\"params\":{\"mode\":\(mode.rawValue),"
            + "\"tokenList\":[\(list.joined(separator: ","))]}}"
    }
}
