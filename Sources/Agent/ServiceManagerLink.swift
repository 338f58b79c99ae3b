import Logging
import NIOConcurrencyHelpers
import SystemdSupport

/// The agent's line to systemd: sends `sd_notify` messages, or nothing when the agent was not
/// started by a service manager (or was told `--no-systemd`).
///
/// A failed send is a warning, logged once until a send succeeds again: the watchdog pings every
/// few seconds, and a broken `NOTIFY_SOCKET` must neither crash the agent nor flood its log.
public final class ServiceManagerLink: Sendable {
    /// What the manager asked for, as `oactl status` reports it.
    public struct Settings: Sendable, Equatable {
        /// The sockets came from the manager (`LISTEN_FDS`).
        public var socketsInherited: Bool
        /// `NOTIFY_SOCKET` is set and notifications are sent.
        public var notifies: Bool
        /// `WatchdogSec=`, when the manager watches the agent.
        public var watchdogInterval: Duration?

        public init(socketsInherited: Bool = false, notifies: Bool = false, watchdogInterval: Duration? = nil) {
            self.socketsInherited = socketsInherited
            self.notifies = notifies
            self.watchdogInterval = watchdogInterval
        }
    }

    public let settings: Settings
    private let transport: (any ServiceManagerTransport)?
    private let failing = NIOLockedValueBox(false)
    private let logger: Logger

    /// A link that sends through `transport` (`nil`: sends nothing).
    public init(transport: (any ServiceManagerTransport)?, settings: Settings, logger: Logger) {
        self.transport = transport
        self.settings = settings
        self.logger = logger
    }

    /// A link that sends nothing: tests, embedders, `--no-systemd`.
    public static func disconnected(logger: Logger) -> ServiceManagerLink {
        ServiceManagerLink(transport: nil, settings: Settings(), logger: logger)
    }

    public func send(_ message: ServiceManagerMessage) {
        guard let transport = self.transport else { return }
        do {
            try transport.send(message)
            if self.failing.withLockedValue({ $0 }) {
                self.failing.withLockedValue { $0 = false }
                self.logger.notice("notifying systemd works again")
            }
        } catch {
            let first = self.failing.withLockedValue { failing in
                defer { failing = true }
                return !failing
            }
            if first {
                self.logger.warning(
                    "cannot notify systemd; serving on regardless",
                    metadata: ["error": "\(error)", "message": "\(message.description.prefix(while: { $0 != "=" }))"]
                )
            }
        }
    }
}
