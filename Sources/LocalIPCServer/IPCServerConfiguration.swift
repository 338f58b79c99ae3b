import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Settings of the local socket server.
public struct IPCServerConfiguration: Sendable {
    /// Where the socket is created.
    public var socketPath: String
    /// Market data held for a client that is not reading, before it gets `closing` (`ipc.md`: 4 MiB).
    public var outboxBudgetBytes = 4 << 20
    /// How long a client's socket may stay unwritable before it gets `closing`.
    public var unwritableDeadline = TimeAmount.seconds(10)
    /// Bytes NIO buffers per connection before conflation starts.
    public var writeBufferWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 64 << 10, high: 256 << 10)
    /// The longest request line.
    public var maximumLineBytes = 1 << 20
    /// The only user id allowed to connect: the agent's own effective uid.
    public var allowedUserID: UInt32 = geteuid()
    /// Reported in `hello` as `agent`.
    public var agentVersion = "openalgo-agent"

    public init(socketPath: String) {
        self.socketPath = socketPath
    }
}
