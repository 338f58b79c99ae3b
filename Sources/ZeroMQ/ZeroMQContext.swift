import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A libzmq context: the I/O thread behind every socket made from it.
///
/// libzmq contexts are thread-safe, so one may be shared; sockets are not. Terminating the
/// context (on deinit) waits for its sockets to be closed and their linger to pass, so every
/// socket should be closed, with a short linger, before the last reference goes.
public final class ZeroMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    public init() throws(ZeroMQError) {
        guard let handle = zmq_ctx_new() else { throw ZeroMQError.lastError("zmq_ctx_new") }
        self.handle = handle
    }

    deinit {
        while zmq_ctx_term(self.handle) != 0 && zmq_errno() == EINTR {}
    }
}
