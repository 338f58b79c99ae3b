import NIOCore

/// Decides, at each watchdog tick, whether the agent may tell systemd it is alive.
///
/// The tick runs on the event loop that serves clients, so a wedged serving loop sends nothing by
/// itself. The feed is checked explicitly: its event loop must have run the probe sent at the
/// previous tick, and its command queue must not be stuck on one command. A feed that is merely
/// disconnected from its broker is healthy here: restarting the agent would not bring the broker
/// back, and clients keep their subscriptions.
struct WatchdogHealth {
    /// How long one feed command (a connect with an instrument-master download, a subscribe) may
    /// run before the feed counts as wedged.
    var commandLimit: TimeAmount
    private(set) var problem: Problem?

    enum Problem: Equatable, CustomStringConvertible {
        case feedLoopUnresponsive
        case feedCommandStuck(since: TimeAmount)

        var description: String {
            switch self {
            case .feedLoopUnresponsive:
                return "the feed's event loop did not run a probe within half the watchdog interval"
            case .feedCommandStuck(let since):
                return "a feed command has been running for \(since.nanoseconds / 1_000_000_000) s"
            }
        }
    }

    /// What the tick should do.
    enum Verdict: Equatable {
        /// Send `WATCHDOG=1`.
        case ping
        /// Send nothing; `newProblem` is set when this is the first unhealthy tick since a healthy one.
        case withhold(newProblem: Problem?)
    }

    init(commandLimit: TimeAmount) {
        self.commandLimit = commandLimit
    }

    mutating func tick(now: NIODeadline, feedLoopAnsweredLastProbe: Bool, commandRunningSince: NIODeadline?) -> Verdict {
        let current: Problem?
        if !feedLoopAnsweredLastProbe {
            current = .feedLoopUnresponsive
        } else if let since = commandRunningSince, now - since > self.commandLimit {
            current = .feedCommandStuck(since: now - since)
        } else {
            current = nil
        }
        defer { self.problem = current }
        guard let current else { return .ping }
        return .withhold(newProblem: self.problem == nil ? current : nil)
    }
}
