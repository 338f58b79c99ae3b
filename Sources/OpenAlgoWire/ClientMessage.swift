import NIOCore
import WireJSON

/// What a client asks for. `type` is accepted as an alias of `action`, as in the reference.
public enum ClientAction: Sendable, Equatable {
    case authenticate
    case subscribe
    /// Both `unsubscribe` and `unsubscribe_all`; ``UnsubscribeRequest`` tells which.
    case unsubscribe
    case subscribeOrders
    case unsubscribeOrders
    case getBrokerInfo
    case getSupportedBrokers
    case ping

    /// Whether the reference refuses the action with `NOT_AUTHENTICATED` before authentication.
    public var requiresAuthentication: Bool {
        switch self {
        case .ping, .getSupportedBrokers, .authenticate: return false
        default: return true
        }
    }
}

/// One decoded client frame: the action and the whole JSON object, whose fields the action's own
/// request type reads (after the authentication check, in the reference's order).
public struct ClientMessage: Sendable {
    public var action: ClientAction
    public var body: JSONObject

    public init(action: ClientAction, body: JSONObject) {
        self.action = action
        self.body = body
    }

    /// Decodes a text or binary frame's payload.
    ///
    /// Errors are the reference's: `INVALID_JSON` for unparseable bytes, `SERVER_ERROR` with the
    /// Python exception text for a JSON value that is not an object, `INVALID_ACTION` otherwise.
    public static func decode(_ payload: ByteBuffer) -> Result<ClientMessage, WireError> {
        let value: JSONValue
        do {
            value = try JSONParser.parse(payload)
        } catch {
            return .failure(.invalidJSON)
        }
        guard case .object(let body) = value else {
            return .failure(.notAnObject(value.pythonTypeName))
        }
        let actionValue: JSONValue? = body["action"].flatMap { $0.isTruthy ? $0 : nil } ?? body["type"]
        guard let actionValue, case .string(let name) = actionValue, let action = Self.action(named: name) else {
            return .failure(WireError(code: .invalidAction, message: "Invalid action: \(actionValue?.pythonString ?? "None")"))
        }
        return .success(ClientMessage(action: action, body: body))
    }

    private static func action(named name: String) -> ClientAction? {
        switch name {
        case "authenticate", "auth": return .authenticate
        case "subscribe": return .subscribe
        case "unsubscribe", "unsubscribe_all": return .unsubscribe
        case "subscribe_orders": return .subscribeOrders
        case "unsubscribe_orders": return .unsubscribeOrders
        case "get_broker_info": return .getBrokerInfo
        case "get_supported_brokers": return .getSupportedBrokers
        case "ping": return .ping
        default: return nil
        }
    }

    /// `request_id`, when present and not null: acks echo it unchanged.
    public var requestID: JSONValue? {
        guard let value = self.body["request_id"], value != .null else { return nil }
        return value
    }
}
