import BrokerKit

/// The settings of the replay feed, from `[brokers.replay]` (`file`, `speed`, `loop`), the
/// `OPENALGO_BROKER_REPLAY_*` variables or `--replay`, `--speed`, `--loop`.
package struct ReplayConfiguration: Sendable, Equatable {
    /// The recording: a file, the output path of a day-rotated recording, or several of either separated by commas.
    package var file: String
    package var speed: ReplaySpeed
    /// Whether playback starts again from the first record after the last.
    package var loop: Bool

    package init(file: String, speed: ReplaySpeed = .factor(1), loop: Bool = false) {
        self.file = file
        self.speed = speed
        self.loop = loop
    }

    package init(_ settings: BrokerSettings) throws(BrokerConfigurationError) {
        guard let file = settings["file"], !file.isEmpty else {
            throw BrokerConfigurationError("[brokers.replay] file is required: the recording to play (--replay FILE)")
        }
        let speedText = settings["speed"] ?? "1"
        guard let speed = ReplaySpeed(speedText) else {
            throw BrokerConfigurationError("[brokers.replay] speed must be a number above 0 (1 is real time) or 'max', got '\(speedText)'")
        }
        let loopText = settings["loop"]?.lowercased() ?? "false"
        guard ["true", "false", "1", "0", "yes", "no"].contains(loopText) else {
            throw BrokerConfigurationError("[brokers.replay] loop must be true or false, got '\(loopText)'")
        }
        self.init(file: file, speed: speed, loop: ["true", "1", "yes"].contains(loopText))
    }
}

/// How fast a recording plays: a multiple of real time, or as fast as the hub takes ticks.
package enum ReplaySpeed: Sendable, Equatable, CustomStringConvertible {
    case factor(Double)
    case maximum

    /// `1`, `10`, `0.5`, `10x`, or `max`.
    package init?(_ text: String) {
        var value = text.lowercased()
        if value == "max" {
            self = .maximum
            return
        }
        if value.hasSuffix("x") { value.removeLast() }
        guard let factor = Double(value), factor.isFinite, factor > 0 else { return nil }
        self = .factor(factor)
    }

    package var description: String {
        switch self {
        case .maximum: return "max"
        case .factor(let factor):
            return factor == factor.rounded() && abs(factor) < 1e15 ? String(Int64(factor)) : String(factor)
        }
    }
}
