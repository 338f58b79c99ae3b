import BrokerKit
import Logging
import NIOCore

/// Dhan's market data through Live Market Feed v2, as a ``PooledBrokerFeed``.
///
/// Two kinds of socket, each kept alive by its own ``FeedSupervisor``: the 5-level feed
/// (`ws_url`, default `wss://api-feed.dhan.co`) for LTP, Quote and five-level Depth, the pool:
/// Dhan allows a user 5 connections of 5000 instruments each, so by default a second to fifth
/// connection opens as the ones before fill up, and more instruments are refused with the
/// reference pool's capacity message; and the 20-level depth socket (`depth_ws_url`), which
/// ``DhanDepthRouting`` opens and routes to. The feed's state is the pool's: it carries almost
/// every subscription and is what clients are told about.
///
/// Credentials (`client_id`, `access_token`) go in the URL query, as Dhan requires; a
/// `client_id` stored as OpenAlgo's `id:::key` is cut at the `:::`. They are read again before
/// every reconnect. Reconnects default to the agent's policy for every broker (1 s
/// doubling, at most 30 s, 5 attempts; OpenAlgo's Dhan adapter uses 5 s doubling, 60 s, 10); Dhan pings the client, and those pings count as signs of life
/// for the 90 s stall check, so a closed market is not a stall. The ``FeedTuningSettings`` keys
/// apply to both kinds of socket (`max_connections` up to 5 and `max_instruments_per_connection`
/// up to 5000 to the 5-level pool only).
package struct DhanBroker: PooledFeedBroker {
    package static let name = "dhan"
    package static let instrumentMaster = (
        defaultURL: "https://images.dhan.co/api-data/api-scrip-master.csv", cacheFileName: "dhan-api-scrip-master.csv"
    )
    package static let credentialFields = ["client_id", "access_token"]
    static let twentyLevels = 20
    static let fiveLevels = 5

    package let limits: ConnectionPoolLimits
    package let configuration: FeedSupervisor<DhanFeedCodec>.Configuration
    private let depthConfiguration: FeedSupervisor<DhanDepthFeedCodec>.Configuration
    private let webSocketURL: String
    private let depthWebSocketURL: String

    package init(context: BrokerAdapterContext) throws(BrokerConfigurationError) {
        self.webSocketURL = try context.settings.webSocketURL("ws_url", broker: Self.name, default: DhanRequest.defaultURL)
        self.depthWebSocketURL = try context.settings.webSocketURL("depth_ws_url", broker: Self.name, default: DhanRequest.defaultDepthURL)
        let supervision = try FeedTuningSettings.supervision(
            context.settings,
            broker: Self.name,
            defaults: FeedSupervisorStateMachine.Configuration()
        )
        let client = BrokerWebSocketClient.Configuration(keepalive: .ping(every: .seconds(30)))
        self.configuration = FeedSupervisor.Configuration(
            supervision: supervision,
            batching: try FeedTuningSettings.batching(
                context.settings,
                broker: Self.name,
                defaults: SubscriptionBatcher.Configuration(maximumInstrumentsPerMessage: DhanRequest.maximumInstrumentsPerMessage)
            ),
            client: client,
            controlFramesCountAsData: true
        )
        self.depthConfiguration = FeedSupervisor.Configuration(
            supervision: supervision,
            batching: try FeedTuningSettings.batching(
                context.settings,
                broker: Self.name,
                defaults: SubscriptionBatcher.Configuration(maximumInstrumentsPerMessage: DhanRequest.maximumDepthInstruments)
            ),
            client: client,
            controlFramesCountAsData: true
        )
        self.limits = try FeedTuningSettings.connectionPool(
            context.settings,
            broker: Self.name,
            brokerLimits: ConnectionPoolLimits(
                maximumConnections: DhanRequest.maximumConnections,
                maximumInstrumentsPerConnection: DhanRequest.maximumInstrumentsPerConnection
            )
        )
    }

    /// OpenAlgo stores Dhan's BROKER_API_KEY as `client_id:::api_key`.
    package static func credentials(from fields: [String: String]) -> DhanCredentials {
        let clientID = fields["client_id"] ?? ""
        let id = clientID.firstRange(of: ":::").map { String(clientID[..<$0.lowerBound]) } ?? clientID
        return DhanCredentials(clientID: id, accessToken: fields["access_token"] ?? "")
    }

    package static func parseInstrumentMaster(_ bytes: [UInt8]) throws(SymbolMasterError) -> SymbolMaster {
        try DhanScripMaster.parse(csv: bytes)
    }

    /// Dhan's requests name an exchange segment; an entry with none it knows cannot be streamed.
    package static func canStream(_ entry: BrokerInstrument) -> Bool {
        DhanExchangeSegment(rawValue: entry.feedSegment) != nil
    }

    package func connectionRequest(_ credentials: DhanCredentials) throws -> BrokerWebSocketRequest {
        try BrokerWebSocketRequest(DhanRequest.connection(baseURL: self.webSocketURL, credentials: credentials))
    }

    package func makeCodec(master: SymbolMaster, logger: Logger) -> DhanFeedCodec {
        DhanFeedCodec(master: master, logger: logger)
    }

    package func makeRouting(_ connection: FeedRoutingContext<DhanBroker>) -> DhanDepthRouting {
        DhanDepthRouting(connection, webSocketURL: self.depthWebSocketURL, configuration: self.depthConfiguration)
    }
}
