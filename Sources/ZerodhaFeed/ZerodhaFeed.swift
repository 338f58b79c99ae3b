import BrokerKit
import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore

/// Zerodha's market data through Kite Ticker (`wss://ws.kite.trade`), as a ``BrokerAdapter``.
///
/// `connect` reads the credentials (`api_key`, `access_token`, see ``BrokerCredentials``) and the
/// instrument master (``InstrumentMasterSource``: Kite's `instruments` CSV), then starts a
/// ``FeedConnectionPool`` of ``FeedSupervisor``s with ``ZerodhaFeedCodec`` and waits for the
/// first connection's outcome, so a refused token is `connect`'s error. Subscriptions resolve
/// through the master; unknown symbols are refused one by one, as the reference's ack does.
/// Kite allows an `api_key` 3 connections of 3000 instruments each: by default the pool opens a
/// second and third connection when the first is full, and refuses more instruments with the
/// reference pool's capacity message.
///
/// Settings (`[brokers.zerodha]`): `ws_url`, `instruments_file`, `instruments_url`, the
/// credential fields, and the ``FeedTuningSettings`` keys (`max_connections` up to 3,
/// `max_instruments_per_connection` up to 3000). Reconnects default to the
/// agent's policy for every broker (1 s doubling, at most 30 s, 5 attempts; the `reconnect_*`
/// keys set OpenAlgo's 2 s × 1.5, 60 s, 50 attempts where wanted); a feed
/// silent for 90 s while subscribed is reconnected (Kite sends a heartbeat every second).
package final class ZerodhaFeed: BrokerAdapter {
    package static let name = "zerodha"
    /// Where Kite publishes its instrument master (no login needed).
    package static let defaultInstrumentsURL = "https://api.kite.trade/instruments"
    /// How long `connect` waits for the first connection before letting it carry on in the background.
    static let initialConnectWait = TimeAmount.seconds(15)

    package let brokerName = ZerodhaFeed.name
    private let context: BrokerAdapterContext
    private let webSocketURL: String
    private let configuration: FeedSupervisor<ZerodhaFeedCodec>.Configuration
    private let limits: ConnectionPoolLimits
    private let state: NIOLockedValueBox<State>

    private struct State {
        var pool: FeedConnectionPool<ZerodhaFeedCodec>?
        var master: SymbolMaster?
    }

    /// Validates the settings; credentials and the master are read by ``connect(sink:)``, so a
    /// fixed token file is picked up by the next connect.
    package init(context: BrokerAdapterContext) throws(BrokerConfigurationError) {
        self.context = context
        self.webSocketURL = context.settings["ws_url"] ?? ZerodhaRequest.defaultURL
        do {
            _ = try WebSocketURL(self.webSocketURL)
        } catch {
            throw BrokerConfigurationError("[brokers.zerodha] ws_url: \(error.message)")
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
        let batching = try FeedTuningSettings.batching(
            context.settings,
            broker: Self.name,
            defaults: SubscriptionBatcher.Configuration(
                window: .milliseconds(500),
                maximumInstrumentsPerMessage: ZerodhaRequest.maximumTokensPerMessage
            )
        )
        self.configuration = FeedSupervisor.Configuration(
            supervision: supervision,
            batching: batching,
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
        self.state = NIOLockedValueBox(State())
    }

    package var connectionState: FeedConnectionState {
        self.state.withLockedValue { $0.pool }?.connectionState ?? .disconnected
    }

    package func connect(sink: any FeedEventSink) async throws {
        let credentials = try self.loadCredentials()
        let master = try await self.context.loadSymbolMaster(defaultURL: Self.defaultInstrumentsURL, cacheFileName: "zerodha-instruments.csv") {
            bytes throws(SymbolMasterError) in try ZerodhaInstrumentMaster.parse(csv: bytes)
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
            request: { credentials in try BrokerWebSocketRequest(ZerodhaRequest.connection(baseURL: baseURL, credentials: credentials)) },
            codec: { logger in ZerodhaFeedCodec(master: master, logger: logger) }
        )
        let previous = self.state.withLockedValue { state in
            defer {
                state.pool = pool
                state.master = master
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
            var accepted: [Instrument] = []
            for instrument in instruments {
                guard let master = state.master, let pool = state.pool else {
                    outcomes.append(.refused(message: "Broker feed is not connected"))
                    continue
                }
                guard master.entry(for: instrument) != nil else {
                    outcomes.append(.refused(message: symbolNotFoundMessage(instrument)))
                    continue
                }
                if case .poolFull = pool.reserve(instrument) {
                    outcomes.append(.refused(message: pool.capacityMessage()))
                    continue
                }
                accepted.append(instrument)
                // Kite serves five levels a side whatever was asked.
                outcomes.append(.subscribed(actualDepth: mode == .depth && depth != ZerodhaDepth.levelCount ? ZerodhaDepth.levelCount : nil))
            }
            return (state.pool, outcomes, accepted)
        }
        pool?.subscribe(accepted, mode: mode, depth: depth)
        return outcomes
    }

    package func unsubscribe(_ instruments: [Instrument]) async {
        self.state.withLockedValue { $0.pool }?.release(instruments)
    }

    package func disconnect() async {
        let pool = self.state.withLockedValue { state in
            defer { state.pool = nil }
            return state.pool
        }
        await pool?.stop()
    }

    private func loadCredentials() throws(BrokerCredentialsError) -> ZerodhaCredentials {
        try Self.credentials(self.context)
    }

    private static func credentials(_ context: BrokerAdapterContext) throws(BrokerCredentialsError) -> ZerodhaCredentials {
        let loaded = try BrokerCredentials.load(
            broker: Self.name,
            fields: ["api_key", "access_token"],
            explicit: context.credentials,
            settings: context.settings,
            environment: context.environment
        )
        context.logger.debug("zerodha credentials", metadata: ["sources": "\(loaded)"])
        // OpenAlgo stores `<user>:<token>`; Kite wants the part after the first colon.
        var token = loaded["access_token"] ?? ""
        if let colon = token.firstIndex(of: ":") { token = String(token[token.index(after: colon)...]) }
        return ZerodhaCredentials(apiKey: loaded["api_key"] ?? "", accessToken: token)
    }
}
