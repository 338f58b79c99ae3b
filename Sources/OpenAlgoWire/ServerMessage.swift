import MarketData
import NIOCore
import WireJSON

/// The server's replies, shaped and ordered as the reference sends them.
public enum ServerMessage {
    /// The outcome for one symbol of a subscribe request.
    public enum SubscribeResult: Sendable, Equatable {
        case success(Instrument, mode: SubscriptionMode, depth: JSONValue)
        case failure(Instrument, message: String)
    }

    /// The outcome for one entry of an unsubscribe request; failures echo what was sent.
    public enum UnsubscribeResult: Sendable, Equatable {
        case success(Instrument)
        case failure(symbol: JSONValue, exchange: JSONValue, message: String)
    }

    public static func error(_ error: WireError) -> JSONValue {
        .object(["status": "error", "code": .string(error.code.rawValue), "message": .string(error.message)])
    }

    public static func authSuccess(broker: String, userID: String) -> JSONValue {
        .object([
            "type": "auth", "status": "success", "message": "Authentication successful", "broker": .string(broker),
            "user_id": .string(userID), "supported_features": .object(["ltp": true, "quote": true, "depth": true]),
        ])
    }

    /// The subscribe ack. `status` is `partial` whenever any symbol failed, even all of them, as in the reference.
    public static func subscribeAck(results: [SubscribeResult], broker: String, requestID: JSONValue?) -> JSONValue {
        let entries: [JSONValue] = results.map { result in
            switch result {
            case .success(let instrument, let mode, let depth):
                return .object([
                    "symbol": .string(instrument.symbol), "exchange": .string(instrument.exchange), "status": "success",
                    "mode": .string(mode.label), "depth": depth, "broker": .string(broker),
                ])
            case .failure(let instrument, let message):
                return .object([
                    "symbol": .string(instrument.symbol), "exchange": .string(instrument.exchange), "status": "error",
                    "message": .string(message), "broker": .string(broker),
                ])
            }
        }
        let failed = results.contains { if case .failure = $0 { return true } else { return false } }
        var object: JSONObject = [
            "type": "subscribe", "status": .string(failed ? "partial" : "success"), "subscriptions": .array(entries),
            "message": "Subscription processing complete", "broker": .string(broker),
        ]
        if let requestID { object["request_id"] = requestID }
        return .object(object)
    }

    public static func unsubscribeAck(results: [UnsubscribeResult], broker: String, requestID: JSONValue?) -> JSONValue {
        var successful: [JSONValue] = []
        var failed: [JSONValue] = []
        for result in results {
            switch result {
            case .success(let instrument):
                successful.append(
                    .object([
                        "symbol": .string(instrument.symbol), "exchange": .string(instrument.exchange), "status": "success",
                        "broker": .string(broker),
                    ])
                )
            case .failure(let symbol, let exchange, let message):
                failed.append(
                    .object([
                        "symbol": symbol, "exchange": exchange, "status": "error", "message": .string(message), "broker": .string(broker),
                    ])
                )
            }
        }
        let status = failed.isEmpty ? "success" : (successful.isEmpty ? "error" : "partial")
        var object: JSONObject = [
            "type": "unsubscribe", "status": .string(status), "message": "Unsubscription processing complete",
            "successful": .array(successful), "failed": .array(failed), "broker": .string(broker),
        ]
        if let requestID { object["request_id"] = requestID }
        return .object(object)
    }

    public static func pong(serverTimestamp: Int64, request: PingRequest) -> JSONValue {
        var object: JSONObject = ["type": "pong", "status": "success", "server_timestamp": .int(serverTimestamp)]
        if let clientTimestamp = request.clientTimestamp { object["client_timestamp"] = clientTimestamp }
        if let pingID = request.pingID { object["_pingId"] = pingID }
        return .object(object)
    }

    public static func brokerInfo(broker: String, adapterStatus: String, userID: String) -> JSONValue {
        .object([
            "type": "broker_info", "status": "success", "broker": .string(broker), "adapter_status": .string(adapterStatus),
            "user_id": .string(userID),
        ])
    }

    public static func supportedBrokers(_ brokers: [String]) -> JSONValue {
        .object([
            "type": "supported_brokers", "status": "success", "brokers": .array(brokers.map { .string($0) }), "count": .int(brokers.count),
        ])
    }

    /// The ack of `subscribe_orders` (`subscribed: true`) or `unsubscribe_orders`.
    public static func ordersAck(subscribed: Bool, requestID: JSONValue?) -> JSONValue {
        var object: JSONObject = [
            "type": .string(subscribed ? "subscribe_orders" : "unsubscribe_orders"), "status": "success",
            "message": .string(subscribed ? "Subscribed to order updates" : "Unsubscribed from order updates"),
        ]
        if let requestID { object["request_id"] = requestID }
        return .object(object)
    }
}
