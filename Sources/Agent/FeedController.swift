import Brokers
import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore
import StreamingHub
import WireJSON

/// Runs the feed the hub asks for: which broker's adapter runs, starting it, switching it to
/// another broker, stopping it.
///
/// It keeps no subscriptions of its own: the hub owns what clients want, and its feed reconciler
/// asks a newly started feed for all of it, at each instrument's real mode and depth, and starts a
/// failed feed again by itself. Every call runs on the hub's feed command queue
/// (``FeedCommandQueue``), one at a time and in order with subscribe and unsubscribe requests.
final class FeedController: FeedControl, Sendable {
    private struct State {
        var adapter: (any BrokerAdapter)?
        var brokerName: String
        var brokers: [String: BrokerSettings]
        /// Credentials a client passed for a broker (`ws_connect`): kept in memory for that
        /// broker's restarts, never written anywhere.
        var explicitCredentials: [String: [String: String]] = [:]
        /// The credential files as they were at the last start, to notice a new token.
        var credentialsAtStart = CredentialsFingerprint()
    }

    private let state: NIOLockedValueBox<State>
    private let sink: any FeedEventSink
    private let hub: NIOLoopBound<StreamingHub>
    private let feedLoop: any EventLoop
    private let logger: Logger
    private let environment: [String: String]

    init(
        configuration: AgentConfiguration,
        sink: any FeedEventSink,
        hub: NIOLoopBound<StreamingHub>,
        feedLoop: any EventLoop,
        environment: [String: String],
        logger: Logger
    ) {
        self.state = NIOLockedValueBox(State(adapter: nil, brokerName: configuration.broker, brokers: configuration.brokers))
        self.sink = sink
        self.hub = hub
        self.feedLoop = feedLoop
        self.environment = environment
        self.logger = logger
    }

    private var adapter: (any BrokerAdapter)? { self.state.withLockedValue { $0.adapter } }

    /// The running adapter's member for `status`, if it has one (the replay position).
    var statusDetail: (key: String, value: JSONValue)? { self.adapter?.statusDetail }

    /// Broker settings from a configuration reload; they apply at the next start.
    func updateBrokerSettings(_ brokers: [String: BrokerSettings]) {
        self.state.withLockedValue { $0.brokers = brokers }
    }

    // MARK: FeedControl

    func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) async -> [SubscribeOutcome] {
        guard let adapter = self.adapter else { return instruments.map { _ in .refused(message: "Broker feed is not connected") } }
        return await adapter.subscribe(instruments, mode: mode, depth: depth)
    }

    func unsubscribe(_ instruments: [Instrument]) async {
        await self.adapter?.unsubscribe(instruments)
    }

    /// Starts `request`'s broker (or the current one) afresh. Starting the broker that is
    /// already connected, without new credentials, changes nothing.
    func start(_ request: FeedStartRequest) async -> Result<Void, FeedStartFailure> {
        let (current, currentName, brokers) = self.state.withLockedValue { ($0.adapter, $0.brokerName, $0.brokers) }
        let canonical: String
        do {
            canonical = try BrokerRegistry.supportedName((request.broker ?? currentName).lowercased())
        } catch {
            return .failure(FeedStartFailure(reason: error.message))
        }
        if let current, currentName == canonical, current.connectionState == .connected, request.credentials.isEmpty {
            return .success(())
        }
        if let current {
            await current.disconnect()
            self.state.withLockedValue { $0.adapter = nil }
        }
        let credentials = self.state.withLockedValue { state in
            if !request.credentials.isEmpty { state.explicitCredentials[canonical] = request.credentials }
            state.credentialsAtStart = CredentialsFingerprint(broker: canonical, environment: self.environment)
            return state.explicitCredentials[canonical] ?? [:]
        }
        let adapter: any BrokerAdapter
        do {
            adapter = try BrokerRegistry.makeAdapter(
                named: canonical,
                settings: brokers[canonical] ?? BrokerSettings(),
                eventLoop: self.feedLoop,
                logger: self.logger,
                credentials: credentials,
                environment: self.environment
            )
        } catch {
            self.sink.feedStateChanged(.failed(reason: error.message))
            return .failure(FeedStartFailure(reason: error.message))
        }
        let hub = self.hub
        let brokerName = adapter.brokerName
        try? await hub.eventLoop.submit { hub.value.setBrokerName(brokerName) }.get()
        self.state.withLockedValue { $0.brokerName = canonical }
        self.sink.feedStateChanged(.connecting)
        do {
            try await adapter.connect(sink: self.sink)
        } catch {
            let reason = "cannot connect to \(brokerName): \(error)"
            self.logger.error("feed connection failed", metadata: ["broker": "\(brokerName)", "error": "\(error)"])
            self.sink.feedStateChanged(.failed(reason: reason))
            return .failure(FeedStartFailure(reason: reason))
        }
        self.state.withLockedValue { $0.adapter = adapter }
        self.logger.info("feed connected", metadata: ["broker": "\(brokerName)"])
        return .success(())
    }

    /// Stops the feed; the hub keeps its subscriptions for the next start.
    func stop() async {
        let adapter = self.state.withLockedValue { state in
            defer { state.adapter = nil }
            return state.adapter
        }
        guard let adapter else { return }
        await adapter.disconnect()
        self.sink.feedStateChanged(.disconnected)
        self.logger.info("feed disconnected", metadata: ["broker": "\(adapter.brokerName)"])
    }

    func credentialsChangedSinceStart() async -> Bool {
        let (broker, atStart) = self.state.withLockedValue { ($0.brokerName, $0.credentialsAtStart) }
        return CredentialsFingerprint(broker: broker, environment: self.environment) != atStart
    }
}
