import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Log lines for journald: each line starts with its syslog priority (`<3>` error, `<4>` warning,
/// `<6>` info, `<7>` debug, `sd-daemon(3)`), so `journalctl -p warning` and the journal's colours
/// keep the levels. No timestamp: the journal stamps every line itself.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info

    public init() {}

    /// Whether standard error is the journal stream systemd connected (`JOURNAL_STREAM` names its
    /// device and inode), so a child whose stderr was redirected elsewhere keeps plain lines.
    public static func isStandardErrorJournal(environment: [String: String]) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var status = stat()
        guard fstat(STDERR_FILENO, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }

    /// The `sd-daemon(3)` prefix for `level`.
    public static func priorityPrefix(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: return "<7>"
        case .info: return "<6>"
        case .notice: return "<5>"
        case .warning: return "<4>"
        case .error: return "<3>"
        case .critical: return "<2>"
        }
    }

    /// One journal line (without the newline) for a record.
    public static func format(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata) -> String {
        var line = Self.priorityPrefix(level) + message.description.replacingNewlines()
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            line += " \(key)=\("\(value)".replacingNewlines())"
        }
        return line
    }

    public func log(event: LogEvent) {
        var merged = self.metadata
        if let extra = event.metadata {
            merged.merge(extra) { _, new in new }
        }
        var line = Self.format(level: event.level, message: event.message, metadata: merged)
        line += "\n"
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }
}

extension String {
    /// A multi-line value would split into several journal entries, each without its priority.
    fileprivate func replacingNewlines() -> String {
        guard self.contains(where: \.isNewline) else { return self }
        return String(self.map { $0.isNewline ? " " : $0 })
    }
}
