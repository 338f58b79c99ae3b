/// How a recording's output path becomes one file per day: `ticks.jsonl` is written as
/// `ticks-2026-11-27.jsonl`, `ticks` as `ticks-2026-11-27.jsonl`, the date being the UTC day of
/// the ticks' receive time (the whole Indian session, 09:15 to 15:30 IST, falls in one UTC day).
public struct RecordingFileName: Sendable, Equatable {
    /// The path up to the date: `/data/ticks`.
    public var stem: String
    /// The extension with its dot: `.jsonl`.
    public var pathExtension: String

    public init(output: String) {
        let slash = output.lastIndex(of: "/")
        let nameStart = slash.map { output.index(after: $0) } ?? output.startIndex
        if let dot = output[nameStart...].lastIndex(of: "."), dot != nameStart {
            self.stem = String(output[..<dot])
            self.pathExtension = String(output[dot...])
        } else {
            self.stem = output
            self.pathExtension = ".jsonl"
        }
    }

    /// The file for `day`.
    public func path(forDay day: RecordingDay) -> String {
        "\(self.stem)-\(day)\(self.pathExtension)"
    }
}

/// A UTC calendar day, the unit of rotation.
public struct RecordingDay: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Days since 1970-01-01.
    public let daysSinceEpoch: Int64

    public init(epochNanoseconds: Int64) {
        let nanosecondsPerDay: Int64 = 86_400 * 1_000_000_000
        self.daysSinceEpoch = epochNanoseconds >= 0 ? epochNanoseconds / nanosecondsPerDay : (epochNanoseconds + 1) / nanosecondsPerDay - 1
    }

    public static func < (lhs: RecordingDay, rhs: RecordingDay) -> Bool { lhs.daysSinceEpoch < rhs.daysSinceEpoch }

    /// `YYYY-MM-DD` (Howard Hinnant's `civil_from_days`).
    public var description: String {
        let z = self.daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }
}

/// Receive times as people read them.
public enum RecordingTime {
    /// `2026-11-27T03:45:01.123Z` for an epoch time in nanoseconds.
    public static func iso8601(epochNanoseconds: Int64) -> String {
        let day = RecordingDay(epochNanoseconds: epochNanoseconds)
        // The remainder rather than `time - days * day`, whose product overflows for the earliest times.
        let nanosecondsPerDay: Int64 = 86_400 * 1_000_000_000
        let remainder = epochNanoseconds % nanosecondsPerDay
        let nanosecondsOfDay = remainder >= 0 ? remainder : remainder + nanosecondsPerDay
        let milliseconds = nanosecondsOfDay / 1_000_000
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let hours = pad(milliseconds / 3_600_000, 2)
        let minutes = pad(milliseconds / 60_000 % 60, 2)
        let seconds = pad(milliseconds / 1000 % 60, 2)
        return "\(day)T\(hours):\(minutes):\(seconds).\(pad(milliseconds % 1000, 3))Z"
    }
}
