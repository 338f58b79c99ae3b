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

        @Test("an unknown symbol is refused in the ack with the reference's text; the others subscribe")
        func unknownSymbol() async throws {
            try await Self.withFeed { kite, agent in
                let client = try agent.client()
                try client.send(
                    #"{"action": "subscribe", "symbols": [{"symbol": "NOSUCH", "exchange": "NSE"}, {"symbol": "INFY", "exchange": "NSE"}], "mode": 1}"#
                )
                let ack = try client.receiveReply().objectValue
                let entries = ack?["subscriptions"]?.arrayValue?.compactMap(\.objectValue) ?? []
                #expect(entries.first?["status"] == "error")
                #expect(entries.first?["message"] == "Symbol NOSUCH not found for exchange NSE")
                #expect(entries.last?["status"] == "success")
                try await kite.server.wait(for: "the subscribe") { _ in kite.requests.count >= 2 }
                #expect(self.requests(kite, connection: 0) == ["subscribe [408065]", "mode ltp [408065]"])
            }
        }

        @Test("an unsubscribe reaches Kite; a mode upgrade re-subscribes at the higher mode")
        func unsubscribeAndUpgrade() async throws {
            try await Self.withFeed { kite, agent in
                let client = try agent.client()
                _ = try self.subscribe(client, "SBIN", "NSE", mode: 1)
                _ = try client.receiveMarketData(symbol: "SBIN", mode: 1)
                _ = try self.subscribe(client, "SBIN", "NSE", mode: 2)
                _ = try client.receiveMarketData(symbol: "SBIN", mode: 2)
                try client.send(#"{"action": "unsubscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE", "mode": 2}]}"#)
                _ = try client.receiveReply()
                try await kite.server.wait(for: "the downgrade") { _ in kite.requests.count >= 6 }
                try client.send(#"{"action": "unsubscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE", "mode": 1}]}"#)
                _ = try client.receiveReply()
                try await kite.server.wait(for: "the unsubscribe") { _ in kite.requests.contains { $0.action == "unsubscribe" } }
                #expect(
                    self.requests(kite, connection: 0) == [
                        "subscribe [779521]", "mode ltp [779521]", "subscribe [779521]", "mode quote [779521]",
                        "subscribe [779521]", "mode ltp [779521]", "unsubscribe [779521]",
                    ]
                )
                #expect(kite.subscriptions(onConnection: 0).isEmpty)
            }
        }

        @Test("after Kite drops the connection the feed reconnects with backoff and re-subscribes on its own; ticks resume")
        func dropReconnect() async throws {
            try await Self.withFeed { kite, agent in
                let client = try agent.client()
                let local = try agent.localClient()
                _ = try self.subscribe(client, "RELIANCE", "NSE", mode: 3)
                _ = try self.subscribe(client, "INFY", "NSE", mode: 1)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 1)
                try await kite.server.waitForConnections(1)

                kite.dropConnections()
                let reconnecting = try client.receiveBrokerStatus { $0["status"] == "reconnecting" }
                #expect(reconnecting["attempt"] == 1)
                #expect(reconnecting["broker"] == "zerodha")
                _ = try client.receiveBrokerStatus { $0["status"] == "connected" }
                try await kite.server.wait(for: "the replayed subscriptions") { _ in
                    self.requests(kite, connection: 1).count >= 4
                }
                #expect(
                    Set(self.requests(kite, connection: 1)) == [
                        "subscribe [738561]", "mode full [738561]", "subscribe [408065]", "mode ltp [408065]",
                    ]
                )
                #expect(kite.server.snapshot.handshakes.count == 2)
                _ = try client.receiveMarketData(symbol: "RELIANCE", mode: 3)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 1)
                #expect(
                    try local.nextEvent("ws_connection_status") { $0.objectValue?["state"] == "reconnecting" }.objectValue?["reconnect_attempt"] == 1
                )
                #expect(try local.nextEvent("ws_connection_status") { $0.objectValue?["state"] == "connected" }.objectValue?["broker"] == "zerodha")
            }
        }

        @Test("a feed that goes silent (no ticks, no heartbeats) is detected as stalled and reconnected")
        func stall() async throws {
            try await Self.withFeed(["stall_timeout_s": "0.6"]) { kite, agent in
                let client = try agent.client()
                _ = try self.subscribe(client, "SBIN", "NSE", mode: 2)
                _ = try client.receiveMarketData(symbol: "SBIN", mode: 2)
                try await kite.server.waitForConnections(1)

                kite.goSilent()
                _ = try client.receiveBrokerStatus { $0["status"] == "reconnecting" }
                _ = try client.receiveBrokerStatus { $0["status"] == "connected" }
                try await kite.server.wait(for: "the replay on the new connection") { _ in self.requests(kite, connection: 1).count >= 2 }
                #expect(self.requests(kite, connection: 1) == ["subscribe [779521]", "mode quote [779521]"])
                _ = try client.receiveMarketData(symbol: "SBIN", mode: 2)
            }
        }

        @Test("heartbeats alone keep a quiet feed alive; truncated and garbage frames are skipped without dropping it")
        func heartbeatsAndBadFrames() async throws {
            try await Self.withFeed(["stall_timeout_s": "0.3"]) { kite, agent in
                let client = try agent.client()
                _ = try self.subscribe(client, "INFY", "NSE", mode: 1)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 1)
                kite.pauseTicks(true)
                kite.sendTruncatedFrame()
                kite.sendGarbageFrame()
                // Ten stall timeouts of heartbeats only: a feed that ignored them would have reconnected.
                try await Task.sleep(for: .seconds(3))
                kite.pauseTicks(false)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 1)
                #expect(kite.server.snapshot.handshakes.count == 1)
                #expect(try await agent.feedState() == .connected)
            }
        }

        @Test("when reconnecting is exhausted the feed fails: WebSocket clients get broker_status then 1012, IPC clients ws_connection_status")
        func exhaustedRetries() async throws {
            try await Self.withFeed(["reconnect_max_attempts": "2"]) { kite, agent in
                let client = try agent.client()
                let local = try agent.localClient()
                _ = try self.subscribe(client, "INFY", "NSE", mode: 1)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 1)
                try await kite.server.waitForConnections(1)

                kite.refuseConnections(true)
                kite.dropConnections()
                let failed = try client.receiveBrokerStatus { $0["status"] == "failed" }
                let message = try #require(failed["message"]?.stringValue)
                #expect(message.contains("gave up after 2 reconnect attempts"))
                let close = try client.receiveClose()
                #expect(close.closeCode == 1012)
                let status = try local.nextEvent("ws_connection_status") { $0.objectValue?["state"] == "failed" }
                #expect(status.objectValue?["reason"]?.stringValue == message)
                #expect(status.objectValue?["connected"] == false)
                #expect(kite.server.snapshot.refusedConnections >= 2)
            }
        }

        @Test(
            "a token Kite refuses (HTTP 403) fails the feed with Kite's words, and ws_connect says so; good credentials over ws_connect then connect"
        )
        func badCredentials() async throws {
            try await Self.withFeed(["access_token": "expired-token"], waitForConnected: false) { kite, agent in
                let reason = try await agent.failureReason()
                #expect(reason.contains("HTTP 403"))
                #expect(reason.contains("Incorrect `api_key` or `access_token`."))
                #expect(!reason.contains("expired-token"), "the token never appears in messages")
                #expect(kite.server.snapshot.handshakes.count == 1, "a refused token is not retried")

                let message = try agent.refusedConnectMessage(broker: "zerodha")
                let local = try agent.localClient()
                #expect(message.contains("HTTP 403") && message.contains("TokenException"), "ws_connect said: \(message)")

                let connected = try local.call(
                    "ws_connect",
                    params: ["broker": "zerodha", "credentials": ["access_token": .string(kite.accessToken)]]
                )
                #expect(connected.objectValue?["state"] == "connected")
            }
        }

        @Test("missing credentials fail the feed with a message naming the fields and where they were looked for")
        func missingCredentials() async throws {
            let kite = try await FakeKiteServer.start(markets: Self.markets)
            var settings = try Self.settings(kite)
            settings["api_key"] = nil
            settings["access_token"] = nil
            try await BrokerFeedAgent.with(broker: "zerodha", settings: settings, waitForConnected: false) { agent in
                _ = try await agent.failureReason()
                let status = try agent.localClient().call("status").objectValue
                let reason = status?["reason"]?.stringValue ?? ""
                #expect(reason.contains("zerodha credentials are missing api_key, access_token"), "reason: \(reason)")
                #expect(reason.contains("\(agent.home)/config/openalgo/zerodha.credentials"))
                #expect(reason.contains("OPENALGO_BROKER_ZERODHA_<FIELD>"))
                #expect(kite.server.snapshot.handshakes.isEmpty)
            }
            await kite.shutdown()
        }

        @Test("credentials from the private file under XDG_CONFIG_HOME are used")
        func credentialsFile() async throws {
            let kite = try await FakeKiteServer.start(markets: Self.markets)
            var settings = try Self.settings(kite)
            settings["api_key"] = nil
            settings["access_token"] = nil
            try await BrokerFeedAgent.with(broker: "zerodha", settings: settings, waitForConnected: false) { agent in
                try await agent.waitForFeed("failed without a file") { if case .failed = $0 { return true } else { return false } }
                try makeDirectory(agent.home + "/config")
                try makeDirectory(agent.home + "/config/openalgo")
                try writeFile(
                    agent.home + "/config/openalgo/zerodha.credentials",
                    "api_key = \(kite.apiKey)\naccess_token = \"\(kite.accessToken)\"\n"
                )
                let connected = try agent.localClient().call("ws_connect", params: ["broker": "zerodha"])
                #expect(connected.objectValue?["state"] == "connected")
            }
            await kite.shutdown()
        }
    }
}
