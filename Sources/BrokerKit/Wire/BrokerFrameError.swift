/// A broker frame the decoders refused: too short for what its header announces, a packet of an
/// unknown kind where one must be understood, or a field that cannot be what the layout says.
///
/// A struct over a private enum so that new reasons can be added without breaking callers; compare
/// against the static constructors, or log ``description``, which names the broker, the packet and
/// the byte counts involved.
package struct BrokerFrameError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case truncated(what: String, needed: Int, available: Int)
        case unexpectedLength(what: String, length: Int, expected: Int)
        case unknownPacketKind(what: String, code: Int)
        case malformed(what: String, reason: String)
        case trailingBytes(what: String, count: Int)
    }

    private let code: Code

    private init(_ code: Code) {
        self.code = code
    }

    /// The frame or packet ends before the bytes its layout or header needs.
    package static func truncated(_ what: String, needed: Int, available: Int) -> Self {
        Self(.truncated(what: what, needed: needed, available: available))
    }

    /// A packet whose kind fixes its size arrived with another size.
    package static func unexpectedLength(_ what: String, length: Int, expected: Int) -> Self {
        Self(.unexpectedLength(what: what, length: length, expected: expected))
    }

    /// A packet kind this decoder cannot interpret and cannot skip.
    package static func unknownPacketKind(_ what: String, code: Int) -> Self {
        Self(.unknownPacketKind(what: what, code: code))
    }

    /// A field that violates the layout (a length below the header size, a token that is not text).
    package static func malformed(_ what: String, reason: String) -> Self {
        Self(.malformed(what: what, reason: reason))
    }

    /// Bytes left over after the packets the frame header announced.
    package static func trailingBytes(_ what: String, count: Int) -> Self {
        Self(.trailingBytes(what: what, count: count))
    }

    package var description: String {
        switch self.code {
        case .truncated(let what, let needed, let available):
            return "\(what) is truncated: needs \(needed) bytes, has \(available)"
        case .unexpectedLength(let what, let length, let expected):
            return "\(what) has \(length) bytes, expected \(expected)"
        case .unknownPacketKind(let what, let code):
            return "\(what) has unknown kind \(code)"
        case .malformed(let what, let reason):
            return "\(what) is malformed: \(reason)"
        case .trailingBytes(let what, let count):
            return "\(what) has \(count) bytes after its last packet"
        }
    }
}
