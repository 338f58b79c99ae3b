import NIOConcurrencyHelpers

/// Checks the API key clients send, in time that does not depend on where a guess goes wrong.
///
/// A class, so that a key rotation (`oactl api-key --rotate`) reaches every connection at once.
public final class APIKeyVerifier: Sendable {
    private let expected: NIOLockedValueBox<[UInt8]>

    /// - Parameter apiKey: the one valid key; it must not be empty.
    public init(apiKey: String) {
        precondition(!apiKey.isEmpty, "the API key must not be empty")
        self.expected = NIOLockedValueBox(Array(apiKey.utf8))
    }

    /// Makes `apiKey` the only valid key from now on.
    public func replaceKey(with apiKey: String) {
        precondition(!apiKey.isEmpty, "the API key must not be empty")
        self.expected.withLockedValue { $0 = Array(apiKey.utf8) }
    }

    /// Whether `candidate` is the key. Every byte of the longer input is visited, so the time taken
    /// tells nothing about the length of the matching prefix.
    public func verify(_ candidate: String) -> Bool {
        let given = Array(candidate.utf8)
        let expected = self.expected.withLockedValue { $0 }
        var difference = UInt8(truncatingIfNeeded: given.count ^ expected.count)
        let length = max(given.count, expected.count)
        for index in 0..<length {
            let left = index < given.count ? given[index] : 0
            let right = index < expected.count ? expected[index] : 0
            difference |= left ^ right
        }
        return difference == 0 && given.count == expected.count
    }
}
