import MarketData
import OpenAlgoBusFeed
import Testing

/// Every topic rule of the protocol spec §7, as the reference's `zmq_listener` applies them.
@Suite("ZeroMQ topics")
struct ZeroMQTopicTests {
    static func market(_ exchange: String, _ symbol: String, _ mode: SubscriptionMode) -> ZeroMQTopic {
        .marketData(Instrument(exchange: exchange, symbol: symbol), mode)
    }

    @Test(
        "market-data topics: EXCHANGE_SYMBOL_MODE, two-part index exchanges, symbols with _ and :",
        arguments: [
            ("NSE_RELIANCE_QUOTE", market("NSE", "RELIANCE", .quote)),
            ("NFO_NIFTY28APR2425000CE_DEPTH", market("NFO", "NIFTY28APR2425000CE", .depth)),
            ("MCX_CRUDEOIL20MAY24FUT_LTP", market("MCX", "CRUDEOIL20MAY24FUT", .ltp)),
            ("NSE_INDEX_NIFTY_LTP", market("NSE_INDEX", "NIFTY", .ltp)),
            ("BSE_INDEX_SENSEX_QUOTE", market("BSE_INDEX", "SENSEX", .quote)),
            ("MCX_INDEX_MCXMETLDEX_LTP", market("MCX_INDEX", "MCXMETLDEX", .ltp)),
            ("GLOBAL_INDEX_DJI_LTP", market("GLOBAL_INDEX", "DJI", .ltp)),
            ("NSE_INDEX_NIFTY_NEXT_50_LTP", market("NSE_INDEX", "NIFTY_NEXT_50", .ltp)),
            // Not a two-part exchange in the reference (only mentioned in a comment there).
            ("NSEIX_INDEX_GIFTNIFTY_LTP", market("NSEIX", "INDEX_GIFTNIFTY", .ltp)),
            ("CRYPTO_SOL_INR_LTP", market("CRYPTO", "SOL_INR", .ltp)),
            ("CRYPTO_BTC_USDT_PERP_DEPTH", market("CRYPTO", "BTC_USDT_PERP", .depth)),
            ("NSE_TCS:50_DEPTH", market("NSE", "TCS:50", .depth)),
            ("NSE_SBIN_Quote", market("NSE", "SBIN", .quote)),
            ("NSE_SBIN_ltp", market("NSE", "SBIN", .ltp)),
            ("NSE_SBIN_dEpTh", market("NSE", "SBIN", .depth)),
            ("nse_sbin_LTP", market("nse", "sbin", .ltp)),
        ]
    )
    func marketData(topic: String, expected: ZeroMQTopic) {
        #expect(ZeroMQTopic(topic) == expected)
    }

    @Test(
        "fewer than three parts, or no symbol left, is malformed",
        arguments: ["", "LTP", "NSE_LTP", "RELIANCE_QUOTE", "NSE__LTP", "NSE_INDEX_LTP", "GLOBAL_INDEX__QUOTE"]
    )
    func malformed(topic: String) {
        #expect(ZeroMQTopic(topic) == .malformed)
    }

    @Test("a last part that names no mode is an unknown mode", arguments: ["NSE_SBIN_FULL", "NSE_SBIN_1", "NSE_SBIN_", "NSE_SBIN_LTPX"])
    func unknownMode(topic: String) {
        #expect(ZeroMQTopic(topic) == .unknownMode)
    }

    @Test("CACHE_INVALIDATE prefixes come first, then the _orders suffix, then _positions and _margins")
    func specialTopics() {
        #expect(ZeroMQTopic("CACHE_INVALIDATE_AUTH_rajandran") == .cacheInvalidation)
        #expect(ZeroMQTopic("CACHE_INVALIDATE_ALL_user_orders") == .cacheInvalidation)
        #expect(ZeroMQTopic("CACHE_INVALIDATE") == .cacheInvalidation)
        #expect(ZeroMQTopic("ZERODHA_rajandran_orders") == .orderUpdate)
        #expect(ZeroMQTopic("ANALYZE_raj_andran_orders") == .orderUpdate)
        #expect(ZeroMQTopic("_orders") == .orderUpdate)
        #expect(ZeroMQTopic("DHAN_user_positions") == .accountEvent)
        #expect(ZeroMQTopic("DHAN_user_margins") == .accountEvent)
        #expect(ZeroMQTopic("NSE_ORDERS_LTP") == Self.market("NSE", "ORDERS", .ltp))
        #expect(ZeroMQTopic("NSE_SBIN_ORDERS") == .unknownMode, "the suffix is case-sensitive, as in the reference")
    }
}
