/// How much data a subscriber wants for an instrument. The raw values are the wire's integers.
///
/// Modes are ordered: a Depth tick carries everything a Quote or LTP subscriber needs, which is
/// what the fan-out rule relies on.
public enum SubscriptionMode: UInt8, Sendable, Hashable, Comparable, CaseIterable, CustomStringConvertible {
    case ltp = 1
    case quote = 2
    case depth = 3

    public static func < (lhs: SubscriptionMode, rhs: SubscriptionMode) -> Bool {
        lhs.rawValue < rhs.rawValue
    }

    /// The canonical label the reference echoes in acks: `LTP`, `Quote`, `Depth`.
    public var label: String {
        switch self {
        case .ltp: return "LTP"
        case .quote: return "Quote"
        case .depth: return "Depth"
        }
    }

    public var description: String { self.label }

    /// Parses an integer mode exactly as the reference's `normalize_mode` does.
    public init(validating value: Int) throws(InvalidModeError) {
        guard let mode = SubscriptionMode(rawValue: UInt8(truncatingIfNeeded: value)), (1...3).contains(value) else {
            throw InvalidModeError(message: "Invalid mode \(value); expected 1 (LTP), 2 (Quote), or 3 (Depth)")
        }
        self = mode
    }

    /// Parses a label case-insensitively after trimming whitespace, as the reference does.
    ///
    /// - Parameter repr: how the rejected value is quoted in the error; the reference uses
    ///   Python's `repr` of the original string.
    public init(validatingLabel label: String, repr: String) throws(InvalidModeError) {
        guard let mode = SubscriptionMode(label: label) else {
            throw InvalidModeError(message: "Invalid mode \(repr); expected 'LTP', 'Quote', or 'Depth' (case-insensitive)")
        }
        self = mode
    }

    /// A label in any case, surrounding whitespace ignored; `nil` when it names no mode.
    public init?(label: String) {
        switch label.trimmingPythonWhitespace().uppercased() {
        case "LTP": self = .ltp
        case "QUOTE": self = .quote
        case "DEPTH": self = .depth
        default: return nil
        }
    }
}

extension SubscriptionMode {
    /// ``init(label:)`` for a label in UTF-8 bytes, without making a string of an ASCII label: the
    /// ZeroMQ bus names a mode in every message's topic.
    public init?(labelUTF8 label: UnsafeRawBufferPointer) {
        guard label.allSatisfy({ $0 < 0x80 }) else {
            guard let text = String(validating: label, as: UTF8.self) else { return nil }
            self.init(label: text)
            return
        }
        // ASCII whitespace as Unicode's White_Space has it: tab to carriage return, and space.
        func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) }
        guard let first = label.firstIndex(where: { !isWhitespace($0) }), let last = label.lastIndex(where: { !isWhitespace($0) })
        else { return nil }
        let trimmed = UnsafeRawBufferPointer(rebasing: label[first...last])
        func names(_ word: StaticString) -> Bool {
            trimmed.count == word.utf8CodeUnitCount
                && zip(trimmed, UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)).allSatisfy { byte, letter in
                    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) ? byte - 0x20 == letter : byte == letter
                }
        }
        if names("LTP") {
            self = .ltp
        } else if names("QUOTE") {
            self = .quote
        } else if names("DEPTH") {
            self = .depth
        } else {
            return nil
        }
    }
}

/// A mode the reference would refuse, with the reference's message.
public struct InvalidModeError: Error, Sendable, Equatable {
    public var message: String

    public init(message: String) {
        self.message = message
    }
}

extension String {
    /// `str.strip()` with no arguments: removes Unicode whitespace at both ends.
    func trimmingPythonWhitespace() -> Substring {
        var slice = Substring(self)
        while let first = slice.unicodeScalars.first, first.properties.isWhitespace { slice = slice.dropFirst() }
        while let last = slice.unicodeScalars.last, last.properties.isWhitespace { slice = slice.dropLast() }
        return slice
    }
}
