import BrokerKit
import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore

/// Angel One's market data through SmartAPI WebSocket 2.0, as a ``BrokerAdapter``.
///
/// `connect` reads the credentials (`api_key`, `client_code`, `jwt_token`, `feed_token`; see
/// ``BrokerCredentials``), which SmartAPI checks as upgrade headers, and the scrip master
/// (``InstrumentMasterSource``: `OpenAPIScripMaster.json`), then starts a ``FeedConnectionPool``
/// of ``FeedSupervisor``s with ``AngelOneFeedCodec`` and waits for the first connection's
/// outcome, so a refused token is `connect`'s error. The client sends the text `ping` every 10 s (`heartbeat_interval_s`;
/// the reference's client pings every 10 s); SmartAPI's `pong` keeps the stall detector quiet
/// while the market is closed.
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
package final class AngelOneFeed: BrokerAdapter {
    package static let name = "angelone"
    /// Where SmartAPI publishes its scrip master (no login needed).
    package static let defaultInstrumentsURL = "https://margincalculator.angelbroking.com/OpenAPI_File/files/OpenAPIScripMaster.json"
    /// How long `connect` waits for the first connection before letting it carry on in the background.
    static let initialConnectWait = TimeAmount.seconds(15)
    /// The reference's client pings every 10 s (`heartbeat_interval_s`).
    static let heartbeatSeconds = 10.0
    static let fiveLevels = 5

    /// What clients see as `broker`: OpenAlgo's name for Angel One.
    package let brokerName = "angel"
    private let context: BrokerAdapterContext
    private let webSocketURL: String
    private let configuration: FeedSupervisor<AngelOneFeedCodec>.Configuration
    private let limits: ConnectionPoolLimits
    private let state: NIOLockedValueBox<State>

    private struct State {
        var pool: FeedConnectionPool<AngelOneFeedCodec>?
        var master: SymbolMaster?
        /// Instruments streamed by Depth-20.
        var depth20: Set<Instrument> = []
    }

    /// Validates the settings; credentials and the master are read by ``connect(sink:)``, so a
    /// fixed token file is picked up by the next connect.
    package init(context: BrokerAdapterContext) throws(BrokerConfigurationError) {
        self.context = context
        self.webSocketURL = context.settings["ws_url"] ?? AngelOneRequest.defaultURL
        do {
            _ = try WebSocketURL(self.webSocketURL)
        } catch {
            throw BrokerConfigurationError("[brokers.\(Self.name)] ws_url: \(error.message)")
        }
        let supervision = try FeedTuningSettings.supervision(
            context.settings,
            broker: Self.name,
            defaults: FeedSupervisorStateMachine.Configuration(
                reconnect: ReconnectPolicy(),
                stallTimeout: .seconds(90),
                stallCheckInterval: .seconds(30)
            )
        )
        let batching = try FeedTuningSettings.batching(context.settings, broker: Self.name, defaults: SubscriptionBatcher.Configuration())
        let heartbeat = try context.settings.double("heartbeat_interval_s", broker: Self.name, default: Self.heartbeatSeconds)
        guard heartbeat > 0, heartbeat <= 3600 else {
            throw BrokerConfigurationError("[brokers.\(Self.name)] heartbeat_interval_s must be above 0 and at most 3600, got \(heartbeat)")
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
        self.state = NIOLockedValueBox(State())
    }

    package var connectionState: FeedConnectionState {
        self.state.withLockedValue { $0.pool }?.connectionState ?? .disconnected
    }

    package func connect(sink: any FeedEventSink) async throws {
        let credentials = try Self.credentials(self.context)
        let master = try await self.context.loadSymbolMaster(
            defaultURL: Self.defaultInstrumentsURL,
            cacheFileName: "angelone-OpenAPIScripMaster.json"
        ) {
            bytes throws(SymbolMasterError) in try AngelOneScripMaster.parse(json: bytes)
        }

        let baseURL = self.webSocketURL
        let context = self.context
        let configuration = self.configuration
        let pool = FeedConnectionPool(
            limits: self.limits,
            context: context,
            configuration: configuration,
            credentials: credentials,
            readCredentials: { context in try Self.credentials(context) },
            request: { credentials in try BrokerWebSocketRequest(AngelOneRequest.connection(baseURL: baseURL, credentials: credentials)) },
            codec: { logger in AngelOneFeedCodec(master: master, logger: logger) }
        )
        let previous = self.state.withLockedValue { state in
            defer {
                state.pool = pool
                state.master = master
                state.depth20 = []
            }
            return state.pool
        }
        await previous?.stop()
        do {
            try await pool.start(sink: sink, awaitingFirstConnectionWithin: Self.initialConnectWait)
        } catch {
            self.state.withLockedValue { $0.pool = nil }
            throw error
        }
    }

    package func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) async -> [SubscribeOutcome] {
        let (pool, outcomes, accepted) = self.state.withLockedValue { state in
            var outcomes: [SubscribeOutcome] = []
            var accepted: [Int: [Instrument]] = [:]
            for instrument in instruments {
                guard let master = state.master, let pool = state.pool else {
                    outcomes.append(.refused(message: "Broker feed is not connected"))
                    continue
                }
                guard let entry = master.entry(for: instrument) else {
                    outcomes.append(.refused(message: symbolNotFoundMessage(instrument)))
                    continue
                }
                if case .poolFull = pool.reserve(instrument) {
                    outcomes.append(.refused(message: pool.capacityMessage()))
                    continue
                }
                let served = Self.servedDepth(for: instrument, entry: entry, mode: mode, requested: depth, depth20: &state.depth20)
                accepted[served, default: []].append(instrument)
                outcomes.append(.subscribed(actualDepth: mode == .depth && served != depth ? served : nil))
            }
            return (state.pool, outcomes, accepted)
        }
        for (served, group) in accepted.sorted(by: { $0.key < $1.key }) {
            pool?.subscribe(group, mode: mode, depth: served)
        }
        return outcomes
    }

    package func unsubscribe(_ instruments: [Instrument]) async {
        let pool = self.state.withLockedValue { state in
            for instrument in instruments { state.depth20.remove(instrument) }
            return state.pool
        }
        pool?.release(instruments)
    }

    package func disconnect() async {
        let pool = self.state.withLockedValue { state in
            defer {
                state.pool = nil
                state.depth20 = []
            }
            return state.pool
        }
        await pool?.stop()
    }

    /// The depth an instrument is streamed at: Depth-20 for a Depth request of 20 or more
    /// levels on NSE cash while the 50 Depth-20 places last, else SnapQuote's five (the depth
    /// passed for LTP and Quote, which carry none, is kept as asked).
    private static func servedDepth(
        for instrument: Instrument,
        entry: BrokerInstrument,
        mode: SubscriptionMode,
        requested: Int,
        depth20: inout Set<Instrument>
    ) -> Int {
        let twentyLevels =
            mode == .depth && requested >= AngelOneDepth20.levelCount && entry.feedSegment == AngelOneExchangeType.nseCash.rawValue
            && (depth20.contains(instrument) || depth20.count < AngelOneRequest.maximumDepth20Tokens)
        guard twentyLevels else {
            depth20.remove(instrument)
            return mode == .depth ? Self.fiveLevels : requested
        }
        depth20.insert(instrument)
        return AngelOneDepth20.levelCount
    }

    private static func credentials(_ context: BrokerAdapterContext) throws(BrokerCredentialsError) -> AngelOneCredentials {
        let loaded = try BrokerCredentials.load(
            broker: Self.name,
            fields: ["api_key", "client_code", "jwt_token", "feed_token"],
            explicit: context.credentials,
            settings: context.settings,
            environment: context.environment
        )
        context.logger.debug("angelone credentials", metadata: ["sources": "\(loaded)"])
        return AngelOneCredentials(
            apiKey: loaded["api_key"] ?? "",
            clientCode: loaded["client_code"] ?? "",
            jwtToken: loaded["jwt_token"] ?? "",
            feedToken: loaded["feed_token"] ?? ""
        )
    }
}
