/// Why a recording could not be written or read; the message names the file and the cause.
public struct TickRecordingError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Kind: Sendable, Equatable {
        case cannotOpen(path: String, reason: String)
        case cannotWrite(path: String, reason: String)
        case cannotRead(path: String, reason: String)
        case badRecord(reason: String)
        case noFiles(path: String)
    }

    private let kind: Kind

    private init(_ kind: Kind) {
        self.kind = kind
    }

    static func cannotOpen(_ path: String, reason: String) -> TickRecordingError { .init(.cannotOpen(path: path, reason: reason)) }
    static func cannotWrite(_ path: String, reason: String) -> TickRecordingError { .init(.cannotWrite(path: path, reason: reason)) }
    static func cannotRead(_ path: String, reason: String) -> TickRecordingError { .init(.cannotRead(path: path, reason: reason)) }
    static func badRecord(_ reason: String) -> TickRecordingError { .init(.badRecord(reason: reason)) }
    static func noFiles(_ path: String) -> TickRecordingError { .init(.noFiles(path: path)) }

    /// Whether a line was readable JSON but not a tick record (rather than a file problem).
    public var isBadRecord: Bool {
        if case .badRecord = self.kind { return true }
        return false
    }

    public var description: String {
        switch self.kind {
        case .cannotOpen(let path, let reason): return "cannot open \(path): \(reason)"
        case .cannotWrite(let path, let reason): return "cannot write \(path): \(reason)"
        case .cannotRead(let path, let reason): return "cannot read \(path): \(reason)"
        case .badRecord(let reason): return "not a tick record: \(reason)"
        case .noFiles(let path): return "no recording at \(path) (nor rotated files of it)"
        }
    }
}
