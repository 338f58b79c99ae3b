import LocalIPC
import MarketData
import WireJSON

/// What local clients may ask of the agent beyond the hub: switching the feed, the API key, and
/// a configuration reload. The agent implements it; tests can supply their own.
public protocol IPCAgentControl: Sendable {
    /// Connects the feed (to `broker`, or the configured one), with extra credential fields.
    /// Returns once the feed is connected or has failed; connecting a connected feed is a no-op.
    func connectFeed(broker: String?, credentials: [String: String]) async -> Result<Void, RPCError>
    /// Stops the feed for every client; their subscriptions stay and resume on the next connect.
    func disconnectFeed() async
    /// The key WebSocket clients authenticate with; `rotate` replaces it first.
    func apiKey(rotate: Bool) async -> Result<String, RPCError>
    /// Re-reads the configuration and applies what can change while running.
    func reload() async -> Result<JSONValue, RPCError>
    /// Starts recording every tick of some instruments to a day-rotated file (`record_start`).
    func startRecording(_ request: RecordingRequest) async -> Result<JSONValue, RPCError>
    /// Stops a recording and closes its file (`record_stop`).
    func stopRecording(id: String) async -> Result<JSONValue, RPCError>
    /// Members `status` adds to the hub's view: how the agent was started (systemd or not),
    /// settings waiting for a restart, the running recordings, the replay position. Called on the
    /// hub's loop, so it only reads values kept behind locks.
    func statusDetails() -> JSONObject
}

extension IPCAgentControl {
    public func startRecording(_ request: RecordingRequest) async -> Result<JSONValue, RPCError> {
        .failure(.notPermitted("This agent does not record."))
    }

    public func stopRecording(id: String) async -> Result<JSONValue, RPCError> {
        .failure(.notPermitted("This agent does not record."))
    }

    public func statusDetails() -> JSONObject { JSONObject() }
}

/// What `record_start` asks for.
public struct RecordingRequest: Sendable, Equatable {
    public var instruments: [Instrument]
    public var mode: SubscriptionMode
    /// Book levels asked of the feed in Depth mode.
    public var depth: Int
    /// The output path before its date: `/data/ticks.jsonl` writes `/data/ticks-YYYY-MM-DD.jsonl`.
    public var output: String

    public init(instruments: [Instrument], mode: SubscriptionMode, depth: Int, output: String) {
        self.instruments = instruments
        self.mode = mode
        self.depth = depth
        self.output = output
    }
}
