import BrokerKit
import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore

/// Angel One's market data through SmartAPI WebSocket 2.0, as a ``PooledBrokerFeed``.
///
/// Credentials are `api_key`, `client_code`, `jwt_token` and `feed_token` (see
/// ``BrokerCredentials``), which SmartAPI checks as upgrade headers; the instrument master is
/// `OpenAPIScripMaster.json` (``InstrumentMasterSource``). The client sends the text `ping` every
/// 10 s (`heartbeat_interval_s`; the reference's client pings every 10 s); SmartAPI's `pong` keeps
/// the stall detector quiet while the market is closed.
///
/// Limits (SmartAPI's documentation): one session carries at most 1000 token subscriptions (each
/// instrument streams at one mode, so 1000 instruments), and a client code may hold 3 sessions:
/// by default the pool opens a second and third session when the first is full, and refuses
/// more instruments one by one with the reference pool's capacity message. Depth is five levels
/// (SnapQuote); a Depth request for 20 or more levels on NSE cash is served by Depth-20 (twenty
/// levels, no prices besides the book) while fewer than 50 tokens use it (across all sessions),
/// and otherwise falls back to five levels, which the ack's `actualDepth` says.
///
/// Settings (`[brokers.angelone]`): `ws_url`, `instruments_file`, `instruments_url`,
/// `heartbeat_interval_s`, the credential fields, and the ``FeedTuningSettings`` keys
/// (`max_connections` up to 3, `max_instruments_per_connection` up to 1000).
/// Reconnects default to the agent's policy for every broker (1 s doubling, at most 30 s,
/// 5 attempts; OpenAlgo's adapter uses 5 s doubling, 60 s, 10); 90 s of silence while subscribed forces a reconnect.
package struct AngelOneBroker: PooledFeedBroker {
    package static let name = "angelone"
    /// What clients see as `broker`: OpenAlgo's name for Angel One.
    package static let brokerName = "angel"
    package static let instrumentMaster = (
        defaultURL: "https://margincalculator.angelbroking.com/OpenAPI_File/files/OpenAPIScripMaster.json",
        cacheFileName: "angelone-OpenAPIScripMaster.json"
    )
    package static let credentialFields = ["api_key", "client_code", "jwt_token", "feed_token"]
    /// The reference's client pings every 10 s (`heartbeat_interval_s`).
    static let heartbeatSeconds = 10.0

    package let limits: ConnectionPoolLimits
    package let configuration: FeedSupervisor<AngelOneFeedCodec>.Configuration
    private let webSocketURL: String

    package init(context: BrokerAdapterContext) throws(BrokerConfigurationError) {
        self.webSocketURL = try context.settings.webSocketURL("ws_url", broker: Self.name, default: AngelOneRequest.defaultURL)
        let supervision = try FeedTuningSettings.supervision(
            context.settings,
            broker: Self.name,
            defaults: FeedSupervisorStateMachine.Configuration()
        )
        let batching = try FeedTuningSettings.batching(context.settings, broker: Self.name, defaults: SubscriptionBatcher.Configuration())
        let heartbeat = try context.settings.double("heartbeat_interval_s", broker: Self.name, default: Self.heartbeatSeconds)
        // From a millisecond: an interval that rounds down to no time at all (1e-12) would send
        // pings back to back on the event loop.
        guard heartbeat >= 0.001, heartbeat <= 3600 else {
            throw BrokerConfigurationError("[brokers.\(Self.name)] heartbeat_interval_s must be from 0.001 to 3600 seconds, got \(heartbeat)")
        }
        self.configuration = FeedSupervisor.Configuration(
            supervision: supervision,
            batching: batching,
            client: BrokerWebSocketClient.Configuration(
                keepalive: .text(AngelOneRequest.heartbeat, every: .nanoseconds(Int64(heartbeat * 1e9)))
            )
        )
        self.limits = try FeedTuningSettings.connectionPool(
            context.settings,
            broker: Self.name,
            brokerLimits: ConnectionPoolLimits(
                maximumConnections: AngelOneRequest.maximumSessions,
                maximumInstrumentsPerConnection: AngelOneRequest.maximumSubscriptionsPerSession
            )
        )
    }

    package static func credentials(from fields: [String: String]) -> AngelOneCredentials {
        AngelOneCredentials(
            apiKey: fields["api_key"] ?? "",
            clientCode: fields["client_code"] ?? "",
            jwtToken: fields["jwt_token"] ?? "",
            feedToken: fields["feed_token"] ?? ""
        )
    }

    package static func parseInstrumentMaster(_ bytes: [UInt8]) throws(SymbolMasterError) -> SymbolMaster {
        try AngelOneScripMaster.parse(json: bytes)
    }

    package func connectionRequest(_ credentials: AngelOneCredentials) throws -> BrokerWebSocketRequest {
        try BrokerWebSocketRequest(AngelOneRequest.connection(baseURL: self.webSocketURL, credentials: credentials))
    }

    package func makeCodec(master: SymbolMaster, logger: Logger) -> AngelOneFeedCodec {
        AngelOneFeedCodec(master: master, logger: logger)
    }

    package func makeRouting(_ connection: FeedRoutingContext<AngelOneBroker>) -> AngelOneDepthRouting {
        AngelOneDepthRouting()
    }
}

/// Angel One's book depths: Depth-20 for a Depth request of 20 or more levels on NSE cash while
/// the 50 Depth-20 places last, else SnapQuote's five.
package final class AngelOneDepthRouting: FeedRouting {
    static let fiveLevels = 5
    /// Instruments streamed by Depth-20.
    private let depth20: NIOLockedValueBox<Set<Instrument>>

    init() {
        self.depth20 = NIOLockedValueBox([])
    }

    package func place(
        _ instrument: Instrument,
        entry: BrokerInstrument,
        mode: SubscriptionMode,
        depth: Int,
        alreadyReserved: Bool,
        plan: inout NoRoutingPlan
    ) -> FeedPlacement {
        self.depth20.withLockedValue { depth20 in
            let twentyLevels =
                mode == .depth && depth >= AngelOneDepth20.levelCount && entry.feedSegment == AngelOneExchangeType.nseCash.rawValue
                && (depth20.contains(instrument) || depth20.count < AngelOneRequest.maximumDepth20Tokens)
            guard twentyLevels else {
                depth20.remove(instrument)
                return .pool(mode: mode, requested: depth, served: Self.fiveLevels)
            }
            depth20.insert(instrument)
            return .pool(mode: mode, requested: depth, served: AngelOneDepth20.levelCount)
        }
    }

    package func release(_ instruments: [Instrument], plan: inout NoRoutingPlan) {
        self.depth20.withLockedValue { depth20 in
            for instrument in instruments { depth20.remove(instrument) }
        }
    }
}
