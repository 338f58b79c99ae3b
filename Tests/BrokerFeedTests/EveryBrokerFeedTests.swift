import FakeBrokers
import LocalIPC
import MarketData
import Testing
import WireJSON

extension BrokerFeedSuites {
    /// What every broker feed does alike, run against each broker's fake server: refusals,
    /// reconnects, stalls, bad frames, failures and credentials. What only one broker does (its
    /// packets per mode, its depth rules, Dhan's second socket) is in that broker's suite.
    @Suite("Every broker end to end")
    struct EveryBrokerFeedTests {
        static let brokers: [FeedBroker] = [.zerodha, .angelOne, .dhan]
        static let pausingBrokers: [FeedBroker] = [.zerodha, .angelOne]
        static let oneSocketBrokers = brokers.filter { $0.modeChange != nil }

        @Test("an unknown symbol is refused in the ack with the reference's text; the others subscribe", arguments: brokers)
        func unknownSymbol(broker: FeedBroker) async throws {
            try await broker.withFeed { server, agent in
                let client = try agent.client()
                let (symbol, exchange, known, requests) = broker.unknownSymbol
                try client.send(
                    #"{"action": "subscribe", "symbols": [{"symbol": "\#(symbol)", "exchange": "\#(exchange)"}, {"symbol": "\#(known.symbol)", "exchange": "\#(known.exchange)"}], "mode": \#(known.mode)}"#
                )
                let ack = try client.receiveReply().objectValue
                let entries = ack?["subscriptions"]?.arrayValue?.compactMap(\.objectValue) ?? []
                #expect(entries.first?["status"] == "error")
                #expect(entries.first?["message"]?.stringValue == "Symbol \(symbol) not found for exchange \(exchange)")
                #expect(entries.last?["status"] == "success")
                _ = try client.receiveMarketData(symbol: known.symbol, mode: known.mode)
                try await server.feedServer.wait(for: "the subscribe") { _ in server.requestLog(connection: 0).count >= requests.count }
                #expect(server.requestLog(connection: 0) == requests)
            }
        }

        @Test("unsubscribes reach the broker; a mode change re-subscribes at the new mode", arguments: oneSocketBrokers)
        func modeChange(broker: FeedBroker) async throws {
            let expected = try #require(broker.modeChange)
            try await broker.withFeed { server, agent in
                let client = try agent.client()
                _ = try client.subscribe(FeedSubscription("SBIN", "NSE", mode: 1))
                _ = try client.receiveMarketData(symbol: "SBIN", mode: 1)
                _ = try client.subscribe(FeedSubscription("SBIN", "NSE", mode: 2))
                _ = try client.receiveMarketData(symbol: "SBIN", mode: 2)
                #expect(server.subscriptionCount(connection: 0) == 1)
                let upgraded = server.requestLog(connection: 0).count
                try client.send(#"{"action": "unsubscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE", "mode": 2}]}"#)
                _ = try client.receiveReply()
                try await server.feedServer.wait(for: "the downgrade") { _ in server.requestLog(connection: 0).count > upgraded }
                try client.send(#"{"action": "unsubscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE", "mode": 1}]}"#)
                _ = try client.receiveReply()
                try await server.feedServer.wait(for: "the unsubscribe") { _ in server.requestLog(connection: 0).count >= expected.count }
                #expect(server.requestLog(connection: 0) == expected)
                #expect(server.subscriptionCount(connection: 0) == 0)
            }
        }

        @Test("after the broker drops the connection the feed reconnects with backoff and re-subscribes on its own; ticks resume", arguments: brokers)
        func dropReconnect(broker: FeedBroker) async throws {
            try await broker.withFeed { server, agent in
                let client = try agent.client()
                let local = try agent.localClient()
                let (subscriptions, replayed) = broker.replay
                for subscription in subscriptions { _ = try client.subscribe(subscription) }
                let last = try #require(subscriptions.last)
                _ = try client.receiveMarketData(symbol: last.symbol, mode: last.mode)
                try await server.feedServer.waitForConnections(1)

                server.drop()
                let reconnecting = try client.receiveBrokerStatus { $0["status"] == "reconnecting" }
                #expect(reconnecting["attempt"] == 1)
                #expect(reconnecting["broker"] == .string(broker.clientName))
                _ = try client.receiveBrokerStatus { $0["status"] == "connected" }
                try await server.feedServer.wait(for: "the replayed subscriptions") { _ in
                    server.requestLog(connection: 1).count >= replayed.count
                }
                #expect(Set(server.requestLog(connection: 1)) == replayed)
                #expect(server.feedServer.snapshot.handshakes.count == 2)
                for subscription in subscriptions { _ = try client.receiveMarketData(symbol: subscription.symbol, mode: subscription.mode) }
                #expect(
                    try local.nextEvent("ws_connection_status") { $0.objectValue?["state"] == "reconnecting" }.objectValue?["reconnect_attempt"] == 1
                )
                #expect(
                    try local.nextEvent("ws_connection_status") { $0.objectValue?["state"] == "connected" }.objectValue?["broker"]
                        == .string(broker.clientName)
                )
            }
        }

        @Test("a feed that goes silent (no ticks, no heartbeats) is detected as stalled and reconnected", arguments: brokers)
        func stall(broker: FeedBroker) async throws {
            try await broker.withFeed(["stall_timeout_s": "0.6"]) { server, agent in
                let client = try agent.client()
                let (subscription, replayed) = broker.stall
                _ = try client.subscribe(subscription)
                _ = try client.receiveMarketData(symbol: subscription.symbol, mode: subscription.mode)
                try await server.feedServer.waitForConnections(1)

                server.silence()
                _ = try client.receiveBrokerStatus { $0["status"] == "reconnecting" }
                _ = try client.receiveBrokerStatus { $0["status"] == "connected" }
                try await server.feedServer.wait(for: "the replay on the new connection") { _ in
                    server.requestLog(connection: 1).count >= replayed.count
                }
                #expect(server.requestLog(connection: 1) == replayed)
                _ = try client.receiveMarketData(symbol: subscription.symbol, mode: subscription.mode)
            }
        }

        @Test("truncated and garbage frames are skipped without dropping the connection", arguments: brokers)
        func badFrames(broker: FeedBroker) async throws {
            try await broker.withFeed { server, agent in
                let client = try agent.client()
                _ = try client.subscribe(FeedSubscription("INFY", "NSE", mode: 1))
                _ = try client.receiveMarketData(symbol: "INFY", mode: 1)
                server.truncatedFrame()
                server.garbageFrame()
                for _ in 0..<3 { _ = try client.receiveMarketData(symbol: "INFY", mode: 1) }
                #expect(server.feedServer.snapshot.handshakes.count == 1)
                #expect(try await agent.feedState() == .connected)
            }
        }

        @Test("heartbeats alone keep a quiet feed alive", arguments: pausingBrokers)
        func heartbeats(broker: FeedBroker) async throws {
            try await broker.withFeed(broker.quietSettings) { server, agent in
                let client = try agent.client()
                _ = try client.subscribe(FeedSubscription("INFY", "NSE", mode: 1))
                _ = try client.receiveMarketData(symbol: "INFY", mode: 1)
                #expect(server.pause(true))
                server.truncatedFrame()
                server.garbageFrame()
                // Several stall timeouts of heartbeats only: a feed that ignored them would have
                // reconnected. Both quiet settings time out after six keepalive intervals (Kite's 50 ms
                // heartbeat against 0.3 s, SmartAPI's 0.1 s text ping against 0.6 s), so twenty
                // exchanges span more than three timeouts; for SmartAPI they are the client's pings.
                let keepalivesBefore = server.keepalives
                try await server.feedServer.wait(for: "twenty keepalive exchanges") { _ in server.keepalives >= keepalivesBefore + 20 }
                _ = server.pause(false)
                _ = try client.receiveMarketData(symbol: "INFY", mode: 1)
                #expect(server.feedServer.snapshot.handshakes.count == 1)
                #expect(try await agent.feedState() == .connected)
                #expect(server.unparsedRequests.isEmpty, "heartbeats are not requests")
            }
        }

        @Test(
            "when reconnecting is exhausted the feed fails: WebSocket clients get broker_status then 1012, IPC clients ws_connection_status",
            arguments: brokers
        )
        func exhaustedRetries(broker: FeedBroker) async throws {
            try await broker.withFeed(["reconnect_max_attempts": "2"]) { server, agent in
                let client = try agent.client()
                let local = try agent.localClient()
                _ = try client.subscribe(FeedSubscription("INFY", "NSE", mode: 1))
                _ = try client.receiveMarketData(symbol: "INFY", mode: 1)
                try await server.feedServer.waitForConnections(1)

                server.refuse(true)
                server.drop()
                let failed = try client.receiveBrokerStatus { $0["status"] == "failed" }
                let message = try #require(failed["message"]?.stringValue)
                #expect(message.contains("gave up after 2 reconnect attempts"))
                #expect(failed["broker"] == .string(broker.clientName))
                let close = try client.receiveClose()
                #expect(close.closeCode == 1012)
                let status = try local.nextEvent("ws_connection_status") { $0.objectValue?["state"] == "failed" }
                #expect(status.objectValue?["reason"]?.stringValue == message)
                #expect(status.objectValue?["connected"] == false)
                #expect(server.feedServer.snapshot.refusedConnections >= 2)
            }
        }

        @Test(
            "credentials the broker refuses fail the feed with the broker's words, and ws_connect says so; good credentials over ws_connect then connect",
            arguments: brokers
        )
        func badCredentials(broker: FeedBroker) async throws {
            let refused = broker.refusedCredential
            try await broker.withFeed(refused.setting, waitForConnected: false) { server, agent in
                let reason = try await agent.failureReason()
                for words in refused.reason { #expect(reason.contains(words), "reason: \(reason)") }
                for secret in refused.setting.values { #expect(!reason.contains(secret), "credentials never appear in messages") }
                #expect(server.feedServer.snapshot.handshakes.count == 1, "refused credentials are not retried")

                let message = try agent.refusedConnectMessage(broker: broker.clientName)
                for words in refused.connectMessage { #expect(message.contains(words), "ws_connect said: \(message)") }

                let connected = try agent.localClient().call(
                    "ws_connect",
                    params: ["broker": .string(broker.clientName), "credentials": .object(server.goodCredentials(Array(refused.setting.keys)))]
                )
                #expect(connected.objectValue?["state"] == "connected")
                broker.connected(server)
            }
        }

        @Test("missing credentials fail the feed with a message naming the fields and where they were looked for", arguments: brokers)
        func missingCredentials(broker: FeedBroker) async throws {
            let server = try await broker.start()
            var settings = try server.settings([:])
            for field in broker.missingCredentials.fields { settings[field] = nil }
            try await BrokerFeedAgent.with(broker: broker.name, settings: settings, waitForConnected: false) { agent in
                _ = try await agent.failureReason()
                let status = try agent.localClient().call("status").objectValue
                let reason = status?["reason"]?.stringValue ?? ""
                #expect(reason.contains(broker.missingCredentials.message), "reason: \(reason)")
                #expect(reason.contains("\(agent.home)/config/openalgo/\(broker.name).credentials"))
                #expect(reason.contains("OPENALGO_BROKER_\(broker.name.uppercased())_<FIELD>"))
                #expect(server.feedServer.snapshot.handshakes.isEmpty)
            }
            await server.shutdown()
        }

        @Test("credentials from the private file under XDG_CONFIG_HOME are used", arguments: brokers)
        func credentialsFile(broker: FeedBroker) async throws {
            let server = try await broker.start()
            var settings = try server.settings([:])
            for field in server.credentials.keys { settings[field] = nil }
            try await BrokerFeedAgent.with(broker: broker.name, settings: settings, waitForConnected: false) { agent in
                try await agent.waitForFeed("failed without a file") { if case .failed = $0 { return true } else { return false } }
                try makeDirectory(agent.home + "/config")
                try makeDirectory(agent.home + "/config/openalgo")
                let lines = server.credentials.sorted { $0.key < $1.key }.map { "\($0.key) = \"\($0.value)\"\n" }
                try writeFile(agent.home + "/config/openalgo/\(broker.name).credentials", lines.joined())
                let connected = try agent.localClient().call("ws_connect", params: ["broker": .string(broker.clientName)])
                #expect(connected.objectValue?["state"] == "connected")
            }
            await server.shutdown()
        }
    }
}
