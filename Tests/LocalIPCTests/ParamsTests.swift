import LocalIPC
import MarketData
import Testing
import WireJSON

@testable import LocalIPCServer

@Suite("Local request params")
struct ParamsTests {
    @Test("symbols must be a non-empty list of symbol/exchange objects; the error names the entry")
    func symbols() throws {
        let good: JSONObject = ["symbols": [["symbol": "RELIANCE", "exchange": "NSE"], ["symbol": "NIFTY", "exchange": "NSE_INDEX"]]]
        #expect(
            try IPCParams.instruments(good) == [
                Instrument(exchange: "NSE", symbol: "RELIANCE"), Instrument(exchange: "NSE_INDEX", symbol: "NIFTY"),
            ]
        )
        #expect(throws: RPCError.invalidParams(field: "symbols", "\"symbols\" is required: a list of {\"symbol\": ..., \"exchange\": ...} objects."))
        {
            try IPCParams.instruments([:])
        }
        do {
            _ = try IPCParams.instruments(["symbols": [["symbol": "A", "exchange": "NSE"], ["symbol": "B"]]])
            Issue.record("a symbol without exchange was accepted")
        } catch {
            #expect(error.code == -32602 && error.data["field"] == "symbols[1]")
        }
    }

    @Test("modes: labels in any case or 1-3; anything else names the field")
    func modes() throws {
        #expect(try IPCParams.mode(["mode": "depth"]) == .depth)
        #expect(try IPCParams.mode(["mode": 1]) == .ltp)
        #expect(try IPCParams.mode([:]) == nil)
        for bad: JSONValue in [4, 0, "Full", true] {
            #expect(throws: RPCError.self) { try IPCParams.mode(["mode": bad]) }
        }
        #expect(try IPCParams.depth(["depth": 20]) == 20)
        #expect(throws: RPCError.self) { try IPCParams.depth(["depth": 7]) }
    }

    @Test("events, credentials and flags are type-checked")
    func others() throws {
        #expect(try IPCParams.events(["events": ["ws_subscription_update"]]) == [.subscriptionUpdate])
        #expect(throws: RPCError.self) { try IPCParams.events(["events": ["market_data"]]) }
        #expect(try IPCParams.credentials(["credentials": ["access_token": "abc"]]) == ["access_token": "abc"])
        #expect(throws: RPCError.self) { try IPCParams.credentials(["credentials": ["access_token": 5]]) }
        #expect(try IPCParams.bool(["rotate": true], "rotate"))
        #expect(throws: RPCError.self) { try IPCParams.bool(["rotate": "yes"], "rotate") }
    }
}
