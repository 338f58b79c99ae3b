import CSystemd

#if canImport(Glibc)
import Glibc
#endif

/// One `sd_notify(3)` datagram: newline-separated `KEY=value` assignments.
public struct ServiceManagerMessage: Sendable, Equatable, CustomStringConvertible {
    /// The datagram's text.
    public let description: String

    private init(_ text: String) {
        self.description = text
    }

    /// Start-up is finished: the sockets are served. `status` shows in `systemctl status`.
    public static func ready(status: String) -> ServiceManagerMessage {
        ServiceManagerMessage("READY=1\nSTATUS=\(Self.oneLine(status))")
    }

    /// A new status line for `systemctl status`.
    public static func status(_ status: String) -> ServiceManagerMessage {
        ServiceManagerMessage("STATUS=\(Self.oneLine(status))")
    }

    /// A reload began; systemd ≥ 253 (`Type=notify-reload`) needs the `CLOCK_MONOTONIC` time with it.
    public static func reloading(monotonicMicroseconds: UInt64) -> ServiceManagerMessage {
        ServiceManagerMessage("RELOADING=1\nMONOTONIC_USEC=\(monotonicMicroseconds)")
    }

    /// Shutdown began.
    public static let stopping = ServiceManagerMessage("STOPPING=1")

    /// The agent is alive; sent every half watchdog interval.
    public static let watchdog = ServiceManagerMessage("WATCHDOG=1")

    /// A status value must not start a new assignment.
    private static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }

    /// `CLOCK_MONOTONIC` now, in microseconds, for ``reloading(monotonicMicroseconds:)``.
    public static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }
}

/// Where service-manager messages go: systemd's `NOTIFY_SOCKET`, or a test's recorder.
public protocol ServiceManagerTransport: Sendable {
    /// Sends `message`; `false` when nobody listens.
    @discardableResult
    func send(_ message: ServiceManagerMessage) throws(SystemdError) -> Bool
}

/// Tells the service manager about the agent's state (`sd_notify(3)`, which reads `NOTIFY_SOCKET`).
public struct SystemdNotifier: ServiceManagerTransport {
    public init() {}

    /// Whether `NOTIFY_SOCKET` is set, i.e. a manager listens (unset outside systemd, or with
    /// `--no-systemd`).
    public var isEnabled: Bool {
        getenv("NOTIFY_SOCKET") != nil
    }

    /// Sends `message`.
    ///
    /// - Returns: `false` when no manager listens (`NOTIFY_SOCKET` unset), `true` when sent.
    /// - Throws: when `NOTIFY_SOCKET` is set but unusable (a bad path, nobody bound there).
    @discardableResult
    public func send(_ message: ServiceManagerMessage) throws(SystemdError) -> Bool {
        let result = sd_notify(0, message.description)
        guard result >= 0 else { throw .call("sd_notify", returned: result) }
        return result > 0
    }

    /// The watchdog interval systemd expects pings within (`WatchdogSec=`, passed as
    /// `WATCHDOG_USEC`), or `nil` when the watchdog is off or meant for another process.
    public func watchdogInterval() -> Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(clamping: microseconds))
    }
}
