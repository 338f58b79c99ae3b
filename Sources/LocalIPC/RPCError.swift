import WireJSON

/// A JSON-RPC error as the local socket sends it: a numeric `code`, a sentence a person can act
/// on, and a stable `reason` in `data` that programs can match on (`oa.ws.NotConnected`).
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    public var message: String
    /// `data`, which always carries `reason` and may carry `field`, `symbol`, `supported`.
    public var data: JSONObject

    public init(code: Int, reason: String, message: String, extra: JSONObject = JSONObject()) {
        self.code = code
        self.message = message
        var data: JSONObject = ["reason": .string(reason)]
        for entry in extra.entries { data[entry.key] = entry.value }
        self.data = data
    }

    /// `error.data.reason`, e.g. `oa.ipc.InvalidParams`.
    public var reason: String { self.data["reason"]?.stringValue ?? "" }

    public var description: String { self.message }

    /// The `error` member of a reply.
    public var json: JSONValue {
        .object(["code": .int(self.code), "message": .string(self.message), "data": .object(self.data)])
    }

    /// Reads an `error` member; anything malformed becomes an internal error that says so.
    public init(json: JSONValue) {
        let object = json.objectValue ?? JSONObject()
        self.code = object["code"]?.intValue ?? RPCErrorCode.internalError
        self.message = object["message"]?.stringValue ?? "the agent sent an error without a message"
        self.data = object["data"]?.objectValue ?? ["reason": "oa.ipc.Internal"]
    }
}

/// The error codes of the local protocol (`ipc.md`, "Error codes").
public enum RPCErrorCode {
    public static let parseError = -32700
    public static let invalidRequest = -32600
    public static let methodNotFound = -32601
    public static let invalidParams = -32602
    public static let internalError = -32603
    public static let invalidSymbol = -32001
    public static let notConnected = -32002
    public static let brokerUnavailable = -32003
    public static let slowConsumer = -32004
    public static let unsupportedVersion = -32005
    public static let notPermitted = -32006
}

extension RPCError {
    public static func parseError(_ detail: String) -> RPCError {
        RPCError(code: RPCErrorCode.parseError, reason: "oa.ipc.ParseError", message: "The line is not valid JSON: \(detail).")
    }

    public static func invalidRequest(_ detail: String) -> RPCError {
        RPCError(code: RPCErrorCode.invalidRequest, reason: "oa.ipc.InvalidRequest", message: detail)
    }

    public static func methodNotFound(_ method: String) -> RPCError {
        RPCError(
            code: RPCErrorCode.methodNotFound,
            reason: "oa.ipc.MethodNotFound",
            message: "Unknown method '\(method)'. Known methods: \(IPCMethod.allCases.map(\.rawValue).joined(separator: ", ")).",
            extra: ["method": .string(method)]
        )
    }

    public static func invalidParams(field: String, _ detail: String) -> RPCError {
        RPCError(code: RPCErrorCode.invalidParams, reason: "oa.ipc.InvalidParams", message: detail, extra: ["field": .string(field)])
    }

    public static func internalError(_ detail: String) -> RPCError {
        RPCError(code: RPCErrorCode.internalError, reason: "oa.ipc.Internal", message: detail)
    }

    public static func notConnected(_ detail: String) -> RPCError {
        RPCError(code: RPCErrorCode.notConnected, reason: "oa.ws.NotConnected", message: detail)
    }

    public static func brokerUnavailable(_ detail: String, extra: JSONObject = JSONObject()) -> RPCError {
        RPCError(code: RPCErrorCode.brokerUnavailable, reason: "oa.ws.BrokerUnavailable", message: detail, extra: extra)
    }

    public static func notPermitted(_ detail: String) -> RPCError {
        RPCError(code: RPCErrorCode.notPermitted, reason: "oa.ipc.NotPermitted", message: detail)
    }

    public static func unsupportedVersion(_ asked: Int) -> RPCError {
        RPCError(
            code: RPCErrorCode.unsupportedVersion,
            reason: "oa.ipc.UnsupportedVersion",
            message: "This agent speaks protocol version \(IPCProtocol.version), not \(asked).",
            extra: ["supported": [.int(IPCProtocol.version)]]
        )
    }
}
