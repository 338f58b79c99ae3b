import LocalIPC
import MarketData
import WireJSON

/// Reading the `params` of local requests; every failure names the field, so a script author
/// sees at once what to fix.
enum IPCParams {
    /// `symbols`: a non-empty array of `{"symbol": ..., "exchange": ...}` objects.
    static func instruments(_ params: JSONObject) throws(RPCError) -> [Instrument] {
        guard let value = params["symbols"] else {
            throw .invalidParams(field: "symbols", "\"symbols\" is required: a list of {\"symbol\": ..., \"exchange\": ...} objects.")
        }
        guard let entries = value.arrayValue, !entries.isEmpty else {
            throw .invalidParams(field: "symbols", "\"symbols\" must be a non-empty list of {\"symbol\": ..., \"exchange\": ...} objects.")
        }
        var instruments: [Instrument] = []
        instruments.reserveCapacity(entries.count)
        for (position, entry) in entries.enumerated() {
            guard let object = entry.objectValue,
                let symbol = object["symbol"]?.stringValue, !symbol.isEmpty,
                let exchange = object["exchange"]?.stringValue, !exchange.isEmpty
            else {
                throw .invalidParams(
                    field: "symbols[\(position)]",
                    "symbols[\(position)] must be an object with non-empty \"symbol\" and \"exchange\" strings."
                )
            }
            instruments.append(Instrument(exchange: exchange, symbol: symbol))
        }
        return instruments
    }

    /// `mode`: `"LTP"`, `"Quote"`, `"Depth"` in any case, or 1, 2, 3; `nil` when absent.
    static func mode(_ params: JSONObject) throws(RPCError) -> SubscriptionMode? {
        guard let value = params["mode"], value != .null else { return nil }
        if let number = value.intValue, let mode = SubscriptionMode(rawValue: UInt8(clamping: max(0, number))), number >= 1 {
            return mode
        }
        if let label = value.stringValue, let mode = SubscriptionMode(label: label) {
            return mode
        }
        throw .invalidParams(field: "mode", "\"mode\" must be \"LTP\", \"Quote\" or \"Depth\" (or 1, 2, 3), got \(value.compactJSONText).")
    }

    /// `depth`: the number of book levels for Depth subscriptions; 5 when absent.
    static func depth(_ params: JSONObject) throws(RPCError) -> Int {
        guard let value = params["depth"], value != .null else { return 5 }
        guard let depth = value.intValue, [5, 20, 30, 50].contains(depth) else {
            throw .invalidParams(field: "depth", "\"depth\" must be 5, 20, 30 or 50, got \(value.compactJSONText).")
        }
        return depth
    }

    static func bool(_ params: JSONObject, _ field: String) throws(RPCError) -> Bool {
        guard let value = params[field], value != .null else { return false }
        guard let flag = value.boolValue else {
            throw .invalidParams(field: field, "\"\(field)\" must be true or false, got \(value.compactJSONText).")
        }
        return flag
    }

    static func optionalString(_ params: JSONObject, _ field: String) throws(RPCError) -> String? {
        guard let value = params[field], value != .null else { return nil }
        guard let text = value.stringValue, !text.isEmpty else {
            throw .invalidParams(field: field, "\"\(field)\" must be a non-empty string, got \(value.compactJSONText).")
        }
        return text
    }

    /// `credentials`: an object of string fields (`api_key`, `access_token`, ...).
    static func credentials(_ params: JSONObject) throws(RPCError) -> [String: String] {
        guard let value = params["credentials"], value != .null else { return [:] }
        guard let object = value.objectValue else {
            throw .invalidParams(field: "credentials", "\"credentials\" must be an object of strings, e.g. {\"access_token\": \"...\"}.")
        }
        var result: [String: String] = [:]
        for entry in object.entries {
            guard let text = entry.value.stringValue else {
                throw .invalidParams(field: "credentials.\(entry.key)", "credentials.\(entry.key) must be a string.")
            }
            result[entry.key] = text
        }
        return result
    }

    /// `events`: a list of optional event names.
    static func events(_ params: JSONObject) throws(RPCError) -> [IPCEvent] {
        let names = IPCEvent.optional.map(\.rawValue)
        guard let entries = params["events"]?.arrayValue else {
            throw .invalidParams(field: "events", "\"events\" must be a list of event names: \(names.joined(separator: ", ")).")
        }
        var events: [IPCEvent] = []
        for entry in entries {
            guard let name = entry.stringValue, let event = IPCEvent(rawValue: name), IPCEvent.optional.contains(event) else {
                throw .invalidParams(
                    field: "events",
                    "Unknown event \(entry.compactJSONText); events that can be switched: \(names.joined(separator: ", "))."
                )
            }
            events.append(event)
        }
        return events
    }
}
