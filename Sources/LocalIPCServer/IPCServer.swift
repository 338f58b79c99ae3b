import LocalIPC
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import StreamingHub

#if canImport(Glibc)
import Glibc
#endif

/// The local JSON-RPC socket, as a `Service`: bound by ``bind(configuration:hub:control:logger:)``,
/// served until graceful shutdown, when every client gets a `closing` event and the socket file
/// is removed.
///
/// Connections live on the hub's event loop, so the hub calls them directly (WebSocket clients are
/// spread over several loops; local clients are few, and their requests read the hub's state).
public final class IPCServer: Service {
    /// The socket's path.
    public let socketPath: String
    /// Whether the agent created the socket file (and removes it on shutdown); an inherited
    /// socket's file belongs to the service manager.
    private let ownsSocketFile: Bool
    private let serverChannel: any Channel
    private let context: NIOLoopBound<IPCServerContext>
    private let logger: Logger

    private init(
        socketPath: String,
        ownsSocketFile: Bool,
        serverChannel: any Channel,
        context: NIOLoopBound<IPCServerContext>,
        logger: Logger
    ) {
        self.socketPath = socketPath
        self.ownsSocketFile = ownsSocketFile
        self.serverChannel = serverChannel
        self.context = context
        self.logger = logger
    }

    /// Creates the socket (in a `0700` directory, mode `0600`), replacing a stale socket file that
    /// nothing answers on, and starts accepting on the hub's loop.
    ///
    /// - Parameter inheritedSocket: a listening Unix socket the service manager passed (socket
    ///   activation), served instead of creating one; its unit sets the file's mode
    ///   (`SocketMode=0600`, `DirectoryMode=0700`), and every peer's user is checked either way.
    public static func bind(
        configuration: IPCServerConfiguration,
        hub: NIOLoopBound<StreamingHub>,
        control: any IPCAgentControl,
        logger: Logger,
        inheritedSocket: NIOBSDSocket.Handle? = nil
    ) async throws -> IPCServer {
        if inheritedSocket == nil {
            try SocketFile.prepare(configuration.socketPath)
        }
        let loop = hub.eventLoop
        let context = try await loop.submit {
            let context = IPCServerContext(hub: hub.value, control: control, configuration: configuration, logger: logger)
            context.startHousekeeping()
            return NIOLoopBound(context, eventLoop: loop)
        }.get()
        let bootstrap = ServerBootstrap(group: loop)
            .serverChannelOption(.backlog, value: 128)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.writeBufferWaterMark, value: configuration.writeBufferWaterMark)
            .childChannelInitializer { channel in
                Self.initializeChild(channel, context: context)
            }
        if let inheritedSocket {
            let channel = try await bootstrap.withBoundSocket(inheritedSocket).get()
            let path = channel.localAddress?.pathname ?? configuration.socketPath
            logger.info("local socket listening", metadata: ["path": "\(path)", "socket": "inherited fd \(inheritedSocket)"])
            return IPCServer(socketPath: path, ownsSocketFile: false, serverChannel: channel, context: context, logger: logger)
        }
        let path = configuration.socketPath
        let channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: false).get()
        guard chmod(path, 0o600) == 0 else {
            let reason = String(cString: strerror(errno))
            try? await channel.close()
            throw IPCServerError("cannot make \(path) private (chmod 600): \(reason)")
        }
        logger.info("local socket listening", metadata: ["path": "\(path)", "socket": "own"])
        return IPCServer(socketPath: path, ownsSocketFile: true, serverChannel: channel, context: context, logger: logger)
    }

    /// Checks the peer's user, then installs the line codec and the connection handler.
    private static func initializeChild(_ channel: any Channel, context: NIOLoopBound<IPCServerContext>) -> EventLoopFuture<Void> {
        PeerCredentials.read(from: channel).flatMap { credentials in
            let server = context.value
            guard !server.isShuttingDown else {
                return channel.close()
            }
            guard credentials.uid == server.configuration.allowedUserID else {
                server.peerRefused()
                server.logger.warning(
                    "refusing local client of another user",
                    metadata: ["pid": "\(credentials.pid)", "uid": "\(credentials.uid)"]
                )
                return channel.close()
            }
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    ByteToMessageHandler(JSONLineDecoder(maximumLineBytes: server.configuration.maximumLineBytes))
                )
                try channel.pipeline.syncOperations.addHandler(IPCConnectionHandler(server: server, peerProcess: credentials.pid))
            }
        }
    }

    /// Serves until graceful shutdown (or cancellation), then closes every client and removes the socket.
    public func run() async throws {
        let context = self.context
        let serverChannel = self.serverChannel
        let stop: @Sendable () -> Void = {
            context.eventLoop.execute {
                context.value.shutDown()
                serverChannel.close(promise: nil)
            }
        }
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await serverChannel.closeFuture.get()
            } onGracefulShutdown: {
                stop()
            }
        } onCancel: {
            stop()
        }
        if self.ownsSocketFile {
            unlink(self.socketPath)
        }
        self.logger.info("local socket closed", metadata: ["path": "\(self.socketPath)"])
    }

    /// Local connections currently served; for tests and status.
    public func connectionCount() async throws -> Int {
        try await self.context.eventLoop.submit { [context] in context.value.connections.count }.get()
    }

    /// Connections refused because the peer was another user.
    public func refusedPeerCount() async throws -> Int {
        try await self.context.eventLoop.submit { [context] in context.value.refusedPeers }.get()
    }
}

/// The local socket cannot be set up; the message says what is in the way.
public struct IPCServerError: Error, Sendable, CustomStringConvertible {
    public var description: String

    init(_ description: String) {
        self.description = description
    }
}

/// `struct ucred` of `SO_PEERCRED`, which Glibc does not export without `_GNU_SOURCE`.
struct PeerCredentials {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32

    static func read(from channel: any Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(IPCServerError("the channel cannot report its peer's credentials"))
        }
        return provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
    }
}

/// Where the socket file goes: its directory, and what may already be there.
enum SocketFile {
    /// Creates the directory (`0700`) if needed and removes a stale socket; refuses to touch a
    /// live one or anything that is not a socket.
    static func prepare(_ path: String) throws {
        guard let slash = path.lastIndex(of: "/") else { return }
        let directory = String(path[..<slash])
        if !directory.isEmpty {
            try self.makeDirectory(directory)
        }
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFSOCK else {
            throw IPCServerError("\(path) exists and is not a socket; remove it or choose another --ipc-socket")
        }
        if self.somethingAnswers(at: path) {
            throw IPCServerError("another agent is already serving \(path); stop it or choose another --ipc-socket")
        }
        unlink(path)
    }

    private static func makeDirectory(_ directory: String) throws {
        var status = stat()
        if stat(directory, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFDIR else { throw IPCServerError("\(directory) is not a directory") }
            return
        }
        if let slash = directory.lastIndex(of: "/"), slash != directory.startIndex {
            try self.makeDirectory(String(directory[..<slash]))
        }
        guard mkdir(directory, 0o700) == 0 || errno == EEXIST else {
            throw IPCServerError("cannot create \(directory): \(String(cString: strerror(errno)))")
        }
    }

    private static func somethingAnswers(at path: String) -> Bool {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return result == 0
    }
}
