/// An error the server answers with an error frame, `{"status": "error", "code": ..., "message": ...}`.
///
/// Codes and messages are the reference server's, byte for byte: clients (and their tests) match
/// on them. Error frames carry no `type`, so the official SDK ignores them, as it does with the
/// Python server.
public struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An error code of the OpenAlgo protocol. A struct rather than an enum so that later codes do
    /// not break exhaustive switches in client code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String

        private init(_ rawValue: String) {
            self.rawValue = rawValue
        }

        public static let invalidJSON = Code("INVALID_JSON")
        public static let invalidAction = Code("INVALID_ACTION")
        public static let serverError = Code("SERVER_ERROR")
        public static let authenticationError = Code("AUTHENTICATION_ERROR")
        public static let notAuthenticated = Code("NOT_AUTHENTICATED")
        public static let invalidMode = Code("INVALID_MODE")
        public static let invalidParameters = Code("INVALID_PARAMETERS")

        public var description: String { self.rawValue }
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(self.code): \(self.message)" }

    public static let invalidJSON = WireError(code: .invalidJSON, message: "Invalid JSON message")
    public static let apiKeyRequired = WireError(code: .authenticationError, message: "API key is required")
    public static let invalidAPIKey = WireError(code: .authenticationError, message: "Invalid API key")
    public static let notAuthenticated = WireError(code: .notAuthenticated, message: "You must authenticate first")
    public static let noSymbols = WireError(code: .invalidParameters, message: "At least one symbol must be specified")
    public static let nothingToUnsubscribe = WireError(
        code: .invalidParameters,
        message: "Either symbols or unsubscribe_all is required"
    )

    /// The text of the Python `AttributeError` the reference reports when a value is not a dict.
    static func notAnObject(_ typeName: String, attribute: String = "get") -> WireError {
        WireError(code: .serverError, message: "'\(typeName)' object has no attribute '\(attribute)'")
    }
}
