import MarketData
import Testing

@Suite("Topics")
struct TopicTests {
    @Test(
        "EXCHANGE_SYMBOL_MODE, with two-part exchanges and symbols containing _ and :",
        arguments: [
            ("NSE_RELIANCE_QUOTE", "NSE", "RELIANCE", SubscriptionMode.quote),
            ("NFO_NIFTY28APR2425000CE_DEPTH", "NFO", "NIFTY28APR2425000CE", .depth),
            ("NSE_INDEX_NIFTY_LTP", "NSE_INDEX", "NIFTY", .ltp),
            ("BSE_INDEX_SENSEX_quote", "BSE_INDEX", "SENSEX", .quote),
            ("MCX_INDEX_MCXCOMPDEX_LTP", "MCX_INDEX", "MCXCOMPDEX", .ltp),
            ("GLOBAL_INDEX_DJI_LTP", "GLOBAL_INDEX", "DJI", .ltp),
            ("CRYPTO_SOL_INR_LTP", "CRYPTO", "SOL_INR", .ltp),
            ("NSE_TCS:50_DEPTH", "NSE", "TCS:50", .depth),
            ("MCX_CRUDEOIL20MAY24FUT_Ltp", "MCX", "CRUDEOIL20MAY24FUT", .ltp),
        ]
    )
    func parse(topic: String, exchange: String, symbol: String, mode: SubscriptionMode) throws {
        let parsed = try #require(Topic(parsing: topic))
        #expect(parsed.instrument == Instrument(exchange: exchange, symbol: symbol))
        #expect(parsed.mode == mode)
        #expect(parsed.broker == nil)
    }

    @Test("BROKER_EXCHANGE_SYMBOL_MODE, as in the original design")
    func brokerPrefixed() throws {
        let topic = try #require(Topic(parsingBrokerPrefixed: "dhan_NSE_INDEX_NIFTY_50_DEPTH"))
        #expect(topic.broker == "dhan")
        #expect(topic.instrument == Instrument(exchange: "NSE_INDEX", symbol: "NIFTY_50"))
        #expect(topic.mode == .depth)
        #expect(topic.description == "dhan_NSE_INDEX_NIFTY_50_DEPTH")
        let zerodha = try #require(Topic(parsingBrokerPrefixed: "zerodha_NFO_NIFTY24DEC19500CE_LTP"))
        #expect(zerodha.instrument == Instrument(exchange: "NFO", symbol: "NIFTY24DEC19500CE"))
        #expect(Topic(parsingBrokerPrefixed: "NSE_RELIANCE_LTP") == nil)
    }

    @Test("topics the reference skips", arguments: ["NSE_LTP", "RELIANCE", "NSE_RELIANCE_FULL", "NSE_INDEX_LTP", "_RELIANCE_LTP", ""])
    func invalid(topic: String) {
        #expect(Topic(parsing: topic) == nil)
    }

    @Test("formatting round-trips")
    func formatting() throws {
        for text in ["NSE_INDEX_NIFTY_50_DEPTH", "NSE_RELIANCE_LTP", "CRYPTO_SOL_INR_QUOTE"] {
            #expect(try #require(Topic(parsing: text)).description == text)
        }
    }
}

@Suite("Subscription modes")
struct SubscriptionModeTests {
    @Test("integers 1-3 and labels in any case, trimmed")
    func valid() throws {
        #expect(try SubscriptionMode(validating: 1) == .ltp)
        #expect(try SubscriptionMode(validating: 3) == .depth)
        for label in ["ltp", "LTP", " Quote ", "QUOTE", "dEpTh\n"] {
            #expect(SubscriptionMode(label: label) != nil, "\(label)")
        }
        #expect(SubscriptionMode.quote.label == "Quote")
        #expect(SubscriptionMode.depth.topicLabel == "DEPTH")
        #expect(SubscriptionMode.ltp < .depth)
    }

    @Test("the reference's error texts")
    func invalid() {
        #expect(throws: InvalidModeError(message: "Invalid mode 0; expected 1 (LTP), 2 (Quote), or 3 (Depth)")) {
            try SubscriptionMode(validating: 0)
        }
        #expect(throws: InvalidModeError(message: "Invalid mode 259; expected 1 (LTP), 2 (Quote), or 3 (Depth)")) {
            try SubscriptionMode(validating: 259)
        }
        #expect(throws: InvalidModeError(message: "Invalid mode 'full'; expected 'LTP', 'Quote', or 'Depth' (case-insensitive)")) {
            try SubscriptionMode(validatingLabel: "full", repr: "'full'")
        }
    }
}
