import FakeBrokers
import LocalIPC
import MarketData
import Testing
import WireJSON

extension BrokerFeedSuites {
    /// A failed feed comes back by itself while anyone holds a subscription, at each
    /// subscription's real mode and depth: over real sockets, with the fake brokers, and with a
    /// local client (which, unlike WebSocket clients, is not closed when the feed fails) as the
    /// only holder, so that nothing but the agent itself can bring the feed back.
    @Suite("Feed recovery end to end")
    struct FeedRecoveryTests {
        /// Subscribes the local client and waits for its first tick of `symbol`.
        static func hold(
            _ local: IPCClient,
            _ symbol: String,
            _ exchange: String,
            mode: String,
            depth: Int = 5
        ) throws -> JSONObject {
            _ = try local.call(
                "ws_subscribe",
                params: ["symbols": [["symbol": .string(symbol), "exchange": .string(exchange)]], "mode": .string(mode), "depth": .int(depth)]
            )
            return try Self.nextTick(local, symbol)
        }

        /// The next `market_data` event of `symbol`.
        static func nextTick(_ local: IPCClient, _ symbol: String) throws -> JSONObject {
            let event = try local.nextEvent("market_data") { $0.objectValue?["symbol"] == .string(symbol) }
            return try #require(event.objectValue)
        }

        static func levels(_ tick: JSONObject) -> Int {
            tick["data"]?.objectValue?["depth"]?.objectValue?["buy"]?.arrayValue?.count ?? 0
        }

        @Test("after the daily token rollover the feed comes back by itself once the new token is in the credentials file (it waited for a client)")
        func tokenRollover() async throws {
            try await ZerodhaFeedTests.withFeed { kite, agent in
                let local = try agent.localClient()
                _ = try Self.hold(local, "INFY", "NSE", mode: "LTP")

                kite.setAccessToken("the-next-days-token")
                kite.dropConnections()
                let reason = try await agent.failureReason()
                #expect(reason.contains("HTTP 403"), "\(reason)")

                try makeDirectory(agent.home + "/config")
                try makeDirectory(agent.home + "/config/openalgo")
                try writeFile(agent.home + "/config/openalgo/zerodha.credentials", "access_token = the-next-days-token\n")
                try await agent.waitForFeed("connected with the new token") { $0 == .connected }
                _ = try Self.nextTick(local, "INFY")
                #expect(kite.server.snapshot.handshakes.last?.queryItems["access_token"] == "the-next-days-token")
            }
        }

        @Test("a broker that accepts and drops at once is reported failed, and the feed recovers once it stops (it was retried forever)")
        func flappingBroker() async throws {
            try await ZerodhaFeedTests.withFeed(["reconnect_max_attempts": "3"]) { kite, agent in
                let local = try agent.localClient()
                _ = try Self.hold(local, "INFY", "NSE", mode: "Quote")

                kite.server.setAdmission(.acceptThenDrop)
                kite.dropConnections()
                let reason = try await agent.failureReason()
                #expect(reason.contains("gave up after 3 reconnect attempts"), "\(reason)")
                #expect(try local.nextEvent("ws_connection_status") { $0.objectValue?["state"] == "failed" }.objectValue?["connected"] == false)

                kite.server.setAdmission(.accept)
                try await agent.waitForFeed("connected again") { $0 == .connected }
                _ = try Self.nextTick(local, "INFY")
            }
        }

        @Test("Depth 20 on Dhan survives the feed failing and starting again: asked again at 20 levels (it came back at five, if at all)")
        func dhanDepthTwentyAfterRestart() async throws {
            try await DhanFeedTests.withFeed(["reconnect_max_attempts": "1"]) { dhan, agent in
                let local = try agent.localClient()
                #expect(Self.levels(try Self.hold(local, "INFY", "NSE", mode: "Depth", depth: 20)) == 20)

                for socket in [FakeDhanServer.Socket.feed, .depth] {
                    dhan.refuseConnections(true, socket)
                    dhan.dropConnections(socket)
                }
                _ = try await agent.failureReason()
                let depthConnections = dhan.depth.snapshot.connections.count
                for socket in [FakeDhanServer.Socket.feed, .depth] { dhan.refuseConnections(false, socket) }
                try await agent.waitForFeed("connected again") { $0 == .connected }
                try await dhan.depth.wait(for: "the 20-level request on a new connection") { _ in
                    !dhan.requests.filter { $0.socket == .depth && $0.connection >= depthConnections }.isEmpty
                }
                var tick = try Self.nextTick(local, "INFY")
                while tick["data"]?.objectValue?["ltp"] != nil { tick = try Self.nextTick(local, "INFY") }
                #expect(Self.levels(tick) == 20, "the book comes from the 20-level socket again")
            }
        }

        @Test("Depth 20 on Angel One survives the feed failing and starting again: asked again at 20 levels (it came back at five, if at all)")
        func angelOneDepthTwentyAfterRestart() async throws {
            try await AngelOneFeedTests.withFeed(["reconnect_max_attempts": "1"]) { angel, agent in
                let local = try agent.localClient()
                #expect(Self.levels(try Self.hold(local, "RELIANCE", "NSE", mode: "Depth", depth: 20)) == 20)

                angel.refuseConnections(true)
                angel.dropConnections()
                _ = try await agent.failureReason()
                let connections = angel.server.snapshot.connections.count
                angel.refuseConnections(false)
                try await agent.waitForFeed("connected again") { $0 == .connected }
                try await angel.server.wait(for: "the replay on a new connection") { _ in
                    !angel.requests.filter { $0.connection >= connections }.isEmpty
                }
                #expect(angel.requests.filter { $0.connection >= connections }.map(\.description) == ["subscribe 4 [1:2885]"])
                #expect(Self.levels(try Self.nextTick(local, "RELIANCE")) == 20)
            }
        }
    }
}
