import BrokerKit
import Logging
import NIOCore

/// Zerodha's market data through Kite Ticker (`wss://ws.kite.trade`), as a ``PooledBrokerFeed``.
///
/// Credentials are `api_key` and `access_token` (see ``BrokerCredentials``); the instrument master
/// is Kite's `instruments` CSV (``InstrumentMasterSource``). Kite allows an `api_key` 3
/// connections of 3000 instruments each: by default the pool opens a second and third connection
/// when the first is full, and refuses more instruments with the reference pool's capacity
/// message. Kite serves five levels of book a side whatever depth is asked.
///
/// Settings (`[brokers.zerodha]`): `ws_url`, `instruments_file`, `instruments_url`, the
/// credential fields, and the ``FeedTuningSettings`` keys (`max_connections` up to 3,
/// `max_instruments_per_connection` up to 3000). Reconnects default to the
/// agent's policy for every broker (1 s doubling, at most 30 s, 5 attempts; the `reconnect_*`
/// keys set OpenAlgo's 2 s × 1.5, 60 s, 50 attempts where wanted); a feed
/// silent for 90 s while subscribed is reconnected (Kite sends a heartbeat every second).
package struct ZerodhaBroker: PooledFeedBroker {
    package static let name = "zerodha"
    package static let instrumentMaster = (defaultURL: "https://api.kite.trade/instruments", cacheFileName: "zerodha-instruments.csv")
    package static let credentialFields = ["api_key", "access_token"]

    package let limits: ConnectionPoolLimits
    package let configuration: FeedSupervisor<ZerodhaFeedCodec>.Configuration
    private let webSocketURL: String

    package init(context: BrokerAdapterContext) throws(BrokerConfigurationError) {
        self.webSocketURL = try context.settings.webSocketURL("ws_url", broker: Self.name, default: ZerodhaRequest.defaultURL)
        self.configuration = FeedSupervisor.Configuration(
            supervision: try FeedTuningSettings.supervision(
                context.settings,
                broker: Self.name,
                defaults: FeedSupervisorStateMachine.Configuration()
            ),
            batching: try FeedTuningSettings.batching(
                context.settings,
                broker: Self.name,
                defaults: SubscriptionBatcher.Configuration(
                    window: .milliseconds(500),
                    maximumInstrumentsPerMessage: ZerodhaRequest.maximumTokensPerMessage
                )
            ),
            client: BrokerWebSocketClient.Configuration(keepalive: .ping(every: .seconds(30)))
        )
        self.limits = try FeedTuningSettings.connectionPool(
            context.settings,
            broker: Self.name,
            brokerLimits: ConnectionPoolLimits(
                maximumConnections: ZerodhaRequest.maximumConnections,
                maximumInstrumentsPerConnection: ZerodhaRequest.maximumTokensPerConnection
            )
        )
    }

    /// OpenAlgo stores the token as `<user>:<token>`; Kite wants the part after the first colon.
    package static func credentials(from fields: [String: String]) -> ZerodhaCredentials {
        var token = fields["access_token"] ?? ""
        if let colon = token.firstIndex(of: ":") { token = String(token[token.index(after: colon)...]) }
        return ZerodhaCredentials(apiKey: fields["api_key"] ?? "", accessToken: token)
    }

    package static func parseInstrumentMaster(_ bytes: [UInt8]) throws(SymbolMasterError) -> SymbolMaster {
        try ZerodhaInstrumentMaster.parse(csv: bytes)
    }

    package func connectionRequest(_ credentials: ZerodhaCredentials) throws -> BrokerWebSocketRequest {
        try BrokerWebSocketRequest(ZerodhaRequest.connection(baseURL: self.webSocketURL, credentials: credentials))
    }

    package func makeCodec(master: SymbolMaster, logger: Logger) -> ZerodhaFeedCodec {
        ZerodhaFeedCodec(master: master, logger: logger)
    }

    package func makeRouting(_ connection: FeedRoutingContext<ZerodhaBroker>) -> PoolRouting {
        PoolRouting(bookLevels: ZerodhaDepth.levelCount)
    }
}
