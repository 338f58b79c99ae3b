import BrokerKit
import MarketData

/// The request codes of Dhan's 5-level feed; unsubscribing uses the subscribe code plus one.
package enum DhanFeedMode: Int, Sendable, Hashable {
    case ticker = 15
    case quote = 17
    case full = 21

    /// The feed mode that serves an OpenAlgo mode: LTP → Ticker (15), Quote → Quote (17), Depth → Full (21).
    package init(_ mode: SubscriptionMode) {
        switch mode {
        case .ltp: self = .ticker
        case .quote: self = .quote
        case .depth: self = .full
        }
    }

    package var subscribeCode: Int { self.rawValue }
    package var unsubscribeCode: Int { self.rawValue + 1 }
}

/// What Dhan's feeds check, in the query string: the client id and the access token.
package struct DhanCredentials: Sendable, Hashable {
    package var clientID: String
    package var accessToken: String

    package init(clientID: String, accessToken: String) {
        self.clientID = clientID
        self.accessToken = accessToken
    }
}

/// An instrument as Dhan's requests name it.
package struct DhanInstrumentReference: Sendable, Hashable {
    package var exchangeSegment: DhanExchangeSegment
    package var securityID: String

    package init(exchangeSegment: DhanExchangeSegment, securityID: String) {
        self.exchangeSegment = exchangeSegment
        self.securityID = securityID
    }
}

/// The JSON text messages of Dhan's 5-level and 20-level feeds.
package enum DhanRequest {
    package static let defaultURL = "wss://api-feed.dhan.co"
    package static let defaultDepthURL = "wss://depth-api-feed.dhan.co/twentydepth"
    package static let maximumInstrumentsPerMessage = 100
    package static let maximumInstrumentsPerConnection = 5000
    /// Live Market Feed connections Dhan allows one user at once.
    package static let maximumConnections = 5
    /// The 20-level feed takes at most 50 instruments, NSE equity and derivatives only.
    package static let maximumDepthInstruments = 50
    package static let depthSubscribeCode = 23
    package static let depthUnsubscribeCode = 25
    /// Asks the server to close the connection.
    package static let disconnect = "{\"RequestCode\":12}"

    /// The 5-level feed: `?version=2&token=…&clientId=…&authType=2`.
    package static func connection(baseURL: String = defaultURL, credentials: DhanCredentials) -> BrokerConnectionRequest {
        BrokerConnectionRequest(
            url: URLQuery.append(
                [("version", "2"), ("token", credentials.accessToken), ("clientId", credentials.clientID), ("authType", "2")],
                to: baseURL
            )
        )
    }

    /// The 20-level feed: `?token=…&clientId=…&authType=2`.
    package static func depthConnection(baseURL: String = defaultDepthURL, credentials: DhanCredentials) -> BrokerConnectionRequest {
        BrokerConnectionRequest(
            url: URLQuery.append([("token", credentials.accessToken), ("clientId", credentials.clientID), ("authType", "2")], to: baseURL)
        )
    }

    /// Subscribe messages for `mode`, at most ``maximumInstrumentsPerMessage`` instruments each.
    package static func subscribeMessages(_ instruments: [DhanInstrumentReference], mode: DhanFeedMode) -> [String] {
        self.messages(code: mode.subscribeCode, instruments, batch: self.maximumInstrumentsPerMessage)
    }

    /// Unsubscribe messages (code + 1), batched the same way.
    package static func unsubscribeMessages(_ instruments: [DhanInstrumentReference], mode: DhanFeedMode) -> [String] {
        self.messages(code: mode.unsubscribeCode, instruments, batch: self.maximumInstrumentsPerMessage)
    }

    /// 20-level subscribe messages (code 23), at most 50 instruments each.
    package static func depthSubscribeMessages(_ instruments: [DhanInstrumentReference]) -> [String] {
        self.messages(code: self.depthSubscribeCode, instruments, batch: self.maximumDepthInstruments)
    }

    /// 20-level unsubscribe messages (code 25), which must list the instruments to stop.
    package static func depthUnsubscribeMessages(_ instruments: [DhanInstrumentReference]) -> [String] {
        self.messages(code: self.depthUnsubscribeCode, instruments, batch: self.maximumDepthInstruments)
    }

    /// Whether the 20-level feed serves a segment.
    package static func supportsTwentyLevelDepth(_ segment: DhanExchangeSegment) -> Bool {
        segment == .nseEquity || segment == .nseDerivatives
    }

    private static func messages(code: Int, _ instruments: [DhanInstrumentReference], batch: Int) -> [String] {
        stride(from: 0, to: instruments.count, by: batch).map { start in
            let slice = instruments[start..<min(start + batch, instruments.count)]
            let list = slice.map {
                "{\"ExchangeSegment\":\(JSONText.quoted($0.exchangeSegment.name)),\"SecurityId\":\(JSONText.quoted($0.securityID))}"
            }
            return "{\"RequestCode\":\(code),\"InstrumentCount\":\(slice.count),\"InstrumentList\":[\(list.joined(separator: ","))]}"
        }
    }
}
