import MarketData
import NIOCore

/// Identifies a subscriber (a WebSocket or IPC connection) for the lifetime of the process.
public struct SubscriberID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public var description: String { "client-\(self.rawValue)" }
}

/// A receiver of market-data frames, driven by the hub.
///
/// A subscriber lives on one event loop, its ``deliveryEventLoop``: the hub's own by default. The
/// hub calls ``enqueue(_:instrument:mode:)`` for every frame of a batch of ticks, then
/// ``flushEnqueued()`` once, so a connection does one write system call per batch however many
/// ticks arrived together. Both must return quickly and never block: a subscriber that cannot
/// keep up conflates or closes itself, it never slows the hub. Neither may call back into the hub
/// (subscribe, unsubscribe, remove) while it runs: the hub is in the middle of its fan-out, so such
/// work belongs on the next loop turn.
public protocol MarketDataSubscriber: AnyObject {
    var subscriberID: SubscriberID { get }
    /// The loop the subscriber lives on, where it takes its frames; `nil` for the hub's own loop.
    /// Subscribers elsewhere call the hub through a ``HubConnector``.
    var deliveryEventLoop: (any EventLoop)? { get }
    /// Takes one encoded `market_data` frame (shared with other subscribers; do not mutate it).
    ///
    /// The bytes just before the frame's reader index hold its RFC 6455 text-frame header (see
    /// ``PreframedText``), so a WebSocket connection sends header and payload as one buffer that
    /// every client shares, with nothing to allocate or encode per client.
    ///
    /// - Returns: `true` when this frame is the first of the batch that needs ``flushEnqueued()``,
    ///   so the hub keeps a list of subscribers to flush without a set lookup per frame.
    func enqueue(_ frame: ByteBuffer, instrument: Instrument, mode: SubscriptionMode) -> Bool
    /// Flushes what ``enqueue(_:instrument:mode:)`` wrote since the last flush.
    func flushEnqueued()
    /// What `clients` listings show about this subscriber. Called on the hub's loop, so a
    /// subscriber on another loop must answer it without touching its loop-confined state.
    func describe() -> SubscriberDescription
    /// Whether the hub builds frames for it; a subscriber that only holds instruments for a
    /// ``TickTap`` (the recorder) says no and costs the fan-out nothing.
    var takesFrames: Bool { get }
}

extension MarketDataSubscriber {
    public var takesFrames: Bool { true }
    public var deliveryEventLoop: (any EventLoop)? { nil }
}

/// Sees every tick the hub receives for the instruments it was added for, at whatever mode the
/// feed sent it, before LTP coalescing and per-client conflation: what a recording needs.
///
/// Called on the hub's loop, during the fan-out: it must return at once (hand the tick to another
/// thread) and must not call back into the hub.
public protocol TickTap: AnyObject {
    /// - Parameter receivedAt: when the hub took the tick in, in nanoseconds since the Unix epoch.
    func tapped(_ tick: Tick, receivedAt: Int64)
}

/// Which socket a subscriber came in on.
public enum SubscriberKind: String, Sendable {
    case webSocket = "websocket"
    case ipc
    /// A recording, holding its instruments so that the feed streams them.
    case recorder
}

/// A subscriber as `clients` listings and `status` show it.
public struct SubscriberDescription: Sendable, Equatable {
    public var kind: SubscriberKind
    /// The peer: an address for WebSocket clients, `pid <n>` for local clients.
    public var peer: String
    /// When the connection was accepted, in epoch milliseconds.
    public var connectedAt: Int64
    /// The name a local client gave in `hello`, if any.
    public var name: String?
    /// Market data held for the client because its socket is not writable.
    public var queuedBytes: Int
    /// Frames replaced by newer ones because the client did not keep up.
    public var droppedFrames: Int

    public init(kind: SubscriberKind, peer: String, connectedAt: Int64, name: String? = nil, queuedBytes: Int, droppedFrames: Int) {
        self.kind = kind
        self.peer = peer
        self.connectedAt = connectedAt
        self.name = name
        self.queuedBytes = queuedBytes
        self.droppedFrames = droppedFrames
    }
}

/// Something that wants to hear about the feed and the index without subscribing to market data:
/// local clients turn these into `ws_connection_status` and `ws_subscription_update` events, the
/// WebSocket server into `broker_status` frames.
///
/// Called on the hub's loop; like subscribers, observers must not call back into the hub.
public protocol HubObserver: AnyObject {
    /// The feed's connection state changed (or the feed was replaced by another broker's).
    func feedStateChanged(_ status: HubStatus)
    /// The feed was asked to stream an instrument at a new mode, or to stop streaming it.
    func brokerSubscriptionChanged(_ update: BrokerSubscriptionUpdate)
    /// The feed relayed an order update: a complete `order_update` frame, to send unchanged to
    /// every client that asked for order updates.
    func orderUpdateReceived(_ message: ByteBuffer)
}

extension HubObserver {
    /// Observers that serve no order stream ignore order updates.
    public func orderUpdateReceived(_ message: ByteBuffer) {}
}

/// A change of what the feed streams, agent-wide.
public struct BrokerSubscriptionUpdate: Sendable, Equatable {
    public enum Action: String, Sendable {
        case subscribed
        case unsubscribed
    }

    public var action: Action
    public var instrument: Instrument
    /// The mode the feed now streams (for `subscribed`) or streamed (for `unsubscribed`).
    public var mode: SubscriptionMode

    public init(action: Action, instrument: Instrument, mode: SubscriptionMode) {
        self.action = action
        self.instrument = instrument
        self.mode = mode
    }
}

/// The agent's state as `status` reports it.
public struct HubStatus: Sendable, Equatable {
    public var brokerName: String
    public var feedState: FeedConnectionState
    /// Instruments the feed streams.
    public var instruments: Int
    /// Subscriptions held by all clients together (one per client, instrument and mode).
    public var subscriptions: Int
    public var webSocketClients: Int
    public var ipcClients: Int
    /// Milliseconds since the last tick arrived; `nil` before the first.
    public var lastTickAgeMilliseconds: Int64?
    public var uptimeSeconds: Int64

    public init(
        brokerName: String,
        feedState: FeedConnectionState,
        instruments: Int,
        subscriptions: Int,
        webSocketClients: Int,
        ipcClients: Int,
        lastTickAgeMilliseconds: Int64?,
        uptimeSeconds: Int64
    ) {
        self.brokerName = brokerName
        self.feedState = feedState
        self.instruments = instruments
        self.subscriptions = subscriptions
        self.webSocketClients = webSocketClients
        self.ipcClients = ipcClients
        self.lastTickAgeMilliseconds = lastTickAgeMilliseconds
        self.uptimeSeconds = uptimeSeconds
    }
}

/// What the hub needs from a feed: streaming instruments at a mode, starting and stopping.
///
/// The hub calls these one at a time, in order, from a single task, so an implementation never
/// sees an unsubscribe overtake the subscribe before it, nor a subscribe overtake a start.
public protocol FeedControl: Sendable {
    /// Streams each instrument at `mode` (which may upgrade or downgrade an existing subscription).
    func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) async -> [SubscribeOutcome]
    /// Stops streaming the instruments.
    func unsubscribe(_ instruments: [Instrument]) async
    /// Starts the feed afresh (replacing a running one), streaming nothing until asked: the hub
    /// asks again for everything it wants once the start succeeded.
    func start(_ request: FeedStartRequest) async -> Result<Void, FeedStartFailure>
    /// Stops the feed until the next start.
    func stop() async
    /// Whether the credentials the feed would start with differ from those of its last start (a
    /// new day's token written to the credentials file), so a failed feed can retry at once.
    func credentialsChangedSinceStart() async -> Bool
}

/// Which feed to start: the configured broker with its configured credentials unless a client
/// named others (`oactl connect BROKER`, `ws_connect` with credentials).
public struct FeedStartRequest: Sendable, Equatable, CustomStringConvertible {
    public var broker: String?
    /// Secrets: never part of the description.
    public var credentials: [String: String]

    public init(broker: String? = nil, credentials: [String: String] = [:]) {
        self.broker = broker
        self.credentials = credentials
    }

    public var description: String {
        "start \(self.broker ?? "the current broker")" + (self.credentials.isEmpty ? "" : " with new credentials")
    }
}

/// Why a feed did not start, as a sentence a person can act on.
public struct FeedStartFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String

    public init(reason: String) {
        self.reason = reason
    }

    public var description: String { self.reason }
}

/// Counters of the hub's work, for benchmarks, tests and `status`.
public struct HubMetrics: Sendable, Equatable {
    public var ticksReceived: UInt64 = 0
    public var framesDelivered: UInt64 = 0
    /// LTP frames not sent because a newer price replaced them within the coalescing window.
    public var ltpFramesCoalesced: UInt64 = 0
    /// Frames replaced in a slow client's outbox by newer ones.
    public var framesConflated: UInt64 = 0
    /// Clients closed because they could not keep up (budget or deadline exceeded).
    public var slowConsumersClosed: UInt64 = 0
    /// Times the feed lost its upstream connection and started reconnecting.
    public var feedReconnects: UInt64 = 0
    /// Order updates the feed relayed (the ZeroMQ bus).
    public var orderUpdatesReceived: UInt64 = 0
    public var subscribers = 0
    public var instruments = 0
    /// How long ticks took from the feed's timestamp to the fan-out.
    public var feedLatency = LatencySummary()

    public init() {}
}
