import LocalIPC
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
    /// Fields the agent adds to the `status` reply (how it was started, settings waiting for a
    /// restart). Called on the serving event loop, so it must not block.
    func statusDetails() -> JSONObject
}

extension IPCAgentControl {
    public func statusDetails() -> JSONObject { JSONObject() }
}
