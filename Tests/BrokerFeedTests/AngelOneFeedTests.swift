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

        @Test("an unknown symbol is refused in the ack with the reference's text; the others subscribe")
        func unknownSymbol() async throws {
            try await Self.withFeed { angel, agent in
                let client = try agent.client()
                try client.send(
                    #"{"action": "subscribe", "symbols": [{"symbol": "NOSUCH", "exchange": "NSE"}, {"symbol": "INFY", "exchange": "NSE"}], "mode": 1}"#
                )
                let ack = try client.receiveReply().objectValue
                let entries = ack?["subscriptions"]?.arrayValue?.compactMap(\.objectValue) ?? []
                #expect(entries.first?["status"] == "error")
                #expect(entries.first?["message"] == "Symbol NOSUCH not found for exchange NSE")
                #expect(entries.last?["status"] == "success")
                _ = try client.receiveMarketData(symbol: "INFY", mode: 1)
                #expect(self.requests(angel, connection: 0) == ["subscribe 1 [1:1594]"])
            }
        }

        @Test("unsubscribes reach SmartAPI; a mode change leaves the old mode before joining the new one")
        func unsubscribeAndModeChange() async throws {
            try await Self.withFeed { angel, agent in
                let client = try agent.client()
                _ = try self.subscribe(client, "SBIN", "NSE", mode: 1)
                _ = try client.receiveMarketData(symbol: "SBIN", mode: 1)
                _ = try self.subscribe(client, "SBIN", "NSE", mode: 2)
                _ = try client.receiveMarketData(symbol: "SBIN", mode: 2)
                #expect(angel.subscriptions(onConnection: 0) == ["1:3045@2"])
                try client.send(#"{"action": "unsubscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE", "mode": 2}]}"#)
                _ = try client.receiveReply()
                try await angel.server.wait(for: "the downgrade") { _ in angel.requests.count >= 5 }
                try client.send(#"{"action": "unsubscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE", "mode": 1}]}"#)
                _ = try client.receiveReply()
                try await angel.server.wait(for: "the unsubscribe") { _ in angel.requests.count >= 6 }
                #expect(
                    self.requests(angel, connection: 0) == [
                        "subscribe 1 [1:3045]", "unsubscribe 1 [1:3045]", "subscribe 2 [1:3045]",
                        "unsubscribe 2 [1:3045]", "subscribe 1 [1:3045]", "unsubscribe 1 [1:3045]",
                    ]
                )
                #expect(angel.subscriptions(onConnection: 0).isEmpty)
            }
        }

        @Test("after SmartAPI drops the connection the feed reconnects with backoff and re-subscribes on its own; ticks resume")
        func dropReconnect() async throws {
            try await Self.withFeed { angel, agent in
                let client = try agent.client()
                let local = try agent.localClient()
                _ = try self.subscribe(client, "SBIN", "NSE", mode: 3)
                _ = try self.subscribe(client, "INFY", "NSE", mode: 1)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 1)
                try await angel.server.waitForConnections(1)

                angel.dropConnections()
                let reconnecting = try client.receiveBrokerStatus { $0["status"] == "reconnecting" }
                #expect(reconnecting["attempt"] == 1)
                #expect(reconnecting["broker"] == "angel")
                _ = try client.receiveBrokerStatus { $0["status"] == "connected" }
                try await angel.server.wait(for: "the replayed subscriptions") { _ in self.requests(angel, connection: 1).count >= 2 }
                #expect(Set(self.requests(angel, connection: 1)) == ["subscribe 3 [1:3045]", "subscribe 1 [1:1594]"])
                #expect(angel.server.snapshot.handshakes.count == 2)
                _ = try client.receiveMarketData(symbol: "SBIN", mode: 3)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 1)
                #expect(
                    try local.nextEvent("ws_connection_status") { $0.objectValue?["state"] == "reconnecting" }.objectValue?["reconnect_attempt"] == 1
                )
                #expect(try local.nextEvent("ws_connection_status") { $0.objectValue?["state"] == "connected" }.objectValue?["broker"] == "angel")
            }
        }

        @Test("a feed that goes silent (no ticks, no pongs) is detected as stalled and reconnected")
        func stall() async throws {
            try await Self.withFeed(["stall_timeout_s": "0.6"]) { angel, agent in
                let client = try agent.client()
                _ = try self.subscribe(client, "RELIANCE", "NSE", mode: 2)
                _ = try client.receiveMarketData(symbol: "RELIANCE", mode: 2)
                try await angel.server.waitForConnections(1)

                angel.goSilent()
                _ = try client.receiveBrokerStatus { $0["status"] == "reconnecting" }
                _ = try client.receiveBrokerStatus { $0["status"] == "connected" }
                try await angel.server.wait(for: "the replay on the new connection") { _ in !self.requests(angel, connection: 1).isEmpty }
                #expect(self.requests(angel, connection: 1) == ["subscribe 2 [1:2885]"])
                _ = try client.receiveMarketData(symbol: "RELIANCE", mode: 2)
            }
        }

        @Test("text pings answered with pong keep a quiet feed alive; truncated and garbage frames are skipped without dropping it")
        func heartbeatsAndBadFrames() async throws {
            try await Self.withFeed(["stall_timeout_s": "0.6", "heartbeat_interval_s": "0.1"]) { angel, agent in
                let client = try agent.client()
                _ = try self.subscribe(client, "INFY", "NSE", mode: 1)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 1)
                angel.pauseTicks(true)
                angel.sendTruncatedFrame()
                angel.sendGarbageFrame()
                let pingsBefore = angel.pings
                // Five stall timeouts of pongs only: a feed that ignored them would have reconnected.
                try await Task.sleep(for: .seconds(3))
                #expect(angel.pings > pingsBefore, "the client sends the text ping")
                angel.pauseTicks(false)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 1)
                #expect(angel.server.snapshot.handshakes.count == 1)
                #expect(try await agent.feedState() == .connected)
                #expect(angel.unparsedMessages.isEmpty, "pings are plain text, not requests")
            }
        }

        @Test("when reconnecting is exhausted the feed fails: WebSocket clients get broker_status then 1012, IPC clients ws_connection_status")
        func exhaustedRetries() async throws {
            try await Self.withFeed(["reconnect_max_attempts": "2"]) { angel, agent in
                let client = try agent.client()
                let local = try agent.localClient()
                _ = try self.subscribe(client, "INFY", "NSE", mode: 1)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 1)
                try await angel.server.waitForConnections(1)

                angel.refuseConnections(true)
                angel.dropConnections()
                let failed = try client.receiveBrokerStatus { $0["status"] == "failed" }
                let message = try #require(failed["message"]?.stringValue)
                #expect(message.contains("gave up after 2 reconnect attempts"))
                #expect(failed["broker"] == "angel")
                let close = try client.receiveClose()
                #expect(close.closeCode == 1012)
                let status = try local.nextEvent("ws_connection_status") { $0.objectValue?["state"] == "failed" }
                #expect(status.objectValue?["reason"]?.stringValue == message)
                #expect(status.objectValue?["connected"] == false)
                #expect(angel.server.snapshot.refusedConnections >= 2)
            }
        }

        @Test("a feed token SmartAPI refuses (HTTP 401) fails the feed with SmartAPI's words, and ws_connect says so; good tokens then connect")
        func badCredentials() async throws {
            try await Self.withFeed(["feed_token": "stale-feed-token"], waitForConnected: false) { angel, agent in
                let reason = try await agent.failureReason()
                #expect(reason.contains("HTTP 401"))
                #expect(reason.contains("Invalid Header - Invalid Feed Token"))
                #expect(!reason.contains("stale-feed-token"), "tokens never appear in messages")
                #expect(angel.server.snapshot.handshakes.count == 1, "a refused token is not retried")

                let message = try agent.refusedConnectMessage(broker: "angel")
                let local = try agent.localClient()
                #expect(message.contains("HTTP 401") && message.contains("Invalid Feed Token"), "ws_connect said: \(message)")

                let connected = try local.call(
                    "ws_connect",
                    params: ["broker": "angel", "credentials": ["feed_token": .string(angel.feedToken)]]
                )
                #expect(connected.objectValue?["state"] == "connected")
            }
        }

        @Test("missing credentials fail the feed with a message naming the fields and where they were looked for")
        func missingCredentials() async throws {
            let angel = try await FakeAngelOneServer.start(markets: Self.markets)
            var settings = try Self.settings(angel)
            settings["jwt_token"] = nil
            settings["feed_token"] = nil
            try await BrokerFeedAgent.with(broker: "angelone", settings: settings, waitForConnected: false) { agent in
                _ = try await agent.failureReason()
                let status = try agent.localClient().call("status").objectValue
                let reason = status?["reason"]?.stringValue ?? ""
                #expect(reason.contains("angelone credentials are missing jwt_token, feed_token"), "reason: \(reason)")
                #expect(reason.contains("\(agent.home)/config/openalgo/angelone.credentials"))
                #expect(angel.server.snapshot.handshakes.isEmpty)
            }
            await angel.shutdown()
        }
    }
}
