import CSystemd

#if canImport(Glibc)
import Glibc
#endif

/// A listening socket the service manager passed, with the name its unit gave it
/// (`FileDescriptorName=`, or `systemd-socket-activate --fdname`).
public struct InheritedSocket: Sendable, Equatable {
    public var fd: Int32
    /// `unknown` when the manager gave no names.
    public var name: String
    public var kind: Kind

    /// What the socket listens on, so unnamed sockets can still be told apart.
    public enum Kind: Sendable, Equatable {
        /// A listening TCP socket (IPv4 or IPv6).
        case tcp
        /// A listening Unix stream socket.
        case unix
        /// Anything else: datagram, FIFO, not listening.
        case unusable
    }

    public init(fd: Int32, name: String, kind: Kind) {
        self.fd = fd
        self.name = name
        self.kind = kind
    }
}

/// Socket activation (`sd_listen_fds_with_names(3)`): the sockets exist before the agent starts, so
/// a client that connects while it is starting waits in the backlog instead of being refused.
public enum SocketActivation {
    /// The sockets passed to this process, in unit-file order, or none when `LISTEN_PID` names
    /// another process or `LISTEN_FDS` is unset. Unsets the `LISTEN_*` variables, so programs
    /// the agent starts do not think the sockets are theirs.
    public static func inheritedSockets() throws(SystemdError) -> [InheritedSocket] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = sd_listen_fds_with_names(1, &names)
        guard count >= 0 else { throw .call("sd_listen_fds_with_names", returned: count) }
        defer {
            if let names {
                for index in 0..<Int(count) { free(names[index]) }
                free(names)
            }
        }
        return (0..<count).map { index in
            let fd = SD_LISTEN_FDS_START + index
            let name = names?[Int(index)].map { String(cString: $0) } ?? "unknown"
            return InheritedSocket(fd: fd, name: name, kind: Self.kind(of: fd))
        }
    }

    private static func kind(of fd: Int32) -> InheritedSocket.Kind {
        let stream = Int32(SOCK_STREAM.rawValue)
        if sd_is_socket_inet(fd, 0, stream, 1, 0) > 0 { return .tcp }
        if sd_is_socket_unix(fd, stream, 1, nil, 0) > 0 { return .unix }
        return .unusable
    }
}

/// The agent's two listeners among the inherited sockets: `ws` (the WebSocket server) and `ipc`
/// (the local JSON-RPC socket).
///
/// Names decide; a socket named `unknown` (a manager that passed no names) is taken by its kind,
/// TCP for `ws` and Unix for `ipc`. Anything ambiguous is an error rather than a guess, because
/// serving the local API on the wrong socket would be worse than not starting.
public struct AgentListeners: Sendable, Equatable {
    /// The WebSocket listener, if one was passed; else the agent binds its own.
    public var webSocket: Int32?
    /// The local socket's listener, if one was passed; else the agent creates its own.
    public var ipc: Int32?

    public static let webSocketName = "ws"
    public static let ipcName = "ipc"

    public init(webSocket: Int32? = nil, ipc: Int32? = nil) {
        self.webSocket = webSocket
        self.ipc = ipc
    }

    /// Assigns `sockets` to the two roles.
    public init(_ sockets: [InheritedSocket]) throws(SystemdError) {
        var webSocket: InheritedSocket?
        var ipc: InheritedSocket?
        func assign(_ socket: InheritedSocket, to slot: inout InheritedSocket?, role: String, expected: InheritedSocket.Kind) throws(SystemdError) {
            if let taken = slot {
                throw .listener("two sockets were passed for \"\(role)\" (fds \(taken.fd) and \(socket.fd)); the agent serves one of each")
            }
            guard socket.kind == expected else {
                let wanted = expected == .tcp ? "a listening TCP socket" : "a listening Unix stream socket"
                throw .listener("the socket named \"\(socket.name)\" (fd \(socket.fd)) is not \(wanted)")
            }
            slot = socket
        }
        for socket in sockets {
            switch socket.name {
            case Self.webSocketName:
                try assign(socket, to: &webSocket, role: Self.webSocketName, expected: .tcp)
            case Self.ipcName:
                try assign(socket, to: &ipc, role: Self.ipcName, expected: .unix)
            case "unknown":
                switch socket.kind {
                case .tcp: try assign(socket, to: &webSocket, role: Self.webSocketName, expected: .tcp)
                case .unix: try assign(socket, to: &ipc, role: Self.ipcName, expected: .unix)
                case .unusable: throw .listener("the unnamed socket with fd \(socket.fd) is neither a listening TCP nor a Unix stream socket")
                }
            default:
                throw .listener(
                    "a socket named \"\(socket.name)\" (fd \(socket.fd)) was passed; the agent takes \"ws\" and \"ipc\" (FileDescriptorName=)"
                )
            }
        }
        self.webSocket = webSocket?.fd
        self.ipc = ipc?.fd
    }

    /// Whether either socket came from the service manager.
    public var isActivated: Bool { self.webSocket != nil || self.ipc != nil }
}
