import WireJSON

/// Constants of the local JSON-RPC protocol (`ipc.md`), shared by the agent and its clients.
public enum IPCProtocol {
    /// The protocol version `hello` announces.
    public static let version = 1
    /// The longest line either side accepts, newline excluded.
    public static let maximumLineBytes = 1 << 20
}

/// The methods of protocol version 1.
public enum IPCMethod: String, CaseIterable, Sendable {
    case hello
    case status
    case wsConnect = "ws_connect"
    case wsDisconnect = "ws_disconnect"
    case wsSubscribe = "ws_subscribe"
    case wsUnsubscribe = "ws_unsubscribe"
    case subscriptions
    case clients
    case metrics
    case eventsSubscribe = "events_subscribe"
    case eventsUnsubscribe = "events_unsubscribe"
    case apiKey = "api_key"
    case reload
    case recordStart = "record_start"
    case recordStop = "record_stop"
}

/// The events (server notifications) of protocol version 1.
public enum IPCEvent: String, CaseIterable, Sendable {
    case hello
    case marketData = "market_data"
    case connectionStatus = "ws_connection_status"
    case subscriptionUpdate = "ws_subscription_update"
    /// An order update the feed relayed (the `zmq` feed), as the WebSocket `order_update` frame.
    case orderUpdate = "order_update"
    case lagged
    case closing

    /// Events a connection can switch on and off with `events_subscribe`/`events_unsubscribe`.
    public static let optional: [IPCEvent] = [.connectionStatus, .subscriptionUpdate, .orderUpdate]
}

/// A request id: JSON-RPC allows integers and strings, and the reply echoes it unchanged.
public enum RPCID: Sendable, Hashable, CustomStringConvertible {
    case integer(Int)
    case string(String)

    public var json: JSONValue {
        switch self {
        case .integer(let value): return .int(value)
        case .string(let value): return .string(value)
        }
    }

    public init?(json: JSONValue) {
        switch json {
        case .integer(let value):
            guard let small = value.value else { return nil }
            self = .integer(small)
        case .string(let value): self = .string(value)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .integer(let value): return String(value)
        case .string(let value): return value
        }
    }
}

/// One JSON-RPC request (or notification, without `id`).
public struct RPCRequest: Sendable, Equatable {
    public var id: RPCID?
    public var method: String
    /// `params`, an empty object when absent.
    public var params: JSONObject

    public init(id: RPCID?, method: String, params: JSONObject = JSONObject()) {
        self.id = id
        self.method = method
        self.params = params
    }

    /// Validates a decoded JSON value as a JSON-RPC 2.0 request.
    ///
    /// - Returns: the request, or the error to answer with and the id to answer to (`nil` when the
    ///   id could not be read, which JSON-RPC answers with `"id": null`).
    public static func decode(_ value: JSONValue) -> Result<RPCRequest, RequestFailure> {
        guard case .object(let object) = value else {
            return .failure(RequestFailure(id: nil, error: .invalidRequest("A request must be a JSON object.")))
        }
        var id: RPCID?
        if let rawID = object["id"] {
            guard let parsed = RPCID(json: rawID) else {
                return .failure(RequestFailure(id: nil, error: .invalidRequest("\"id\" must be an integer or a string.")))
            }
            id = parsed
        }
        guard object["jsonrpc"] == .string("2.0") else {
            return .failure(RequestFailure(id: id, error: .invalidRequest("\"jsonrpc\" must be \"2.0\".")))
        }
        guard case .string(let method)? = object["method"], !method.isEmpty else {
            return .failure(RequestFailure(id: id, error: .invalidRequest("\"method\" must be a non-empty string.")))
        }
        switch object["params"] {
        case nil, .null?:
            return .success(RPCRequest(id: id, method: method))
        case .object(let params)?:
            return .success(RPCRequest(id: id, method: method, params: params))
        default:
            return .failure(
                RequestFailure(id: id, error: .invalidParams(field: "params", "\"params\" must be an object (named parameters)."))
            )
        }
    }

    /// The request as one JSON object, ready for a line.
    public var json: JSONValue {
        var object: JSONObject = ["jsonrpc": "2.0"]
        if let id { object["id"] = id.json }
        object["method"] = .string(self.method)
        if self.params.count > 0 { object["params"] = .object(self.params) }
        return .object(object)
    }
}

/// Why a value was not a usable request, and whom to tell.
public struct RequestFailure: Error, Sendable, Equatable {
    public var id: RPCID?
    public var error: RPCError

    public init(id: RPCID?, error: RPCError) {
        self.id = id
        self.error = error
    }
}

/// Builders for the lines the agent sends.
public enum RPCReply {
    public static func result(id: RPCID?, _ result: JSONValue) -> JSONValue {
        .object(["jsonrpc": "2.0", "id": id?.json ?? .null, "result": result])
    }

    public static func error(id: RPCID?, _ error: RPCError) -> JSONValue {
        .object(["jsonrpc": "2.0", "id": id?.json ?? .null, "error": error.json])
    }

    public static func notification(_ event: IPCEvent, _ params: JSONValue) -> JSONValue {
        .object(["jsonrpc": "2.0", "method": .string(event.rawValue), "params": params])
    }
}
