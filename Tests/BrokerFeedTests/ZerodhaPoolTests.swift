import FakeBrokers
import LocalIPC
import MarketData
import Testing
import WireJSON

extension BrokerFeedSuites {
    /// The Zerodha feed spreading instruments over several Kite connections (two of two
    /// instruments each here), against the fake Kite Ticker.
    @Suite("Zerodha connection pool end to end")
    struct ZerodhaPoolTests {
        typealias Kite = ZerodhaFeedTests

        static let capacityMessage = "Maximum capacity reached: 2 connections \u{00D7} 2 symbols = 4 symbols. Currently subscribed to 4 symbols."

        /// The `(action, mode, tokens)` requests connection `index` sent to the fake Kite server.
        func requests(_ kite: FakeKiteServer, connection index: Int) -> [String] {
            kite.requests.filter { $0.connection == index }.map { "\($0.action)\($0.mode.map { " \($0)" } ?? "") \($0.tokens)" }
        }

        func isOpen(_ kite: FakeKiteServer, connection index: Int) -> Bool {
            let connections = kite.server.snapshot.connections
            return connections.indices.contains(index) && connections[index].isActive
        }

        @Test(
            "instruments beyond a connection's room open a second connection; beyond the pool's they are refused; a drop reconnects only its connection; an emptied connection closes"
        )
        func pool() async throws {
            try await Kite.withFeed(["max_connections": "2", "max_instruments_per_connection": "2"]) { kite, agent in
                let local = try agent.localClient()
                let client = try agent.client()
                try client.send(
                    """
                    {"action": "subscribe", "symbols": [{"symbol": "RELIANCE", "exchange": "NSE"}, {"symbol": "INFY", "exchange": "NSE"}, \
                    {"symbol": "SBIN", "exchange": "NSE"}, {"symbol": "NIFTY", "exchange": "NSE_INDEX"}, {"symbol": "TCS", "exchange": "NSE"}], "mode": 1}
                    """
                )
                let ack = try #require(try client.receiveReply().objectValue)
                let entries = ack["subscriptions"]?.arrayValue?.compactMap(\.objectValue) ?? []
                #expect(entries.map { $0["status"] } == ["success", "success", "success", "success", "error"])
                #expect(entries.last?["symbol"] == "TCS")
                #expect(entries.last?["message"] == .string(Self.capacityMessage))

                // Two connections, each told of its own instruments only.
                try await kite.server.wait(for: "both connections' subscriptions") { _ in
                    self.requests(kite, connection: 0).count >= 2 && self.requests(kite, connection: 1).count >= 2
                }
                #expect(self.requests(kite, connection: 0) == ["subscribe [738561, 408065]", "mode ltp [738561, 408065]"])
                #expect(self.requests(kite, connection: 1) == ["subscribe [779521, 256265]", "mode ltp [779521, 256265]"])
                #expect(kite.server.snapshot.handshakes.count == 2)
                _ = try client.receiveMarketData(symbol: "RELIANCE", mode: 1)
                _ = try client.receiveMarketData(symbol: "NIFTY", mode: 1)
                #expect(try await agent.feedState() == .connected)

                // A drop on the second connection: it alone reconnects and replays its own instruments.
                kite.server.dropConnection(1)
                let firstStatus = try local.nextEvent("ws_connection_status").objectValue
                #expect(firstStatus?["state"] == "reconnecting", "opening the second connection told clients nothing")
                #expect(firstStatus?["reconnect_attempt"] == 1)
                _ = try client.receiveBrokerStatus { $0["status"] == "reconnecting" }
                _ = try client.receiveBrokerStatus { $0["status"] == "connected" }
                try await kite.server.wait(for: "the replay on the new connection") { _ in self.requests(kite, connection: 2).count >= 2 }
                #expect(self.requests(kite, connection: 2) == ["subscribe [779521, 256265]", "mode ltp [779521, 256265]"])
                #expect(self.requests(kite, connection: 0).count == 2, "the first connection was not touched")
                #expect(self.isOpen(kite, connection: 0))
                #expect(kite.server.snapshot.handshakes.count == 3)
                _ = try client.receiveMarketData(symbol: "SBIN", mode: 1)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 1)

                // Unsubscribing every instrument of the second connection closes it; the first stays.
                try client.send(
                    #"{"action": "unsubscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE", "mode": 1}, {"symbol": "NIFTY", "exchange": "NSE_INDEX", "mode": 1}]}"#
                )
                _ = try client.receiveReply()
                try await kite.server.wait(for: "the emptied connection to close") { _ in !self.isOpen(kite, connection: 2) }
                #expect(self.isOpen(kite, connection: 0))
                #expect(self.requests(kite, connection: 2).count == 2, "closed rather than unsubscribed first")
                #expect(try await agent.feedState() == .connected)

                // The freed room takes TCS, on a connection opened for it.
                let tcs = try #require(
                    try Kite().subscribe(client, "TCS", "NSE", mode: 2)["subscriptions"]?.arrayValue?.first?.objectValue
                )
                #expect(tcs["status"] == "success")
                try await kite.server.wait(for: "a connection for TCS") { _ in self.requests(kite, connection: 3).count >= 2 }
                #expect(self.requests(kite, connection: 3) == ["subscribe [2953217]", "mode quote [2953217]"])
                _ = try client.receiveMarketData(symbol: "TCS", mode: 2)
                _ = try client.receiveMarketData(symbol: "RELIANCE", mode: 1)
                #expect(self.requests(kite, connection: 0).count == 2)
            }
        }

        @Test("when one connection fails for good the feed fails and its other connections are closed")
        func oneConnectionFails() async throws {
            try await Kite.withFeed(["max_connections": "2", "max_instruments_per_connection": "1", "reconnect_max_attempts": "1"]) {
                kite,
                agent in
                let client = try agent.client()
                _ = try Kite().subscribe(client, "INFY", "NSE", mode: 1)
                _ = try Kite().subscribe(client, "SBIN", "NSE", mode: 1)
                _ = try client.receiveMarketData(symbol: "SBIN", mode: 1)
                try await kite.server.waitForConnections(2)

                kite.refuseConnections(true)
                kite.server.dropConnection(1)
                let failed = try client.receiveBrokerStatus { $0["status"] == "failed" }
                #expect(failed["message"]?.stringValue?.contains("gave up after 1 reconnect attempt") == true)
                #expect(try client.receiveClose().closeCode == 1012)
                try await kite.server.wait(for: "the first connection to close with it") { _ in !self.isOpen(kite, connection: 0) }
                #expect(kite.server.snapshot.refusedConnections == 1, "only the dropped connection tried again")
            }
        }

        @Test("max_connections above Kite's three is refused with the key named")
        func settingsBeyondKite() async throws {
            try await Kite.withFeed(["max_connections": "4"], waitForConnected: false) { _, agent in
                let reason = try await agent.failureReason()
                #expect(reason.contains("[brokers.zerodha] max_connections must be a whole number from 1 to 3"), "reason: \(reason)")
            }
        }
    }
}
