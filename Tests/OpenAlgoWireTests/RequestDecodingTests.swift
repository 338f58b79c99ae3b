import MarketData
import NIOCore
import OpenAlgoWire
import Testing
import WireJSON

@Suite("Client request decoding")
struct RequestDecodingTests {
    private func message(_ text: String) throws -> ClientMessage {
        try ClientMessage.decode(ByteBuffer(string: text)).get()
    }

    @Test("action and type are both read; an empty action falls back to type")
    func actionAliases() throws {
        #expect(try self.message(#"{"type": "authenticate"}"#).action == .authenticate)
        #expect(try self.message(#"{"action": "", "type": "ping"}"#).action == .ping)
        #expect(try self.message(#"{"action": "unsubscribe_all"}"#).action == .unsubscribe)
        #expect(try self.message(#"{"action": "auth"}"#).action.requiresAuthentication == false)
        #expect(try self.message(#"{"action": "get_broker_info"}"#).action.requiresAuthentication)
    }

    @Test("decode errors carry the reference's codes")
    func decodeErrors() {
        #expect(ClientMessage.decode(ByteBuffer(string: "{")).failure == .invalidJSON)
        #expect(ClientMessage.decode(ByteBuffer(string: "3.5")).failure?.message == "'float' object has no attribute 'get'")
        #expect(ClientMessage.decode(ByteBuffer(string: #"{"action": null}"#)).failure?.message == "Invalid action: None")
        #expect(ClientMessage.decode(ByteBuffer(string: #"{"action": ["x"]}"#)).failure?.message == "Invalid action: ['x']")
    }

    @Test("subscribe: defaults, single-symbol form, skipped entries, depth echo")
    func subscribe() throws {
        let defaults = try SubscribeRequest(self.message(#"{"action": "subscribe", "symbol": "TCS", "exchange": "NSE"}"#))
        #expect(defaults.mode == .quote)
        #expect(defaults.depthValue == 5)
        #expect(defaults.depthLevel == 5)
        #expect(defaults.instruments == [Instrument(exchange: "NSE", symbol: "TCS")])
        #expect(defaults.requestID == nil)
        let array = try SubscribeRequest(
            self.message(
                #"{"action": "subscribe", "symbols": [{"symbol": "A", "exchange": "NSE", "mode": 3}, {"symbol": "", "exchange": "NSE"}], "symbol": "B", "exchange": "BSE", "mode": " depth ", "depth": "20", "request_id": null}"#
            )
        )
        #expect(array.instruments == [Instrument(exchange: "NSE", symbol: "A")], "per-entry modes are ignored, empty symbols skipped")
        #expect(array.mode == .depth)
        #expect(array.depthValue == "20")
        #expect(array.depthLevel == 5)
        #expect(array.requestID == nil)
    }

    @Test("unsubscribe: per-entry mode defaults to Quote, a top-level mode is ignored in the array form")
    func unsubscribe() throws {
        let request = try UnsubscribeRequest(
            self.message(
                #"{"action": "unsubscribe", "mode": 1, "symbols": [{"symbol": "A", "exchange": "NSE"}, {"symbol": "B", "exchange": "NSE", "mode": "LTP"}]}"#
            )
        )
        #expect(
            request.target
                == .entries([
                    .instrument(Instrument(exchange: "NSE", symbol: "A"), .quote), .instrument(Instrument(exchange: "NSE", symbol: "B"), .ltp),
                ])
        )
        let single = try UnsubscribeRequest(self.message(#"{"action": "unsubscribe", "symbol": "A", "exchange": "NSE", "mode": 3}"#))
        #expect(single.target == .entries([.instrument(Instrument(exchange: "NSE", symbol: "A"), .depth)]))
        let all = try UnsubscribeRequest(
            self.message(#"{"action": "unsubscribe", "type": "unsubscribe_all", "symbols": [{"symbol": "A", "exchange": "NSE"}]}"#)
        )
        #expect(all.target == .all)
    }

    @Test("authenticate: api_key wins, apikey is the fallback, non-strings are refused")
    func authenticate() throws {
        #expect(AuthenticateRequest.apiKey(from: try self.message(#"{"action": "auth", "api_key": "k1", "apikey": "k2"}"#)) == .success("k1"))
        #expect(AuthenticateRequest.apiKey(from: try self.message(#"{"action": "auth", "api_key": 0, "apikey": "k2"}"#)) == .success("k2"))
        #expect(AuthenticateRequest.apiKey(from: try self.message(#"{"action": "auth"}"#)) == .failure(.apiKeyRequired))
        #expect(
            AuthenticateRequest.apiKey(from: try self.message(#"{"action": "auth", "api_key": ["k"]}"#)).failure?.message
                == "'list' object has no attribute 'encode'"
        )
    }

    @Test("acks are shaped like the reference's")
    func acks() {
        let all = ServerMessage.subscribeAck(
            results: [.failure(Instrument(exchange: "NSE", symbol: "X"), message: "nope")],
            broker: "b",
            requestID: nil
        )
        #expect(all.objectValue?["status"] == "partial", "an all-failed subscribe is partial, never error")
        let none = ServerMessage.unsubscribeAck(results: [.failure(symbol: .null, exchange: "NSE", message: "m")], broker: "b", requestID: nil)
        #expect(none.objectValue?["status"] == "error")
        #expect(ServerMessage.error(.notAuthenticated).objectValue?["type"] == nil, "error frames have no type")
    }
}

extension Result {
    fileprivate var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
