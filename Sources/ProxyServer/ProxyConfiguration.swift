import NIOCore

/// Settings of the WebSocket server. Defaults are the agent's documented ones.
public struct ProxyConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8765
    /// How often the server pings each client.
    public var pingInterval = TimeAmount.seconds(5)
    /// How long a ping may stay unanswered before the client is closed with 1011.
    public var pingTimeout = TimeAmount.seconds(10)
    /// How long a connection may stay unauthenticated before it is closed with 4401.
    public var authTimeout = TimeAmount.seconds(15)
    /// WebSocket clients served at once; the next is closed with 1013.
    public var maxClients = 1000
    /// The largest message a client may send (after reassembly); larger closes with 1009.
    public var maxMessageBytes = 1 << 20
    /// Market data held for a client that is not reading (conflated), before it is closed with 1008.
    public var outboxBudgetBytes = 8 << 20
    /// How long a client's socket may stay unwritable before it is closed with 1008.
    public var unwritableDeadline = TimeAmount.seconds(10)
    /// Bytes NIO buffers per connection before it reports the socket unwritable and conflation starts.
    public var writeBufferWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 64 << 10, high: 256 << 10)
    /// The kernel send buffer of each client socket (`SO_SNDBUF`); 0 leaves it to the kernel's
    /// autotuning. A fixed size bounds kernel memory per stalled client (autotuning grows it to
    /// 4 MiB) and lets a stall show as "not writable" soon, so conflation starts early.
    public var socketSendBufferBytes = 256 << 10
    /// The user name reported in `auth` and `broker_info` replies.
    public var userID = "openalgo"
    /// The brokers `get_supported_brokers` lists.
    public var supportedBrokers: [String] = []

    public init() {}
}
