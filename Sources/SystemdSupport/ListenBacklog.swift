#if canImport(Glibc)
import Glibc
#endif

/// The accept backlog of an adopted listening socket.
///
/// NIO calls `listen(fd, 128)` when it adopts a socket, before the bootstrap's `.backlog` option
/// applies, which silently shrinks the backlog systemd set (`Backlog=`, by default
/// `net.core.somaxconn`). Listening again restores it: Linux updates the backlog of a socket that
/// already listens. Connections queued meanwhile stay queued.
public enum ListenBacklog {
    /// The backlog asked for; the kernel caps it at `net.core.somaxconn`.
    public static let inherited: Int32 = 4096

    /// Listens again on `socket` with ``inherited``.
    public static func restore(_ socket: Int32) throws(SystemdError) {
        guard listen(socket, Self.inherited) == 0 else {
            throw .call("listen", returned: -errno)
        }
    }
}
