/// Checks the API key clients send, in time that does not depend on where a guess goes wrong.
public struct APIKeyVerifier: Sendable {
    private let expected: [UInt8]

    /// - Parameter apiKey: the one valid key; it must not be empty.
    public init(apiKey: String) {
        precondition(!apiKey.isEmpty, "the API key must not be empty")
        self.expected = Array(apiKey.utf8)
    }

    /// Whether `candidate` is the key. Every byte of the longer input is visited, so the time taken
    /// tells nothing about the length of the matching prefix.
    public func verify(_ candidate: String) -> Bool {
        let given = Array(candidate.utf8)
        var difference = UInt8(truncatingIfNeeded: given.count ^ self.expected.count)
        let length = max(given.count, self.expected.count)
        for index in 0..<length {
            let left = index < given.count ? given[index] : 0
            let right = index < self.expected.count ? self.expected[index] : 0
            difference |= left ^ right
        }
        return difference == 0 && given.count == self.expected.count
    }
}
