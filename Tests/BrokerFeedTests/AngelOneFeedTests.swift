import FakeBrokers
import LocalIPC
import MarketData
import Testing
import WireJSON

extension BrokerFeedSuites {
    /// The agent streaming from Angel One through a fake SmartAPI WebSocket 2.0 server that
    /// speaks the real protocol.
    @Suite("Angel One end to end")
    struct AngelOneFeedTests {
        /// A slice of SmartAPI's `OpenAPIScripMaster.json`, as Angel One publishes it.
        static let scripMaster = #"""
            [{"token":"2885","symbol":"RELIANCE-EQ","name":"RELIANCE","expiry":"","strike":"-1.000000","lotsize":"1","instrumenttype":"","exch_seg":"NSE","tick_size":"10.000000"},
             {"token":"1594","symbol":"INFY-EQ","name":"INFY","expiry":"","strike":"-1.000000","lotsize":"1","instrumenttype":"","exch_seg":"NSE","tick_size":"5.000000"},
             {"token":"3045","symbol":"SBIN-EQ","name":"SBIN","expiry":"","strike":"-1.000000","lotsize":"1","instrumenttype":"","exch_seg":"NSE","tick_size":"5.000000"},
             {"token":"99926000","symbol":"Nifty 50","name":"NIFTY","expiry":"","strike":"0.000000","lotsize":"1","instrumenttype":"AMXIDX","exch_seg":"NSE","tick_size":"0.000000"},
             {"token":"35001","symbol":"NIFTY26DEC2425000CE","name":"NIFTY","expiry":"26DEC2024","strike":"2500000.000000","lotsize":"75","instrumenttype":"OPTIDX","exch_seg":"NFO","tick_size":"5.000000"}]
            """#

        /// RELIANCE with the spec's §2.5 values and a twenty-level book.
        static let reliance: AngelMarket = {
            var market = AngelMarket(exchangeType: 1, token: "2885", lastPrice: 250_050)
            market.sequence = 123_456
            market.exchangeTimestamp = 1_700_000_000_000
            market.lastQuantity = 10
            market.averagePrice = 249_875
            market.volume = 1_234_567
            market.totalBuyQuantity = 50_000
            market.totalSellQuantity = 60_000
            market.open = 248_000
            market.high = 251_000
            market.low = 247_500
            market.close = 249_000
            for level in Int64(0)..<20 {
                market.bids20.append(AngelMarket.Level(quantity: 10 * (level + 1), price: 250_000 - 5 * level, orders: Int16(level + 1)))
                market.asks20.append(AngelMarket.Level(quantity: 20 * (level + 1), price: 250_100 + 5 * level, orders: Int16(level + 2)))
            }
            return market
        }()

        static let infy: AngelMarket = {
            var market = AngelMarket(exchangeType: 1, token: "1594", lastPrice: 150_025)
            market.exchangeTimestamp = 1_700_000_003_000
            return market
        }()

        /// SBIN with a SnapQuote's extra fields: last trade time, circuits and a five-level book.
        static let sbin: AngelMarket = {
            var market = AngelMarket(exchangeType: 1, token: "3045", lastPrice: 80_010)
            market.exchangeTimestamp = 1_700_000_001_000
            market.lastQuantity = 25
            market.averagePrice = 79_950
            market.volume = 900_000
            market.totalBuyQuantity = 12_000
            market.totalSellQuantity = 15_000
            market.open = 79_500
            market.high = 80_500
            market.low = 79_000
            market.close = 80_000
            market.lastTradeTime = 1_700_000_000_500
            market.upperCircuit = 88_000
            market.lowerCircuit = 72_000
            market.high52Week = 91_200
            market.low52Week = 54_300
            for level in Int64(0)..<5 {
                market.bids.append(AngelMarket.Level(quantity: 100 * (level + 1), price: 80_000 - 5 * level, orders: Int16(level + 1)))
                market.asks.append(AngelMarket.Level(quantity: 200 * (level + 1), price: 80_020 + 5 * level, orders: Int16(level + 2)))
            }
            return market
        }()

        static let nifty: AngelMarket = {
            var market = AngelMarket(exchangeType: 1, token: "99926000", lastPrice: 1_950_055)
            market.exchangeTimestamp = 1_700_000_002_000
            market.open = 1_945_000
            market.high = 1_960_000
            market.low = 1_940_000
            market.close = 1_952_110
            return market
        }()

        /// An NFO option, whose Depth SmartAPI serves five levels deep only.
        static let niftyCall: AngelMarket = {
            var market = AngelMarket(exchangeType: 2, token: "35001", lastPrice: 12_050)
            market.openInterest = 1_500_000
            for level in Int64(0)..<5 {
                market.bids.append(AngelMarket.Level(quantity: 75 * (level + 1), price: 12_000 - 5 * level, orders: 1))
                market.asks.append(AngelMarket.Level(quantity: 75 * (level + 1), price: 12_100 + 5 * level, orders: 1))
            }
            return market
        }()

        static let markets = [reliance, infy, sbin, nifty, niftyCall]

        /// Settings as a user writes them in `[brokers.angelone]`, with short delays for tests.
        static func settings(_ angel: FakeAngelOneServer, _ extra: [String: String] = [:]) throws -> [String: String] {
            let directory = temporaryDirectory()
            try writeFile(directory + "/OpenAPIScripMaster.json", Self.scripMaster)
            var settings = [
                "ws_url": angel.url,
                "instruments_file": directory + "/OpenAPIScripMaster.json",
                "api_key": angel.apiKey,
                "client_code": angel.clientCode,
                "jwt_token": angel.jwtToken,
                "feed_token": angel.feedToken,
                "subscribe_batch_ms": "20",
                "reconnect_initial_delay_ms": "50",
                "reconnect_max_delay_ms": "200",
                "reconnect_max_attempts": "5",
            ]
            for (key, value) in extra { settings[key] = value }
            return settings
        }

        /// Runs `body` with a fake SmartAPI server and an agent streaming from it.
        static func withFeed(
            _ extra: [String: String] = [:],
            waitForConnected: Bool = true,
            _ body: (FakeAngelOneServer, BrokerFeedAgent) async throws -> Void
        ) async throws {
            let angel = try await FakeAngelOneServer.start(markets: Self.markets)
            do {
                try await BrokerFeedAgent.with(broker: "angelone", settings: try Self.settings(angel, extra), waitForConnected: waitForConnected) {
                    try await body(angel, $0)
                }
                await angel.shutdown()
            } catch {
                await angel.shutdown()
                throw error
            }
        }

        func subscribe(_ client: TestWebSocketClient, _ symbol: String, _ exchange: String, mode: Int, depth: Int? = nil) throws -> JSONObject {
            let depthField = depth.map { #", "depth": \#($0)"# } ?? ""
            try client.send(
                #"{"action": "subscribe", "symbols": [{"symbol": "\#(symbol)", "exchange": "\#(exchange)"}], "mode": \#(mode)\#(depthField)}"#
            )
            return try #require(try client.receiveReply().objectValue)
        }

        /// The requests connection `index` sent, as `subscribe <mode> [<exchangeType>:<token>]`.
        func requests(_ angel: FakeAngelOneServer, connection index: Int) -> [String] {
            angel.requests.filter { $0.connection == index }.map(\.description)
        }

        @Test("each mode streams SmartAPI's packets, normalised: LTP, Quote (stock and index) and Depth (SnapQuote)")
        func modes() async throws {
            try await Self.withFeed { angel, agent in
                let handshake = try #require(angel.server.snapshot.handshakes.first)
                #expect(handshake.headers["Authorization"] == [angel.jwtToken])
                #expect(handshake.headers["x-api-key"] == [angel.apiKey])
                #expect(handshake.headers["x-client-code"] == [angel.clientCode])
                #expect(handshake.headers["x-feed-token"] == [angel.feedToken])
                #expect(handshake.uri == "/smart-stream")

                let client = try agent.client()
                #expect(try self.subscribe(client, "INFY", "NSE", mode: 1)["status"] == "success")
                #expect(
                    try client.receiveMarketDataText(symbol: "INFY", mode: 1)
                        == #"{"type": "market_data", "symbol": "INFY", "exchange": "NSE", "mode": 1, "data": {"symbol": "INFY", "exchange": "NSE", "mode": 1, "ltp": 1500.25, "ltt": 1700000003000, "timestamp": T}, "broker": "angel"}"#
                )
                #expect(try self.subscribe(client, "RELIANCE", "NSE", mode: 2)["status"] == "success")
                #expect(
                    try client.receiveMarketDataText(symbol: "RELIANCE", mode: 2)
                        == """
                        {"type": "market_data", "symbol": "RELIANCE", "exchange": "NSE", "mode": 2, "data": {"symbol": "RELIANCE", \
                        "exchange": "NSE", "mode": 2, "ltp": 2500.5, "ltt": 1700000000000, "timestamp": T, "open": 2480.0, "high": 2510.0, \
                        "low": 2475.0, "close": 2490.0, "volume": 1234567, "last_quantity": 10, "last_trade_quantity": 10, \
                        "average_price": 2498.75, "avg_trade_price": 2498.75, "total_buy_quantity": 50000, "total_sell_quantity": 60000, \
                        "change": 10.5, "change_percent": 0.42}, "broker": "angel"}
                        """
                )
                #expect(try self.subscribe(client, "NIFTY", "NSE_INDEX", mode: 2)["status"] == "success")
                #expect(
                    try client.receiveMarketDataText(symbol: "NIFTY", mode: 2)
                        == """
                        {"type": "market_data", "symbol": "NIFTY", "exchange": "NSE_INDEX", "mode": 2, "data": {"symbol": "NIFTY", \
                        "exchange": "NSE_INDEX", "mode": 2, "ltp": 19500.55, "ltt": 1700000002000, "timestamp": T, "open": 19450.0, \
                        "high": 19600.0, "low": 19400.0, "close": 19521.1, "volume": 0, "last_quantity": 0, "last_trade_quantity": 0, \
                        "average_price": 0.0, "avg_trade_price": 0.0, "total_buy_quantity": 0, "total_sell_quantity": 0, \
                        "change": -20.55, "change_percent": -0.11}, "broker": "angel"}
                        """
                )
                let depthAck = try self.subscribe(client, "SBIN", "NSE", mode: 3)
                #expect(depthAck["subscriptions"]?.arrayValue?.first?.objectValue?["depth"] == 5)
                #expect(
                    try client.receiveMarketDataText(symbol: "SBIN", mode: 3)
                        == """
                        {"type": "market_data", "symbol": "SBIN", "exchange": "NSE", "mode": 3, "data": {"symbol": "SBIN", \
                        "exchange": "NSE", "mode": 3, "ltp": 800.1, "ltt": 1700000001000, "timestamp": T, "open": 795.0, "high": 805.0, \
                        "low": 790.0, "close": 800.0, "volume": 900000, "last_quantity": 25, "last_trade_quantity": 25, \
                        "average_price": 799.5, "avg_trade_price": 799.5, "total_buy_quantity": 12000, "total_sell_quantity": 15000, \
                        "oi": 0, "upper_circuit": 880.0, "lower_circuit": 720.0, "change": 0.1, "change_percent": 0.01, "depth": {"buy": [\
                        {"price": 800.0, "quantity": 100, "orders": 1}, {"price": 799.95, "quantity": 200, "orders": 2}, \
                        {"price": 799.9, "quantity": 300, "orders": 3}, {"price": 799.85, "quantity": 400, "orders": 4}, \
                        {"price": 799.8, "quantity": 500, "orders": 5}], "sell": [\
                        {"price": 800.2, "quantity": 200, "orders": 2}, {"price": 800.25, "quantity": 400, "orders": 3}, \
                        {"price": 800.3, "quantity": 600, "orders": 4}, {"price": 800.35, "quantity": 800, "orders": 5}, \
                        {"price": 800.4, "quantity": 1000, "orders": 6}]}}, "broker": "angel"}
                        """
                )
                #expect(
                    self.requests(angel, connection: 0) == [
                        "subscribe 1 [1:1594]", "subscribe 2 [1:2885]", "subscribe 2 [1:99926000]", "subscribe 3 [1:3045]",
                    ]
                )
                #expect(angel.requests.allSatisfy { $0.correlationID.count == 10 }, "SmartAPI documents 10-character correlation IDs")
                #expect(angel.unparsedMessages.isEmpty)
            }
        }

        @Test("Depth 20 on NSE cash streams SmartAPI's Depth-20 mode; elsewhere it falls back to five levels and the ack says so")
        func depthLevels() async throws {
            try await Self.withFeed { angel, agent in
                let client = try agent.client()
                let twenty = try self.subscribe(client, "RELIANCE", "NSE", mode: 3, depth: 20)
                #expect(twenty["subscriptions"]?.arrayValue?.first?.objectValue?["depth"] == 20)
                let book = try client.receiveMarketData(symbol: "RELIANCE", mode: 3)
                let data = try #require(book["data"]?.objectValue)
                #expect(data["ltp"] == nil, "Depth-20 packets carry the book only")
                let buy = data["depth"]?.objectValue?["buy"]?.arrayValue ?? []
                let sell = data["depth"]?.objectValue?["sell"]?.arrayValue ?? []
                #expect(buy.count == 20 && sell.count == 20)
                #expect(buy.first == ["price": 2500.0, "quantity": 10, "orders": 1])
                #expect(buy.last == ["price": 2499.05, "quantity": 200, "orders": 20])
                #expect(sell.last == ["price": 2501.95, "quantity": 400, "orders": 21])

                let option = try self.subscribe(client, "NIFTY26DEC2425000CE", "NFO", mode: 3, depth: 20)
                #expect(option["subscriptions"]?.arrayValue?.first?.objectValue?["depth"] == 5, "Depth-20 is NSE cash only")
                let optionBook = try client.receiveMarketData(symbol: "NIFTY26DEC2425000CE", mode: 3)
                #expect(optionBook["data"]?.objectValue?["depth"]?.objectValue?["buy"]?.arrayValue?.count == 5)
                #expect(optionBook["data"]?.objectValue?["oi"] == 1_500_000)
                #expect(self.requests(angel, connection: 0) == ["subscribe 4 [1:2885]", "subscribe 3 [2:35001]"])
            }
        }
    }
}

extension FakeAngelOneServer: FakeFeedServer {
    var feedServer: FakeBrokerServer { self.server }

    var credentials: [String: String] {
        ["api_key": self.apiKey, "client_code": self.clientCode, "jwt_token": self.jwtToken, "feed_token": self.feedToken]
    }

    func settings(_ extra: [String: String]) throws -> [String: String] {
        try BrokerFeedSuites.AngelOneFeedTests.settings(self, extra)
    }

    /// As `subscribe <mode> [<exchangeType>:<token>]`.
    func requestLog(connection index: Int) -> [String] {
        self.requests.filter { $0.connection == index }.map(\.description)
    }

    var keepalives: Int { self.pings }
    var unparsedRequests: [String] { self.unparsedMessages }
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
    static let angelOne = FeedBroker(
        name: "angelone",
        clientName: "angel",
        start: { try await FakeAngelOneServer.start(markets: BrokerFeedSuites.AngelOneFeedTests.markets) },
        unknownSymbol: ("NOSUCH", "NSE", FeedSubscription("INFY", "NSE", mode: 1), ["subscribe 1 [1:1594]"]),
        replay: (
            [FeedSubscription("SBIN", "NSE", mode: 3), FeedSubscription("INFY", "NSE", mode: 1)],
            ["subscribe 3 [1:3045]", "subscribe 1 [1:1594]"]
        ),
        stall: (FeedSubscription("RELIANCE", "NSE", mode: 2), ["subscribe 2 [1:2885]"]),
        // The client's text pings every 0.1 s, each answered with a pong.
        quietSettings: ["stall_timeout_s": "0.6", "heartbeat_interval_s": "0.1"],
        refusedCredential: (
            ["feed_token": "stale-feed-token"],
            ["HTTP 401", "Invalid Header - Invalid Feed Token"],
            ["HTTP 401", "Invalid Feed Token"]
        ),
        missingCredentials: (["jwt_token", "feed_token"], "angelone credentials are missing jwt_token, feed_token"),
        modeChange: [
            "subscribe 1 [1:3045]", "unsubscribe 1 [1:3045]", "subscribe 2 [1:3045]",
            "unsubscribe 2 [1:3045]", "subscribe 1 [1:3045]", "unsubscribe 1 [1:3045]",
        ]
    )
}
