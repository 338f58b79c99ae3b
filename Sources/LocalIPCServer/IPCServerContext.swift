import LocalIPC
import Logging
import MarketData
import NIOCore
import StreamingHub
import WireJSON

#if canImport(Glibc)
import Glibc
#endif

/// What every local connection shares: the hub, the agent's controls, the settings, and the
/// registry of open connections. Confined to the hub's event loop, like the connections.
final class IPCServerContext {
    let hub: StreamingHub
    let control: any IPCAgentControl
    var configuration: IPCServerConfiguration
    let logger: Logger
    private(set) var connections: [SubscriberID: IPCConnectionHandler] = [:]
    private(set) var isShuttingDown = false
    private var housekeeping: RepeatedTask?
    /// Connections refused because the peer was another user.
    private(set) var refusedPeers = 0
    /// The JSON-RPC line of the frame being fanned out, shared by every local client that gets it.
    var marketDataLines = MarketDataLineCache()

    init(hub: StreamingHub, control: any IPCAgentControl, configuration: IPCServerConfiguration, logger: Logger) {
        self.hub = hub
        self.control = control
        self.configuration = configuration
        self.logger = logger
    }

    var eventLoop: any EventLoop { self.hub.eventLoop }

    /// The greeting sent on accept and returned by `hello`.
    var helloPayload: JSONObject {
        [
            "protocol": .int(IPCProtocol.version),
            "agent": .string(self.configuration.agentVersion),
            "pid": .int(getpid()),
            "capabilities": .array(["market_data", "status", "events", "api_key", "reload", "conflation"]),
        ]
    }

    func connectionOpened(_ connection: IPCConnectionHandler) {
        self.connections[connection.subscriberID] = connection
    }

    func connectionClosed(_ connection: IPCConnectionHandler) {
        self.connections[connection.subscriberID] = nil
    }

    func peerRefused() {
        self.refusedPeers += 1
    }

    /// Starts the once-a-second check of the unwritable deadline.
    func startHousekeeping() {
        let context = NIOLoopBound(self, eventLoop: self.eventLoop)
        self.housekeeping = self.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            let now = NIODeadline.now()
            for connection in context.value.connections.values {
                connection.housekeeping(now: now)
            }
        }
    }

    /// Tells every connection the agent is going away, and closes them.
    func shutDown() {
        self.isShuttingDown = true
        self.housekeeping?.cancel()
        self.housekeeping = nil
        for connection in self.connections.values {
            connection.closeForShutdown()
        }
    }
}

/// Wraps a `market_data` frame into its JSON-RPC line once per frame rather than once per client.
///
/// The hub hands every subscriber of a tick the very same frame buffer, so the last frame wrapped
/// is recognised by its storage: while the cache holds that buffer its memory cannot be reused,
/// so an equal address and length mean the same frame.
struct MarketDataLineCache {
    private var frame: ByteBuffer?
    private var line: ByteBuffer?

    mutating func line(for frame: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        if let cachedFrame = self.frame, let line = self.line, Self.sameBytes(cachedFrame, frame) {
            return line
        }
        var line = allocator.buffer(capacity: frame.readableBytes + 48)
        line.writeStaticString("{\"jsonrpc\":\"2.0\",\"method\":\"market_data\",\"params\":")
        line.writeImmutableBuffer(frame)
        line.writeStaticString("}\n")
        self.frame = frame
        self.line = line
        return line
    }

    private static func sameBytes(_ left: ByteBuffer, _ right: ByteBuffer) -> Bool {
        guard left.readableBytes == right.readableBytes else { return false }
        let leftStart = left.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let rightStart = right.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        return leftStart == rightStart
    }
}

/// The `ConnectionStatus` object of `ipc.md`: the Tauri fields plus the feed's state.
func connectionStatusJSON(_ status: HubStatus) -> JSONValue {
    var object: JSONObject = [
        "connected": .bool(status.feedState == .connected),
        "broker": .string(status.brokerName),
        "subscriptions_count": .int(status.instruments),
        "state": .string(status.feedState.description),
    ]
    if case .reconnecting(let attempt) = status.feedState {
        object["reconnect_attempt"] = .int(attempt)
    } else {
        object["reconnect_attempt"] = .int(0)
    }
    if case .failed(let reason) = status.feedState {
        object["reason"] = .string(reason)
    }
    object["last_tick_age_ms"] = status.lastTickAgeMilliseconds.map { .int($0) } ?? .null
    object["clients"] = .object(["websocket": .int(status.webSocketClients), "ipc": .int(status.ipcClients)])
    object["subscriptions"] = .int(status.subscriptions)
    object["uptime_s"] = .int(status.uptimeSeconds)
    return .object(object)
}

extension Instrument {
    /// `{"symbol": ..., "exchange": ...}` plus extra members, as the local protocol lists instruments.
    func json(_ extra: JSONObject = JSONObject()) -> JSONValue {
        var object: JSONObject = ["symbol": .string(self.symbol), "exchange": .string(self.exchange)]
        for entry in extra.entries { object[entry.key] = entry.value }
        return .object(object)
    }
}
