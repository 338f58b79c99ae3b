import MarketData
import WireJSON

/// An `authenticate` request's key. `api_key` wins, `apikey` is the fallback when the first is
/// missing or empty, as in the reference.
public enum AuthenticateRequest {
    /// The key to verify, or the reference's error for a missing or non-string key.
    public static func apiKey(from message: ClientMessage) -> Result<String, WireError> {
        let primary = message.body["api_key"]
        let value = (primary?.isTruthy ?? false) ? primary : message.body["apikey"]
        guard let value, value.isTruthy else { return .failure(.apiKeyRequired) }
        guard case .string(let key) = value else { return .failure(.notAnObject(value.pythonTypeName, attribute: "encode")) }
        return .success(key)
    }
}

/// Mode parsing with the reference's type rules and texts: ints 1-3 or a label in any case;
/// booleans, floats, null, lists and objects are refused.
public enum ModeValue {
    public static func parse(_ value: JSONValue) -> Result<SubscriptionMode, InvalidModeError> {
        do {
            switch value {
            case .integer(let integer):
                guard let small = integer.value else {
                    return .failure(InvalidModeError(message: "Invalid mode \(integer.text); expected 1 (LTP), 2 (Quote), or 3 (Depth)"))
                }
                return .success(try SubscriptionMode(validating: small))
            case .string(let label):
                return .success(try SubscriptionMode(validatingLabel: label, repr: value.pythonRepr))
            case .bool(let flag):
                return .failure(InvalidModeError(message: "Mode must be int or str, got bool (\(flag ? "True" : "False"))"))
            default:
                return .failure(InvalidModeError(message: "Mode must be int or str, got \(value.pythonTypeName)"))
            }
        } catch {
            return .failure(error)
        }
    }
}

/// A `subscribe` request, validated in the reference's order: mode, then symbols.
public struct SubscribeRequest: Sendable, Equatable {
    /// The instruments, in request order; entries without a symbol or exchange are dropped silently.
    public var instruments: [Instrument]
    public var mode: SubscriptionMode
    /// The `depth` value as sent, echoed in the ack when the feed does not report another.
    public var depthValue: JSONValue
    /// The depth level asked of the feed: `depth` when it is an integer, else 5.
    public var depthLevel: Int
    public var requestID: JSONValue?

    public init(_ message: ClientMessage) throws(WireError) {
        let body = message.body
        switch ModeValue.parse(body["mode"] ?? "Quote") {
        case .success(let mode): self.mode = mode
        case .failure(let error): throw WireError(code: .invalidMode, message: error.message)
        }
        self.depthValue = body["depth"] ?? 5
        if case .integer(let integer) = self.depthValue, let level = integer.value {
            self.depthLevel = level
        } else {
            self.depthLevel = 5
        }
        self.requestID = message.requestID

        var entries = try Self.entries(body["symbols"])
        if entries.isEmpty, let symbol = body["symbol"], symbol.isTruthy, let exchange = body["exchange"], exchange.isTruthy {
            entries = [["symbol": symbol, "exchange": exchange]]
        }
        guard !entries.isEmpty else { throw WireError.noSymbols }
        self.instruments = entries.compactMap { entry in
            guard let symbol = entry["symbol"], symbol.isTruthy, let exchange = entry["exchange"], exchange.isTruthy else { return nil }
            return Instrument(exchange: exchange.pythonString, symbol: symbol.pythonString)
        }
    }

    /// The `symbols` array as objects. A truthy non-list, or a non-object entry, fails the whole
    /// message with the Python error the reference reports (rather than half-applying it).
    static func entries(_ value: JSONValue?) throws(WireError) -> [JSONObject] {
        guard let value, value.isTruthy else { return [] }
        switch value {
        case .array(let elements):
            var objects: [JSONObject] = []
            for element in elements {
                guard case .object(let object) = element else { throw WireError.notAnObject(element.pythonTypeName) }
                objects.append(object)
            }
            return objects
        case .string, .object:
            // Python iterates a string's characters or a dict's keys: each is a `str`.
            throw WireError.notAnObject("str")
        default:
            throw WireError(code: .serverError, message: "'\(value.pythonTypeName)' object is not iterable")
        }
    }
}

/// An `unsubscribe` or `unsubscribe_all` request.
public struct UnsubscribeRequest: Sendable, Equatable {
    /// One entry of the array form. A bad per-entry mode does not fail the message: it becomes a
    /// `failed[]` entry that echoes whatever symbol and exchange were sent (possibly null).
    public enum Entry: Sendable, Equatable {
        case instrument(Instrument, SubscriptionMode)
        case invalidMode(symbol: JSONValue, exchange: JSONValue, message: String)
    }

    public enum Target: Sendable, Equatable {
        case all
        case entries([Entry])
    }

    public var target: Target
    public var requestID: JSONValue?

    public init(_ message: ClientMessage) throws(WireError) {
        let body = message.body
        self.requestID = message.requestID
        let isAll = body["type"] == .string("unsubscribe_all") || body["action"] == .string("unsubscribe_all")
        var objects = try SubscribeRequest.entries(body["symbols"])
        if objects.isEmpty, !isAll, let symbol = body["symbol"], symbol.isTruthy, let exchange = body["exchange"], exchange.isTruthy {
            switch ModeValue.parse(body["mode"] ?? 2) {
            case .success(let mode): objects = [["symbol": symbol, "exchange": exchange, "mode": .int(mode.rawValue)]]
            case .failure(let error): throw WireError(code: .invalidMode, message: error.message)
            }
        }
        if isAll {
            self.target = .all
            return
        }
        guard !objects.isEmpty else { throw WireError.nothingToUnsubscribe }
        var entries: [Entry] = []
        for object in objects {
            let symbol = object["symbol"] ?? .null
            let exchange = object["exchange"] ?? .null
            switch ModeValue.parse(object["mode"] ?? 2) {
            case .failure(let error):
                entries.append(.invalidMode(symbol: symbol, exchange: exchange, message: error.message))
            case .success(let mode):
                guard symbol.isTruthy, exchange.isTruthy else { continue }
                entries.append(.instrument(Instrument(exchange: exchange.pythonString, symbol: symbol.pythonString), mode))
            }
        }
        self.target = .entries(entries)
    }
}

/// A `ping` request's optional echo fields.
public struct PingRequest: Sendable, Equatable {
    public var clientTimestamp: JSONValue?
    public var pingID: JSONValue?

    public init(_ message: ClientMessage) {
        self.clientTimestamp = message.body["timestamp"].flatMap { $0 == .null ? nil : $0 }
        self.pingID = message.body["_pingId"].flatMap { $0 == .null ? nil : $0 }
    }
}
