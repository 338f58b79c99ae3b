import LocalIPC
import Logging
import NIOCore
import ServiceLifecycle
import SystemdSupport
import UnixSignals

/// The agent as a service of its service manager, as a `Service` started after the servers:
/// `READY=1` once it runs (both sockets are bound by then), status and watchdog from the
/// ``ServiceManagerReporter``, a configuration reload on SIGHUP (`RELOADING=1`, then `READY=1`),
/// and `STOPPING=1` as soon as shutdown begins.
///
/// SIGHUP reloads with or without systemd; without it the notifications are simply not sent.
struct ServiceManagerService: Service, CustomStringConvertible {
    var description: String { "ServiceManagerService" }

    let reporter: NIOLoopBound<ServiceManagerReporter>
    let link: ServiceManagerLink
    /// SIGHUP, trapped before the services start so an early signal does not kill the agent;
    /// `nil` when the agent does not handle signals (tests, embedders).
    let hangups: UnixSignalsSequence?
    let control: AgentControl
    let logger: Logger

    func run() async throws {
        let reporter = self.reporter
        try await reporter.eventLoop.submit { reporter.value.start() }.get()
        if let hangups = self.hangups {
            for await _ in hangups.cancelOnGracefulShutdown() {
                await self.reload()
            }
        } else {
            try? await gracefulShutdown()
        }
        try? await reporter.eventLoop.submit { reporter.value.stop() }.get()
    }

    private func reload() async {
        self.logger.notice("SIGHUP: reloading the configuration")
        self.link.send(.reloading(monotonicMicroseconds: ServiceManagerMessage.monotonicMicroseconds()))
        if case .failure(let error) = await self.control.reload() {
            self.logger.error("reload refused", metadata: ["error": "\(error.message)"])
        }
        let reporter = self.reporter
        try? await reporter.eventLoop.submit { reporter.value.reloaded() }.get()
    }
}
