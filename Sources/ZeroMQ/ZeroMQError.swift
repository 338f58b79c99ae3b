import CZeroMQ

/// A libzmq call that failed, with libzmq's own text for the error (`zmq_strerror`), so a message
/// such as "cannot bind tcp://127.0.0.1:5555: Address already in use" says what to fix.
public struct ZeroMQError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Kind: Sendable, Equatable {
        case call(operation: String, code: Int32, text: String)
        case closed
    }

    private let kind: Kind

    private init(_ kind: Kind) {
        self.kind = kind
    }

    /// The error libzmq reports for the call that just failed on this thread.
    static func lastError(_ operation: String) -> ZeroMQError {
        let code = zmq_errno()
        return ZeroMQError(.call(operation: operation, code: code, text: String(cString: zmq_strerror(code))))
    }

    /// The socket was used after ``ZeroMQSocket/close()``.
    static let closed = ZeroMQError(.closed)

    /// The `errno` value libzmq reported, when the error came from a call.
    public var code: Int32? {
        switch self.kind {
        case .call(_, let code, _): return code
        case .closed: return nil
        }
    }

    public var description: String {
        switch self.kind {
        case .call(let operation, _, let text): return "\(operation): \(text)"
        case .closed: return "the ZeroMQ socket is closed"
        }
    }
}
