import StreamingHub
import Testing
import WireJSON

extension SocketTests {
    /// Request/response transcripts over a real socket against a running agent, checked against the
    /// reference server's exact frames (spec §2-§4): codes, messages, key names and key order.
    @Suite("WebSocket protocol transcripts")
    struct ProtocolTranscriptTests {
        @Test("authentication: success frame, both key spellings, type as action, and every error")
        func authentication() async throws {
            try await TestAgent.with { agent in
                let client = try agent.client(authenticate: false)
                try client.send(#"{"action": "authenticate"}"#)
                #expect(try client.receiveReplyText() == #"{"status": "error", "code": "AUTHENTICATION_ERROR", "message": "API key is required"}"#)
                try client.send(#"{"action": "authenticate", "api_key": ""}"#)
                #expect(try client.receiveReplyText() == #"{"status": "error", "code": "AUTHENTICATION_ERROR", "message": "API key is required"}"#)
                try client.send(#"{"action": "authenticate", "api_key": 12345}"#)
                #expect(
                    try client.receiveReplyText()
                        == #"{"status": "error", "code": "SERVER_ERROR", "message": "'int' object has no attribute 'encode'"}"#
                )
                try client.send(#"{"action": "authenticate", "api_key": "wrong"}"#)
                #expect(try client.receiveReplyText() == #"{"status": "error", "code": "AUTHENTICATION_ERROR", "message": "Invalid API key"}"#)
                try client.send(#"{"type": "auth", "api_key": "", "apikey": "\#(TestAgent.apiKey)"}"#)
                #expect(
                    try client.receiveReplyText()
                        == #"{"type": "auth", "status": "success", "message": "Authentication successful", "broker": "simulator", "user_id": "openalgo", "supported_features": {"ltp": true, "quote": true, "depth": true}}"#
                )
            }
        }

        @Test("malformed frames: invalid JSON, non-objects, unknown and missing actions; the socket stays open")
        func malformedFrames() async throws {
            try await TestAgent.with { agent in
                let client = try agent.client(authenticate: false)
                let cases: [(String, String)] = [
                    ("{not json", #"{"status": "error", "code": "INVALID_JSON", "message": "Invalid JSON message"}"#),
                    ("[1, 2]", #"{"status": "error", "code": "SERVER_ERROR", "message": "'list' object has no attribute 'get'"}"#),
                    ("\"hello\"", #"{"status": "error", "code": "SERVER_ERROR", "message": "'str' object has no attribute 'get'"}"#),
                    ("null", #"{"status": "error", "code": "SERVER_ERROR", "message": "'NoneType' object has no attribute 'get'"}"#),
                    ("{}", #"{"status": "error", "code": "INVALID_ACTION", "message": "Invalid action: None"}"#),
                    (#"{"action": "dance"}"#, #"{"status": "error", "code": "INVALID_ACTION", "message": "Invalid action: dance"}"#),
                    (#"{"action": 7}"#, #"{"status": "error", "code": "INVALID_ACTION", "message": "Invalid action: 7"}"#),
                ]
                for (request, reply) in cases {
                    try client.send(request)
                    #expect(try client.receiveReplyText() == reply, "reply to \(request)")
                }
                try client.sendFrame(opcode: 0x2, payload: Array(#"{"action": "ping", "_pingId": "binary"}"#.utf8))
                let pong = try client.receiveReply().objectValue
                #expect(pong?["type"] == "pong")
                #expect(pong?["_pingId"] == "binary")
            }
        }

        @Test("actions that need authentication refuse before it; ping and get_supported_brokers do not")
        func authenticationRequired() async throws {
            try await TestAgent.with { agent in
                let client = try agent.client(authenticate: false)
                for action in ["subscribe", "unsubscribe", "unsubscribe_all", "get_broker_info", "subscribe_orders", "unsubscribe_orders"] {
                    try client.send(#"{"action": "\#(action)", "symbol": "RELIANCE", "exchange": "NSE"}"#)
                    #expect(
                        try client.receiveReplyText()
                            == #"{"status": "error", "code": "NOT_AUTHENTICATED", "message": "You must authenticate first"}"#,
                        "\(action)"
                    )
                }
                try client.send(#"{"action": "get_supported_brokers"}"#)
                #expect(
                    try client.receiveReplyText()
                        == #"{"type": "supported_brokers", "status": "success", "brokers": ["zerodha", "angelone", "dhan", "simulator", "replay", "zmq"], "count": 6}"#
                )
                try client.send(#"{"action": "ping", "timestamp": 1737345600000, "_pingId": "p1"}"#)
                let pong = try #require(try client.receiveReply().objectValue)
                #expect(pong.entries.map(\.key) == ["type", "status", "server_timestamp", "client_timestamp", "_pingId"])
                #expect(pong["client_timestamp"] == 1_737_345_600_000)
                guard case .integer(let serverTimestamp) = pong["server_timestamp"], let milliseconds = serverTimestamp.value else {
                    Issue.record("server_timestamp must be an integer")
                    return
                }
                #expect(milliseconds > 1_700_000_000_000)
                try client.send(#"{"action": "ping"}"#)
                #expect(try client.receiveReply().objectValue?.entries.map(\.key) == ["type", "status", "server_timestamp"])
            }
        }

        @Test("subscribe acks: per-symbol results, partial status, label modes, depth and request_id echo")
        func subscribeAcks() async throws {
            try await TestAgent.with { agent in
                let client = try agent.client()
                try client.send(
                    #"{"action": "subscribe", "symbols": [{"symbol": "RELIANCE", "exchange": "NSE"}, {"symbol": "BOGUS1", "exchange": "NOPE"}, {"symbol": "X"}], "mode": "ltp", "depth": 5, "request_id": "r1"}"#
                )
                #expect(
                    try client.receiveReplyText()
                        == #"{"type": "subscribe", "status": "partial", "subscriptions": [{"symbol": "RELIANCE", "exchange": "NSE", "status": "success", "mode": "LTP", "depth": 5, "broker": "simulator"}, {"symbol": "BOGUS1", "exchange": "NOPE", "status": "error", "message": "Symbol BOGUS1 not found for exchange NOPE", "broker": "simulator"}], "message": "Subscription processing complete", "broker": "simulator", "request_id": "r1"}"#
                )
                try client.send(#"{"type": "subscribe", "symbol": "TCS", "exchange": "NSE", "mode": 3, "depth": 20, "request_id": {"n": [1, 2.5]}}"#)
                #expect(
                    try client.receiveReplyText()
                        == #"{"type": "subscribe", "status": "success", "subscriptions": [{"symbol": "TCS", "exchange": "NSE", "status": "success", "mode": "Depth", "depth": 20, "broker": "simulator"}], "message": "Subscription processing complete", "broker": "simulator", "request_id": {"n": [1, 2.5]}}"#
                )
                try client.send(#"{"action": "subscribe", "symbol": "INFY", "exchange": "NSE", "mode": 3, "depth": 7}"#)
                let fallback = try client.receiveReply().objectValue?["subscriptions"]
                #expect(
                    fallback
                        == .array([
                            .object(["symbol": "INFY", "exchange": "NSE", "status": "success", "mode": "Depth", "depth": 5, "broker": "simulator"])
                        ])
                )
                try client.send(#"{"action": "subscribe", "symbols": [{"symbol": "A", "exchange": "MOON"}], "mode": 2}"#)
                #expect(try client.receiveReply().objectValue?["status"] == "partial")
                try client.send(#"{"action": "subscribe", "symbols": [{"exchange": "NSE"}], "request_id": 7}"#)
                #expect(
                    try client.receiveReplyText()
                        == #"{"type": "subscribe", "status": "success", "subscriptions": [], "message": "Subscription processing complete", "broker": "simulator", "request_id": 7}"#
                )
            }
        }

        @Test("subscribe errors: modes the reference refuses, missing symbols, docs-style instruments, non-object entries")
        func subscribeErrors() async throws {
            try await TestAgent.with { agent in
                let client = try agent.client()
                let cases: [(String, String, String)] = [
                    (#""mode": 4"#, "INVALID_MODE", "Invalid mode 4; expected 1 (LTP), 2 (Quote), or 3 (Depth)"),
                    (#""mode": "foo""#, "INVALID_MODE", "Invalid mode 'foo'; expected 'LTP', 'Quote', or 'Depth' (case-insensitive)"),
                    (#""mode": 2.0"#, "INVALID_MODE", "Mode must be int or str, got float"),
                    (#""mode": null"#, "INVALID_MODE", "Mode must be int or str, got NoneType"),
                    (#""mode": true"#, "INVALID_MODE", "Mode must be int or str, got bool (True)"),
                    (#""mode": [1]"#, "INVALID_MODE", "Mode must be int or str, got list"),
                ]
                for (mode, code, message) in cases {
                    try client.send(#"{"action": "subscribe", "symbols": [{"symbol": "RELIANCE", "exchange": "NSE"}], \#(mode)}"#)
                    #expect(try client.receiveReplyText() == #"{"status": "error", "code": "\#(code)", "message": "\#(message)"}"#)
                }
                let noSymbols = #"{"status": "error", "code": "INVALID_PARAMETERS", "message": "At least one symbol must be specified"}"#
                try client.send(#"{"action": "subscribe", "mode": 1}"#)
                #expect(try client.receiveReplyText() == noSymbols)
                try client.send(#"{"action": "subscribe", "instruments": [{"symbol": "RELIANCE", "exchange": "NSE"}], "mode": "ltp"}"#)
                #expect(try client.receiveReplyText() == noSymbols)
                try client.send(#"{"action": "subscribe", "symbols": ["NSE:RELIANCE"], "mode": 1}"#)
                #expect(
                    try client.receiveReplyText() == #"{"status": "error", "code": "SERVER_ERROR", "message": "'str' object has no attribute 'get'"}"#
                )
                try client.send(#"{"action": "subscribe", "symbols": 5, "mode": 1}"#)
                #expect(try client.receiveReplyText() == #"{"status": "error", "code": "SERVER_ERROR", "message": "'int' object is not iterable"}"#)
            }
        }

        @Test("unsubscribe acks: per-entry modes, failures echo what was sent, unsubscribe_all answers as unsubscribe")
        func unsubscribeAcks() async throws {
            try await TestAgent.with { agent in
                let client = try agent.client()
                try client.send(
                    #"{"action": "subscribe", "symbols": [{"symbol": "TCS", "exchange": "NSE"}, {"symbol": "INFY", "exchange": "NSE"}], "mode": 1}"#
                )
                _ = try client.receiveReply()
                try client.send(
                    #"{"action": "unsubscribe", "symbols": [{"symbol": "TCS", "exchange": "NSE", "mode": 1}, {"exchange": "NSE", "mode": 9}], "request_id": 7}"#
                )
                #expect(
                    try client.receiveReplyText()
                        == #"{"type": "unsubscribe", "status": "partial", "message": "Unsubscription processing complete", "successful": [{"symbol": "TCS", "exchange": "NSE", "status": "success", "broker": "simulator"}], "failed": [{"symbol": null, "exchange": "NSE", "status": "error", "message": "Invalid mode 9; expected 1 (LTP), 2 (Quote), or 3 (Depth)", "broker": "simulator"}], "broker": "simulator", "request_id": 7}"#
                )
                try client.send(#"{"action": "unsubscribe", "symbols": [{"symbol": "Q", "exchange": "NSE", "mode": "x"}]}"#)
                #expect(try client.receiveReply().objectValue?["status"] == "error")
                try client.send(#"{"action": "unsubscribe", "symbol": "TCS", "exchange": "NSE", "mode": 0}"#)
                #expect(
                    try client.receiveReplyText()
                        == #"{"status": "error", "code": "INVALID_MODE", "message": "Invalid mode 0; expected 1 (LTP), 2 (Quote), or 3 (Depth)"}"#
                )
                try client.send(#"{"action": "unsubscribe"}"#)
                #expect(
                    try client.receiveReplyText()
                        == #"{"status": "error", "code": "INVALID_PARAMETERS", "message": "Either symbols or unsubscribe_all is required"}"#
                )
                try client.send(#"{"type": "unsubscribe_all", "request_id": "all"}"#)
                #expect(
                    try client.receiveReplyText()
                        == #"{"type": "unsubscribe", "status": "success", "message": "Unsubscription processing complete", "successful": [{"symbol": "INFY", "exchange": "NSE", "status": "success", "broker": "simulator"}], "failed": [], "broker": "simulator", "request_id": "all"}"#
                )
                let metrics = try await agent.metrics()
                #expect(metrics.instruments == 0)
            }
        }

        @Test("broker info, supported brokers and order-update acks")
        func informationalActions() async throws {
            try await TestAgent.with { agent in
                let client = try agent.client()
                try client.send(#"{"action": "get_broker_info"}"#)
                #expect(
                    try client.receiveReplyText()
                        == #"{"type": "broker_info", "status": "success", "broker": "simulator", "adapter_status": "connected", "user_id": "openalgo"}"#
                )
                try client.send(#"{"action": "subscribe_orders", "request_id": "o1"}"#)
                #expect(
                    try client.receiveReplyText()
                        == #"{"type": "subscribe_orders", "status": "success", "message": "Subscribed to order updates", "request_id": "o1"}"#
                )
                try client.send(#"{"action": "unsubscribe_orders"}"#)
                #expect(
                    try client.receiveReplyText()
                        == #"{"type": "unsubscribe_orders", "status": "success", "message": "Unsubscribed from order updates"}"#
                )
            }
        }

        @Test("market data frames have the reference's envelope: key order, int outer mode, trailing broker")
        func marketDataEnvelope() async throws {
            try await TestAgent.with { agent in
                let client = try agent.client()
                try client.send(#"{"action": "subscribe", "symbols": [{"symbol": "NIFTY", "exchange": "NSE_INDEX"}], "mode": 2}"#)
                _ = try client.receiveReply()
                let frame = try client.receiveMarketData()
                #expect(frame.entries.map(\.key) == ["type", "symbol", "exchange", "mode", "data", "broker"])
                #expect(frame["symbol"] == "NIFTY")
                #expect(frame["exchange"] == "NSE_INDEX")
                #expect(frame["mode"] == 2)
                #expect(frame["broker"] == "simulator")
                let data = try #require(frame["data"]?.objectValue)
                #expect(data["ltp"].map { if case .double = $0 { true } else { false } } == true)
                #expect(data["timestamp"].map { if case .integer = $0 { true } else { false } } == true)
            }
        }
    }
}
