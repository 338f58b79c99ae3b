#if canImport(Glibc)
import Glibc
#endif

/// A call into libsystemd failed. The agent treats every one as a warning: a service manager
/// that cannot be told something must never stop the market data.
public struct SystemdError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Kind: Sendable, Equatable {
        case call(name: String, errno: Int32)
        case listener(String)
    }

    private let kind: Kind

    private init(_ kind: Kind) {
        self.kind = kind
    }

    /// A libsystemd function returned `-errno`.
    static func call(_ name: String, returned result: Int32) -> SystemdError {
        SystemdError(.call(name: name, errno: -result))
    }

    /// The sockets systemd passed cannot be used as the agent's listeners.
    static func listener(_ message: String) -> SystemdError {
        SystemdError(.listener(message))
    }

    public var description: String {
        switch self.kind {
        case .call(let name, let errno):
            return "\(name) failed: \(String(cString: strerror(errno)))"
        case .listener(let message):
            return message
        }
    }
}
