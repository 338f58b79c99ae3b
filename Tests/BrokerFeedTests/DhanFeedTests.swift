import FakeBrokers
import LocalIPC
import MarketData
import Testing
import WireJSON

extension BrokerFeedSuites {
    /// The agent streaming from Dhan through a fake Live Market Feed v2 (both its 5-level feed
    /// and its 20-level depth socket) that speaks the real protocol.
    @Suite("Dhan end to end")
    struct DhanFeedTests {
        /// A slice of Dhan's `api-scrip-master.csv`, as Dhan publishes it.
        static let scripMaster = """
            SEM_EXM_EXCH_ID,SEM_SEGMENT,SEM_SMST_SECURITY_ID,SEM_INSTRUMENT_NAME,SEM_EXPIRY_CODE,SEM_TRADING_SYMBOL,SEM_LOT_UNITS,SEM_CUSTOM_SYMBOL,SEM_EXPIRY_DATE,SEM_STRIKE_PRICE,SEM_OPTION_TYPE,SEM_TICK_SIZE,SEM_EXPIRY_FLAG,SEM_EXCH_INSTRUMENT_TYPE,SEM_SERIES,SM_SYMBOL_NAME
            NSE,E,2885,EQUITY,,RELIANCE,1.0,Reliance Industries,,-0.01000,XX,10.0000,NA,ES,EQ,RELIANCE INDUSTRIES LTD
            NSE,E,1594,EQUITY,,INFY,1.0,Infosys,,-0.01000,XX,5.0000,NA,ES,EQ,INFOSYS LIMITED
            NSE,E,3045,EQUITY,,SBIN,1.0,State Bank of India,,-0.01000,XX,5.0000,NA,ES,EQ,STATE BANK OF INDIA
            NSE,I,13,INDEX,,NIFTY,1.0,Nifty 50,,-0.01000,XX,0.0000,NA,INDEX,NA,NIFTY
            BSE,E,500325,EQUITY,,RELIANCE,1.0,Reliance Industries,,-0.01000,XX,5.0000,NA,ES,A,RELIANCE INDUSTRIES LTD

            """

        /// RELIANCE on NSE with the spec's §3.5 values.
        static let reliance: DhanMarket = {
            var market = DhanMarket(segment: 1, securityID: 2885, lastPrice: 2500.5)
            market.lastQuantity = 10
            market.lastTradeTime = 1_700_000_000
            market.averagePrice = 2498.75
            market.volume = 1_234_567
            market.totalSellQuantity = 60_000
            market.totalBuyQuantity = 50_000
            market.open = 2480
            market.close = 2490
            market.high = 2510
            market.low = 2475
            market.previousClose = 2488.5
            return market
        }()

        /// INFY with a twenty-level book for the depth socket (quarter-rupee steps: exact).
        static let infy: DhanMarket = {
            var market = DhanMarket(segment: 1, securityID: 1594, lastPrice: 1500.25)
            market.lastTradeTime = 1_700_000_003
            for index in 0..<5 {
                let step = Float(index) * 0.25
                market.rows.append(
                    DhanMarket.Row(bidQuantity: 10, askQuantity: 20, bidOrders: 1, askOrders: 1, bidPrice: 1500 - step, askPrice: 1500.5 + step)
                )
            }
            for level in 0..<20 {
                let step = Double(level) * 0.25
                let count = UInt32(level + 1)
                market.bids20.append(DhanMarket.Level(price: 1500 - step, quantity: 10 * count, orders: count))
                market.asks20.append(DhanMarket.Level(price: 1500.5 + step, quantity: 20 * count, orders: count + 1))
            }
            return market
        }()

        /// SBIN with a Full packet's five-level book.
        static let sbin: DhanMarket = {
            var market = DhanMarket(segment: 1, securityID: 3045, lastPrice: 800.25)
            market.lastQuantity = 25
            market.lastTradeTime = 1_700_000_001
            market.averagePrice = 799.5
            market.volume = 900_000
            market.totalSellQuantity = 15_000
            market.totalBuyQuantity = 12_000
            market.open = 795
            market.close = 800
            market.high = 805
            market.low = 790
            for index in 0..<5 {
                let step = Float(index) * 0.25
                market.rows.append(
                    DhanMarket.Row(
                        bidQuantity: UInt32(100 * (index + 1)),
                        askQuantity: UInt32(200 * (index + 1)),
                        bidOrders: UInt16(index + 1),
                        askOrders: UInt16(index + 2),
                        bidPrice: 800 - step,
                        askPrice: 800.5 + step
                    )
                )
            }
            return market
        }()

        /// NIFTY 50 on IDX_I (segment 0).
        static let nifty: DhanMarket = {
            var market = DhanMarket(segment: 0, securityID: 13, lastPrice: 19500.25)
            market.lastTradeTime = 1_700_000_002
            return market
        }()

        /// RELIANCE on BSE, where Dhan serves no 20-level depth.
        static let relianceBSE: DhanMarket = {
            var market = DhanMarket(segment: 4, securityID: 500_325, lastPrice: 2501)
            market.rows = (0..<5).map { _ in
                DhanMarket.Row(bidQuantity: 5, askQuantity: 5, bidOrders: 1, askOrders: 1, bidPrice: 2500.75, askPrice: 2501.25)
            }
            return market
        }()

        static let markets = [reliance, infy, sbin, nifty, relianceBSE]

        /// Settings as a user writes them in `[brokers.dhan]`, with short delays for tests.
        static func settings(_ dhan: FakeDhanServer, _ extra: [String: String] = [:]) throws -> [String: String] {
            let directory = temporaryDirectory()
            try writeFile(directory + "/api-scrip-master.csv", Self.scripMaster)
            var settings = [
                "ws_url": dhan.url,
                "depth_ws_url": dhan.depthURL,
                "instruments_file": directory + "/api-scrip-master.csv",
                "client_id": dhan.clientID,
                "access_token": dhan.accessToken,
                "subscribe_batch_ms": "20",
                "reconnect_initial_delay_ms": "50",
                "reconnect_max_delay_ms": "200",
                "reconnect_max_attempts": "5",
            ]
            for (key, value) in extra { settings[key] = value }
            return settings
        }

        /// Runs `body` with a fake Dhan server and an agent streaming from it.
        static func withFeed(
            _ extra: [String: String] = [:],
            waitForConnected: Bool = true,
            _ body: (FakeDhanServer, BrokerFeedAgent) async throws -> Void
        ) async throws {
            let dhan = try await FakeDhanServer.start(markets: Self.markets)
            do {
                try await BrokerFeedAgent.with(broker: "dhan", settings: try Self.settings(dhan, extra), waitForConnected: waitForConnected) {
                    try await body(dhan, $0)
                }
                await dhan.shutdown()
            } catch {
                await dhan.shutdown()
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

        /// The requests connection `index` of `socket` sent, as `<RequestCode> [<segment>:<id>]`.
        func requests(_ dhan: FakeDhanServer, _ socket: FakeDhanServer.Socket = .feed, connection index: Int = 0) -> [String] {
            dhan.requests.filter { $0.socket == socket && $0.connection == index }.map(\.description)
        }

        @Test("each mode streams Dhan's packets, normalised: Ticker (stock and index), Quote and Full")
        func modes() async throws {
            try await Self.withFeed { dhan, agent in
                let query = try #require(dhan.feed.snapshot.handshakes.first).queryItems
                #expect(query == ["version": "2", "token": dhan.accessToken, "clientId": dhan.clientID, "authType": "2"])

                let client = try agent.client()
                #expect(try self.subscribe(client, "INFY", "NSE", mode: 1)["status"] == "success")
                #expect(
                    try client.receiveMarketDataText(symbol: "INFY", mode: 1)
                        == #"{"type": "market_data", "symbol": "INFY", "exchange": "NSE", "mode": 1, "data": {"symbol": "INFY", "exchange": "NSE", "mode": 1, "ltp": 1500.25, "ltt": 1700000003, "timestamp": T}, "broker": "dhan"}"#
                )
                #expect(try self.subscribe(client, "NIFTY", "NSE_INDEX", mode: 1)["status"] == "success")
                #expect(
                    try client.receiveMarketDataText(symbol: "NIFTY", mode: 1)
                        == #"{"type": "market_data", "symbol": "NIFTY", "exchange": "NSE_INDEX", "mode": 1, "data": {"symbol": "NIFTY", "exchange": "NSE_INDEX", "mode": 1, "ltp": 19500.25, "ltt": 1700000002, "timestamp": T}, "broker": "dhan"}"#
                )
                #expect(try self.subscribe(client, "RELIANCE", "NSE", mode: 2)["status"] == "success")
                #expect(
                    try client.receiveMarketDataText(symbol: "RELIANCE", mode: 2)
                        == """
                        {"type": "market_data", "symbol": "RELIANCE", "exchange": "NSE", "mode": 2, "data": {"symbol": "RELIANCE", \
                        "exchange": "NSE", "mode": 2, "ltp": 2500.5, "ltt": 1700000000, "timestamp": T, "open": 2480.0, "high": 2510.0, \
                        "low": 2475.0, "close": 2490.0, "volume": 1234567, "last_quantity": 10, "last_trade_quantity": 10, \
                        "average_price": 2498.75, "avg_trade_price": 2498.75, "total_buy_quantity": 50000, "total_sell_quantity": 60000, \
                        "change": 10.5, "change_percent": 0.42}, "broker": "dhan"}
                        """
                )
                let depthAck = try self.subscribe(client, "SBIN", "NSE", mode: 3)
                #expect(depthAck["subscriptions"]?.arrayValue?.first?.objectValue?["depth"] == 5)
                #expect(
                    try client.receiveMarketDataText(symbol: "SBIN", mode: 3)
                        == """
                        {"type": "market_data", "symbol": "SBIN", "exchange": "NSE", "mode": 3, "data": {"symbol": "SBIN", \
                        "exchange": "NSE", "mode": 3, "ltp": 800.25, "ltt": 1700000001, "timestamp": T, "open": 795.0, "high": 805.0, \
                        "low": 790.0, "close": 800.0, "volume": 900000, "last_quantity": 25, "last_trade_quantity": 25, \
                        "average_price": 799.5, "avg_trade_price": 799.5, "total_buy_quantity": 12000, "total_sell_quantity": 15000, \
                        "oi": 0, "change": 0.25, "change_percent": 0.03, "depth": {"buy": [\
                        {"price": 800.0, "quantity": 100, "orders": 1}, {"price": 799.75, "quantity": 200, "orders": 2}, \
                        {"price": 799.5, "quantity": 300, "orders": 3}, {"price": 799.25, "quantity": 400, "orders": 4}, \
                        {"price": 799.0, "quantity": 500, "orders": 5}], "sell": [\
                        {"price": 800.5, "quantity": 200, "orders": 2}, {"price": 800.75, "quantity": 400, "orders": 3}, \
                        {"price": 801.0, "quantity": 600, "orders": 4}, {"price": 801.25, "quantity": 800, "orders": 5}, \
                        {"price": 801.5, "quantity": 1000, "orders": 6}]}}, "broker": "dhan"}
                        """
                )
                #expect(self.requests(dhan) == ["15 [NSE_EQ:1594]", "15 [IDX_I:13]", "17 [NSE_EQ:2885]", "21 [NSE_EQ:3045]"])
                #expect(dhan.depth.snapshot.handshakes.isEmpty, "the 20-level socket opens on the first 20-level request")
                #expect(dhan.invalidMessages.isEmpty)
            }
        }

        @Test("Depth 20 on NSE streams from the 20-level socket (book only); on BSE it falls back to the Full packet's five levels")
        func twentyLevelDepth() async throws {
            try await Self.withFeed { dhan, agent in
                let client = try agent.client()
                let twenty = try self.subscribe(client, "INFY", "NSE", mode: 3, depth: 20)
                #expect(twenty["subscriptions"]?.arrayValue?.first?.objectValue?["depth"] == 20)
                let book = try client.receiveMarketData(symbol: "INFY", mode: 3)
                let data = try #require(book["data"]?.objectValue)
                #expect(data["ltp"] == nil, "the 20-level socket sends the book only")
                let buy = data["depth"]?.objectValue?["buy"]?.arrayValue ?? []
                let sell = data["depth"]?.objectValue?["sell"]?.arrayValue ?? []
                #expect(buy.count == 20 && sell.count == 20)
                #expect(buy.first == ["price": 1500.0, "quantity": 10, "orders": 1])
                #expect(buy.last == ["price": 1495.25, "quantity": 200, "orders": 20])
                #expect(sell.last == ["price": 1505.25, "quantity": 400, "orders": 21])
                let depthHandshake = try #require(dhan.depth.snapshot.handshakes.first)
                #expect(depthHandshake.uri.hasPrefix("/twentydepth?"))
                #expect(depthHandshake.queryItems == ["token": dhan.accessToken, "clientId": dhan.clientID, "authType": "2"])
                #expect(self.requests(dhan, .depth) == ["23 [NSE_EQ:1594]"])

                let bse = try self.subscribe(client, "RELIANCE", "BSE", mode: 3, depth: 20)
                #expect(bse["subscriptions"]?.arrayValue?.first?.objectValue?["depth"] == 5, "Dhan serves 20 levels on NSE only")
                let bseBook = try client.receiveMarketData(symbol: "RELIANCE", mode: 3)
                #expect(bseBook["data"]?.objectValue?["depth"]?.objectValue?["buy"]?.arrayValue?.count == 5)
                #expect(bseBook["data"]?.objectValue?["ltp"] == 2501.0)
                #expect(self.requests(dhan) == ["21 [BSE_EQ:500325]"])
                #expect(try await agent.feedState() == .connected)
            }
        }

        @Test("unsubscribes reach Dhan (code + 1, and 25 on the depth socket); moving between the sockets leaves one before joining the other")
        func unsubscribeAndModeChange() async throws {
            try await Self.withFeed { dhan, agent in
                let client = try agent.client()
                _ = try self.subscribe(client, "INFY", "NSE", mode: 2)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 2)
                _ = try self.subscribe(client, "INFY", "NSE", mode: 3, depth: 20)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 3)
                #expect(dhan.subscriptions(.feed, onConnection: 0).isEmpty)
                #expect(dhan.subscriptions(.depth, onConnection: 0) == ["NSE_EQ:1594@23"])

                try client.send(#"{"action": "unsubscribe", "symbols": [{"symbol": "INFY", "exchange": "NSE", "mode": 3}]}"#)
                _ = try client.receiveReply()
                try await dhan.feed.wait(for: "the move back to the 5-level feed") { _ in dhan.requests.count >= 5 }
                #expect(dhan.subscriptions(.feed, onConnection: 0) == ["NSE_EQ:1594@17"])
                #expect(dhan.subscriptions(.depth, onConnection: 0).isEmpty)

                try client.send(#"{"action": "unsubscribe", "symbols": [{"symbol": "INFY", "exchange": "NSE", "mode": 2}]}"#)
                _ = try client.receiveReply()
                try await dhan.feed.wait(for: "the unsubscribe") { _ in dhan.requests.count >= 6 }
                #expect(self.requests(dhan) == ["17 [NSE_EQ:1594]", "18 [NSE_EQ:1594]", "17 [NSE_EQ:1594]", "18 [NSE_EQ:1594]"])
                #expect(self.requests(dhan, .depth) == ["23 [NSE_EQ:1594]", "25 [NSE_EQ:1594]"])
                #expect(dhan.subscriptions(.feed, onConnection: 0).isEmpty)
            }
        }

        @Test("after Dhan drops the 20-level socket it reconnects with backoff and re-subscribes on its own; ticks resume")
        func depthSocketDropReconnect() async throws {
            try await Self.withFeed { dhan, agent in
                let client = try agent.client()
                _ = try self.subscribe(client, "RELIANCE", "NSE", mode: 2)
                _ = try self.subscribe(client, "INFY", "NSE", mode: 3, depth: 20)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 3)
                try await dhan.depth.waitForConnections(1)

                dhan.dropConnections(.depth)
                try await dhan.depth.wait(for: "the depth socket's replay") { _ in !self.requests(dhan, .depth, connection: 1).isEmpty }
                #expect(self.requests(dhan, .depth, connection: 1) == ["23 [NSE_EQ:1594]"])
                _ = try client.receiveMarketData(symbol: "INFY", mode: 3)
                _ = try client.receiveMarketData(symbol: "RELIANCE", mode: 2)
                #expect(try await agent.feedState() == .connected, "clients are told the 5-level feed's state")
            }
        }

        @Test(
            "a disconnect packet with code 805 (too many connections) fails the feed at once with Dhan's reason, without retrying, and closes the 20-level socket too"
        )
        func tooManyConnections() async throws {
            try await Self.withFeed { dhan, agent in
                let client = try agent.client()
                _ = try self.subscribe(client, "INFY", "NSE", mode: 1)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 1)
                _ = try self.subscribe(client, "SBIN", "NSE", mode: 3, depth: 20)
                try await dhan.feed.waitForConnections(1)
                try await dhan.depth.waitForConnections(1)

                dhan.sendDisconnect(reason: 805)
                let failed = try client.receiveBrokerStatus { $0["status"] == "failed" }
                let message = failed["message"]?.stringValue ?? ""
                #expect(message.contains("too many connections for this client (code 805)"), "message: \(message)")
                #expect(!message.contains("gave up"), "805 is not retried")
                #expect(try client.receiveClose().closeCode == 1012)
                #expect(dhan.feed.snapshot.handshakes.count == 1)
                try await dhan.depth.wait(for: "the 20-level socket to close with the failed feed") { $0.openConnections == 0 }
            }
        }

        @Test("when the 20-level socket fails for good its instruments stream five levels deep from the 5-level feed, which stays connected")
        func depthSocketFallback() async throws {
            try await Self.withFeed(["reconnect_max_attempts": "1"]) { dhan, agent in
                let client = try agent.client()
                _ = try self.subscribe(client, "INFY", "NSE", mode: 3, depth: 20)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 3)
                try await dhan.depth.waitForConnections(1)

                dhan.refuseConnections(true, .depth)
                dhan.dropConnections(.depth)
                try await dhan.feed.wait(for: "the fallback subscription") { _ in !self.requests(dhan).isEmpty }
                #expect(self.requests(dhan) == ["21 [NSE_EQ:1594]"])
                while true {
                    let data = try client.receiveMarketData(symbol: "INFY", mode: 3)["data"]?.objectValue
                    guard data?["ltp"] != nil else { continue }
                    #expect(data?["depth"]?.objectValue?["buy"]?.arrayValue?.count == 5)
                    break
                }
                #expect(try await agent.feedState() == .connected)
            }
        }

        @Test("the 5-level feed pools connections; an instrument on the 20-level socket keeps its place there and comes back to it")
        func pool() async throws {
            try await Self.withFeed(["max_connections": "2", "max_instruments_per_connection": "1"]) { dhan, agent in
                let client = try agent.client()
                _ = try self.subscribe(client, "INFY", "NSE", mode: 2)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 2)
                _ = try self.subscribe(client, "INFY", "NSE", mode: 3, depth: 20)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 3)
                #expect(try self.subscribe(client, "RELIANCE", "NSE", mode: 2)["status"] == "success")
                _ = try client.receiveMarketData(symbol: "RELIANCE", mode: 2)
                let refused = try self.subscribe(client, "SBIN", "NSE", mode: 1)["subscriptions"]?.arrayValue?.first?.objectValue
                #expect(
                    refused?["message"]
                        == "Maximum capacity reached: 2 connections \u{00D7} 1 symbols = 2 symbols. Currently subscribed to 2 symbols."
                )
                #expect(self.requests(dhan, connection: 0) == ["17 [NSE_EQ:1594]", "18 [NSE_EQ:1594]"])
                #expect(self.requests(dhan, connection: 1) == ["17 [NSE_EQ:2885]"])

                // Down to Quote: INFY leaves the 20-level socket for its own place on the first connection.
                try client.send(#"{"action": "unsubscribe", "symbols": [{"symbol": "INFY", "exchange": "NSE", "mode": 3}]}"#)
                _ = try client.receiveReply()
                try await dhan.feed.wait(for: "the move back") { _ in
                    self.requests(dhan, connection: 0).count >= 3 && self.requests(dhan, .depth).count >= 2
                }
                #expect(self.requests(dhan, connection: 0) == ["17 [NSE_EQ:1594]", "18 [NSE_EQ:1594]", "17 [NSE_EQ:1594]"])
                #expect(self.requests(dhan, .depth) == ["23 [NSE_EQ:1594]", "25 [NSE_EQ:1594]"])
                #expect(self.requests(dhan, connection: 1) == ["17 [NSE_EQ:2885]"])
                #expect(dhan.feed.snapshot.handshakes.count == 2)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 2)
            }
        }
    }
}

extension FakeDhanServer: FakeFeedServer {
    var feedServer: FakeBrokerServer { self.feed }
    var credentials: [String: String] { ["client_id": self.clientID, "access_token": self.accessToken] }

    func settings(_ extra: [String: String]) throws -> [String: String] {
        try BrokerFeedSuites.DhanFeedTests.settings(self, extra)
    }

    /// The 5-level feed's requests, as `<RequestCode> [<segment>:<id>]`.
    func requestLog(connection index: Int) -> [String] {
        self.requests.filter { $0.socket == .feed && $0.connection == index }.map(\.description)
    }

    /// The client ID in OpenAlgo's `id:::key` form, which the feed cuts at the `:::`.
    func goodCredentials(_ fields: [String]) -> JSONObject {
        ["access_token": .string(self.accessToken), "client_id": .string("\(self.clientID):::app-key")]
    }

    var unparsedRequests: [String] { self.invalidMessages }
    func subscriptionCount(connection index: Int) -> Int { self.subscriptions(.feed, onConnection: index).count }
    func drop() { self.dropConnections(.feed) }
    func silence() { self.goSilent(.feed) }
    func refuse(_ refuse: Bool) { self.refuseConnections(refuse, .feed) }
    func truncatedFrame() { self.sendTruncatedFrame() }
    func garbageFrame() { self.sendGarbageFrame() }
    /// The fake streams without pause (Dhan's pings to the client are counted as signs of life).
    func pause(_ paused: Bool) -> Bool { false }
}

extension FeedBroker {
    static let dhan = FeedBroker(
        name: "dhan",
        clientName: "dhan",
        start: { try await FakeDhanServer.start(markets: BrokerFeedSuites.DhanFeedTests.markets) },
        unknownSymbol: ("NOSUCH", "NFO", FeedSubscription("SBIN", "NSE", mode: 2), ["17 [NSE_EQ:3045]"]),
        replay: ([FeedSubscription("RELIANCE", "NSE", mode: 2), FeedSubscription("INFY", "NSE", mode: 3, depth: 20)], ["17 [NSE_EQ:2885]"]),
        stall: (FeedSubscription("SBIN", "NSE", mode: 1), ["15 [NSE_EQ:3045]"]),
        quietSettings: [:],
        refusedCredential: (
            ["access_token": "expired-token"],
            ["HTTP 401", "Client ID or user generated access token is invalid or expired."],
            ["HTTP 401", "DH-901"]
        ),
        missingCredentials: (["client_id", "access_token"], "dhan credentials are missing client_id, access_token"),
        modeChange: nil,
        connected: { server in
            let dhan = server as? FakeDhanServer
            #expect(dhan?.feed.snapshot.handshakes.last?.queryItems["clientId"] == dhan?.clientID, "OpenAlgo's id:::key form is cut")
        }
    )
}
