import Logging
import NIOConcurrencyHelpers

/// The agent's log level, shared by every copy of its logger, so a configuration reload can
/// change it while the agent runs (a `Logger` is a value; each copy keeps its own handler).
public final class LogLevelSwitch: Sendable {
    private let level: NIOLockedValueBox<Logger.Level>

    public init(_ level: Logger.Level) {
        self.level = NIOLockedValueBox(level)
    }

    public var current: Logger.Level {
        get { self.level.withLockedValue { $0 } }
        set { self.level.withLockedValue { $0 = newValue } }
    }

    /// A logger whose level follows this switch, writing through `handler`.
    public func makeLogger(label: String, handler: some LogHandler) -> Logger {
        Logger(label: label, factory: { _ in SwitchedLogHandler(wrapped: handler, level: self) })
    }
}

/// Passes records to the wrapped handler, with the level read from a ``LogLevelSwitch``.
struct SwitchedLogHandler<Wrapped: LogHandler>: LogHandler {
    var wrapped: Wrapped
    let level: LogLevelSwitch

    var logLevel: Logger.Level {
        get { self.level.current }
        set { self.level.current = newValue }
    }

    var metadata: Logger.Metadata {
        get { self.wrapped.metadata }
        set { self.wrapped.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.wrapped[metadataKey: key] }
        set { self.wrapped[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        self.wrapped.log(event: event)
    }
}
