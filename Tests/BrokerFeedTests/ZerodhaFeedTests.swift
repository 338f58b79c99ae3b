import FakeBrokers
import LocalIPC
import MarketData
import Testing
import WireJSON

extension BrokerFeedSuites {
    /// The agent streaming from Zerodha through a fake Kite Ticker that speaks the real protocol.
    @Suite("Zerodha end to end")
    struct ZerodhaFeedTests {
        /// A slice of Kite's `instruments` CSV, as Kite publishes it.
        static let instrumentsCSV = """
            instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,instrument_type,segment,exchange
            738561,2885,RELIANCE,RELIANCE INDUSTRIES,0,,0,0.05,1,EQ,NSE,NSE
            408065,1594,INFY,INFOSYS,0,,0,0.05,1,EQ,NSE,NSE
            779521,3045,SBIN,STATE BANK OF INDIA,0,,0,0.05,1,EQ,NSE,NSE
            256265,1001,NIFTY 50,NIFTY 50,0,,0,0,0,EQ,INDICES,NSE
            2953217,11536,TCS,TATA CONSULTANCY SERVICES,0,,0,0.05,1,EQ,NSE,NSE

            """

        /// RELIANCE with the spec's §1.5 values, a full packet's OI 4321 and a five-level book.
        static let reliance: KiteMarket = {
            var market = KiteMarket(token: 738_561, lastPrice: 250_050)
            market.lastQuantity = 10
            market.averagePrice = 249_875
            market.volume = 1_234_567
            market.totalBuyQuantity = 50_000
            market.totalSellQuantity = 60_000
            market.open = 248_000
            market.high = 251_000
            market.low = 247_500
            market.close = 249_000
            market.lastTradeTime = 1_699_999_999
            market.openInterest = 4321
            market.openInterestDayHigh = 5000
            market.openInterestDayLow = 4000
            market.exchangeTimestamp = 1_700_000_001
            for level in UInt32(0)..<5 {
                market.bids.append(KiteMarket.Level(quantity: 100 * (level + 1), price: 250_000 - 5 * level, orders: UInt16(level + 1)))
                market.asks.append(
                    KiteMarket.Level(quantity: 200 * (level + 1), price: 250_100 + 5 * level, orders: level == 4 ? 11 : UInt16(level + 2))
                )
            }
            return market
        }()

        static let infy = KiteMarket(token: 408_065, lastPrice: 150_025)

        static let sbin: KiteMarket = {
            var market = KiteMarket(token: 779_521, lastPrice: 80_010)
            market.lastQuantity = 25
            market.averagePrice = 79_950
            market.volume = 900_000
            market.totalBuyQuantity = 12_000
            market.totalSellQuantity = 15_000
            market.open = 79_500
            market.high = 80_500
            market.low = 79_000
            market.close = 80_000
            return market
        }()

        static let nifty: KiteMarket = {
            var market = KiteMarket(token: 256_265, lastPrice: 1_950_055)
            market.high = 1_960_000
            market.low = 1_940_000
            market.open = 1_945_000
            market.close = 1_952_110
            market.change = -2055
            return market
        }()

        static let tcs = KiteMarket(token: 2_953_217, lastPrice: 410_040)

        static let markets = [reliance, infy, sbin, nifty, tcs]

        /// Settings as a user writes them in `[brokers.zerodha]`, with short delays for tests.
        static func settings(_ kite: FakeKiteServer, _ extra: [String: String] = [:]) throws -> [String: String] {
            let directory = temporaryDirectory()
            try writeFile(directory + "/instruments.csv", Self.instrumentsCSV)
            var settings = [
                "ws_url": kite.url,
                "instruments_file": directory + "/instruments.csv",
                "api_key": kite.apiKey,
                "access_token": kite.accessToken,
                "subscribe_batch_ms": "20",
                "reconnect_initial_delay_ms": "50",
                "reconnect_max_delay_ms": "200",
                "reconnect_max_attempts": "5",
            ]
            for (key, value) in extra { settings[key] = value }
            return settings
        }

        /// Runs `body` with a fake Kite server and an agent streaming from it.
        static func withFeed(
            _ extra: [String: String] = [:],
            waitForConnected: Bool = true,
            _ body: (FakeKiteServer, BrokerFeedAgent) async throws -> Void
        ) async throws {
            let kite = try await FakeKiteServer.start(markets: Self.markets)
            do {
                try await BrokerFeedAgent.with(broker: "zerodha", settings: try Self.settings(kite, extra), waitForConnected: waitForConnected) {
                    try await body(kite, $0)
                }
                await kite.shutdown()
            } catch {
                await kite.shutdown()
                throw error
            }
        }

        func subscribe(_ client: TestWebSocketClient, _ symbol: String, _ exchange: String, mode: Int) throws -> JSONObject {
            try client.send(#"{"action": "subscribe", "symbols": [{"symbol": "\#(symbol)", "exchange": "\#(exchange)"}], "mode": \#(mode)}"#)
            return try #require(try client.receiveReply().objectValue)
        }

        /// The `(action, mode, tokens)` requests connection `index` sent to the fake Kite server.
        func requests(_ kite: FakeKiteServer, connection index: Int) -> [String] {
            kite.requests.filter { $0.connection == index }.map { "\($0.action)\($0.mode.map { " \($0)" } ?? "") \($0.tokens)" }
        }

        @Test("each mode streams Kite's packets, normalised: LTP, Quote (stock and index) and Depth")
        func modes() async throws {
            try await Self.withFeed { kite, agent in
                #expect(kite.server.snapshot.handshakes.first?.headers["X-Kite-Version"] == ["3"])
                #expect(kite.server.snapshot.handshakes.first?.queryItems["api_key"] == kite.apiKey)
                let client = try agent.client()
                #expect(try self.subscribe(client, "INFY", "NSE", mode: 1)["status"] == "success")
                #expect(
                    try client.receiveMarketDataText(symbol: "INFY", mode: 1)
                        == #"{"type": "market_data", "symbol": "INFY", "exchange": "NSE", "mode": 1, "data": {"symbol": "INFY", "exchange": "NSE", "mode": 1, "ltp": 1500.25, "timestamp": T}, "broker": "zerodha"}"#
                )
                #expect(try self.subscribe(client, "SBIN", "NSE", mode: 2)["status"] == "success")
                #expect(
                    try client.receiveMarketDataText(symbol: "SBIN", mode: 2)
                        == """
                        {"type": "market_data", "symbol": "SBIN", "exchange": "NSE", "mode": 2, "data": {"symbol": "SBIN", "exchange": "NSE", \
                        "mode": 2, "ltp": 800.1, "timestamp": T, "open": 795.0, "high": 805.0, "low": 790.0, "close": 800.0, "volume": 900000, \
                        "last_quantity": 25, "last_trade_quantity": 25, "average_price": 799.5, "avg_trade_price": 799.5, \
                        "total_buy_quantity": 12000, "total_sell_quantity": 15000, "change": 0.1, "change_percent": 0.01}, "broker": "zerodha"}
                        """
                )
                #expect(try self.subscribe(client, "NIFTY", "NSE_INDEX", mode: 2)["status"] == "success")
                #expect(
                    try client.receiveMarketDataText(symbol: "NIFTY", mode: 2)
                        == """
                        {"type": "market_data", "symbol": "NIFTY", "exchange": "NSE_INDEX", "mode": 2, "data": {"symbol": "NIFTY", \
                        "exchange": "NSE_INDEX", "mode": 2, "ltp": 19500.55, "timestamp": T, "open": 19450.0, "high": 19600.0, \
                        "low": 19400.0, "close": 19521.1, "change": -20.55, "change_percent": -0.11}, "broker": "zerodha"}
                        """
                )
                let depthAck = try self.subscribe(client, "RELIANCE", "NSE", mode: 3)
                #expect(depthAck["subscriptions"]?.arrayValue?.first?.objectValue?["depth"] == 5)
                #expect(
                    try client.receiveMarketDataText(symbol: "RELIANCE", mode: 3)
                        == """
                        {"type": "market_data", "symbol": "RELIANCE", "exchange": "NSE", "mode": 3, "data": {"symbol": "RELIANCE", \
                        "exchange": "NSE", "mode": 3, "ltp": 2500.5, "ltt": 1699999999, "timestamp": T, \
                        "open": 2480.0, "high": 2510.0, "low": 2475.0, "close": 2490.0, "volume": 1234567, "last_quantity": 10, \
                        "last_trade_quantity": 10, "average_price": 2498.75, "avg_trade_price": 2498.75, "total_buy_quantity": 50000, \
                        "total_sell_quantity": 60000, "oi": 4321, "change": 10.5, "change_percent": 0.42, "depth": {"buy": [\
                        {"price": 2500.0, "quantity": 100, "orders": 1}, {"price": 2499.95, "quantity": 200, "orders": 2}, \
                        {"price": 2499.9, "quantity": 300, "orders": 3}, {"price": 2499.85, "quantity": 400, "orders": 4}, \
                        {"price": 2499.8, "quantity": 500, "orders": 5}], "sell": [\
                        {"price": 2501.0, "quantity": 200, "orders": 2}, {"price": 2501.05, "quantity": 400, "orders": 3}, \
                        {"price": 2501.1, "quantity": 600, "orders": 4}, {"price": 2501.15, "quantity": 800, "orders": 5}, \
                        {"price": 2501.2, "quantity": 1000, "orders": 11}]}}, "broker": "zerodha"}
                        """
                )
                #expect(
                    self.requests(kite, connection: 0) == [
                        "subscribe [408065]", "mode ltp [408065]", "subscribe [779521]", "mode quote [779521]",
                        "subscribe [256265]", "mode quote [256265]", "subscribe [738561]", "mode full [738561]",
                    ]
                )
            }
        }
    }
}

extension FakeKiteServer: FakeFeedServer {
    var feedServer: FakeBrokerServer { self.server }
    var credentials: [String: String] { ["api_key": self.apiKey, "access_token": self.accessToken] }

    func settings(_ extra: [String: String]) throws -> [String: String] {
        try BrokerFeedSuites.ZerodhaFeedTests.settings(self, extra)
    }

    /// `(action, mode, tokens)`, as `subscribe [408065]` or `mode ltp [408065]`.
    func requestLog(connection index: Int) -> [String] {
        self.requests.filter { $0.connection == index }.map { "\($0.action)\($0.mode.map { " \($0)" } ?? "") \($0.tokens)" }
    }

    var unparsedRequests: [String] { self.unparsedMessages }
    var keepalives: Int { self.heartbeatsSent }
    func subscriptionCount(connection index: Int) -> Int { self.subscriptions(onConnection: index).count }
    func drop() { self.dropConnections() }
    func silence() { self.goSilent() }
    func refuse(_ refuse: Bool) { self.refuseConnections(refuse) }
    func truncatedFrame() { self.sendTruncatedFrame() }
    func garbageFrame() { self.sendGarbageFrame() }

    func pause(_ paused: Bool) -> Bool {
        self.pauseTicks(paused)
        return true
    }
}

extension FeedBroker {
    static let zerodha = FeedBroker(
        name: "zerodha",
        clientName: "zerodha",
        start: { try await FakeKiteServer.start(markets: BrokerFeedSuites.ZerodhaFeedTests.markets) },
        unknownSymbol: ("NOSUCH", "NSE", FeedSubscription("INFY", "NSE", mode: 1), ["subscribe [408065]", "mode ltp [408065]"]),
        replay: (
            [FeedSubscription("RELIANCE", "NSE", mode: 3), FeedSubscription("INFY", "NSE", mode: 1)],
            ["subscribe [738561]", "mode full [738561]", "subscribe [408065]", "mode ltp [408065]"]
        ),
        stall: (FeedSubscription("SBIN", "NSE", mode: 2), ["subscribe [779521]", "mode quote [779521]"]),
        // Kite sends a heartbeat every second.
        quietSettings: ["stall_timeout_s": "0.3"],
        refusedCredential: (
            ["access_token": "expired-token"],
            ["HTTP 403", "Incorrect `api_key` or `access_token`."],
            ["HTTP 403", "TokenException"]
        ),
        missingCredentials: (["api_key", "access_token"], "zerodha credentials are missing api_key, access_token"),
        modeChange: [
            "subscribe [779521]", "mode ltp [779521]", "subscribe [779521]", "mode quote [779521]",
            "subscribe [779521]", "mode ltp [779521]", "unsubscribe [779521]",
        ]
    )
}
