import FakeBrokers
import LocalIPC
import MarketData
import Testing
import WireJSON
import ZeroMQ

extension BrokerFeedSuites {
    /// The agent as a drop-in for OpenAlgo's WebSocket proxy: a real PUB socket publishes on the
    /// bus exactly as OpenAlgo's adapters do, and WebSocket and local clients receive the ticks.
    @Suite("ZeroMQ end to end")
    struct ZeroMQFeedTests {
        /// One message an adapter publishes, and the frame a client subscribed at `mode` gets.
        struct Case {
            var topic: String
            var body: String
            var symbol: String
            var exchange: String
            var mode: Int
            var frame: String
        }

        /// The bodies follow the adapters' normalised dicts (`json.dumps` output); the timestamps are
        /// integer nanoseconds beyond 2^53, which must arrive digit for digit.
        static let cases = [
            Case(
                topic: "NSE_INDEX_NIFTY_LTP",
                body:
                    #"{"symbol": "NIFTY", "exchange": "NSE_INDEX", "mode": "ltp", "ltp": 24350.55, "ltt": 1746171226, "timestamp": 1795737969836123457}"#,
                symbol: "NIFTY",
                exchange: "NSE_INDEX",
                mode: 1,
                frame: """
                    {"type": "market_data", "symbol": "NIFTY", "exchange": "NSE_INDEX", "mode": 1, "data": {"symbol": "NIFTY", "exchange": "NSE_INDEX", \
                    "mode": 1, "ltp": 24350.55, "ltt": 1746171226, "timestamp": 1795737969836123457}, "broker": "zerodha"}
                    """
            ),
            Case(
                topic: "CRYPTO_SOL_INR_LTP",
                body: #"{"ltp": 12150.5, "timestamp": 1795737969836999999, "symbol": "SOL_INR", "exchange": "CRYPTO", "mode": 1}"#,
                symbol: "SOL_INR",
                exchange: "CRYPTO",
                mode: 1,
                frame: """
                    {"type": "market_data", "symbol": "SOL_INR", "exchange": "CRYPTO", "mode": 1, "data": {"symbol": "SOL_INR", "exchange": "CRYPTO", \
                    "mode": 1, "ltp": 12150.5, "timestamp": 1795737969836999999}, "broker": "zerodha"}
                    """
            ),
            Case(
                topic: "NSE_RELIANCE_QUOTE",
                body: """
                    {"ltp": 1424.05, "ltt": 1746171226000, "volume": 100000, "open": 1415.0, "high": 1432.5, "low": 1408.0, "close": 1418.0, \
                    "last_quantity": 50, "average_price": 1420.12, "total_buy_quantity": 5000, "total_sell_quantity": 7000, "price_change": 6.05, \
                    "symbol": "RELIANCE", "exchange": "NSE", "mode": 2, "timestamp": 1795737969836000001}
                    """,
                symbol: "RELIANCE",
                exchange: "NSE",
                mode: 2,
                frame: """
                    {"type": "market_data", "symbol": "RELIANCE", "exchange": "NSE", "mode": 2, "data": {"symbol": "RELIANCE", "exchange": "NSE", \
                    "mode": 2, "ltp": 1424.05, "ltt": 1746171226000, "timestamp": 1795737969836000001, "open": 1415.0, "high": 1432.5, "low": 1408.0, \
                    "close": 1418.0, "volume": 100000, "last_quantity": 50, "last_trade_quantity": 50, "average_price": 1420.12, \
                    "avg_trade_price": 1420.12, "total_buy_quantity": 5000, "total_sell_quantity": 7000, "change": 6.05, "change_percent": 0.43, \
                    "price_change": 6.05}, "broker": "zerodha"}
                    """
            ),
            Case(
                topic: "NFO_NIFTY28APR2425000CE_DEPTH",
                body: """
                    {"ltp": 250.5, "oi": 4321, "depth": {"buy": [{"price": 250.45, "quantity": 100, "orders": 2}], \
                    "sell": [{"price": 250.55, "quantity": 75, "orders": 1}]}, "timestamp": 1795737969836000002, "depth_level": 5}
                    """,
                symbol: "NIFTY28APR2425000CE",
                exchange: "NFO",
                mode: 3,
                frame: """
                    {"type": "market_data", "symbol": "NIFTY28APR2425000CE", "exchange": "NFO", "mode": 3, "data": {"symbol": "NIFTY28APR2425000CE", \
                    "exchange": "NFO", "mode": 3, "ltp": 250.5, "timestamp": 1795737969836000002, "oi": 4321, "depth": {"buy": [{"price": 250.45, \
                    "quantity": 100, "orders": 2}], "sell": [{"price": 250.55, "quantity": 75, "orders": 1}]}, "depth_level": 5}, "broker": "zerodha"}
                    """
            ),
            Case(
                topic: "NSE_TCS:50_DEPTH",
                body:
                    #"{"ltp": 4100.0, "depth": {"buy": [], "sell": [{"price": 4100.05, "quantity": 3, "orders": 1}]}, "timestamp": 1795737969836000003}"#,
                symbol: "TCS:50",
                exchange: "NSE",
                mode: 3,
                frame: """
                    {"type": "market_data", "symbol": "TCS:50", "exchange": "NSE", "mode": 3, "data": {"symbol": "TCS:50", "exchange": "NSE", "mode": 3, \
                    "ltp": 4100.0, "timestamp": 1795737969836000003, "depth": {"buy": [], "sell": [{"price": 4100.05, "quantity": 3, "orders": 1}]}}, \
                    "broker": "zerodha"}
                    """
            ),
        ]

        @Test("bind mode: a connecting PUB's ticks reach WebSocket and local clients in every mode, fields and timestamps unchanged")
        func bindEveryMode() async throws {
            let endpoint = try Self.freeEndpoint()
            try await BrokerFeedAgent.with(broker: "zmq", settings: ["endpoint": endpoint, "broker_name": "zerodha"]) { agent in
                let publisher = try AdapterPublisher(connectingTo: endpoint)
                let local = try agent.localClient()
                let client = try agent.client()
                try Self.waitForBus(publisher, local)

                for entry in Self.cases {
                    let reply = try Self.subscribe(client, entry.symbol, entry.exchange, mode: entry.mode)
                    #expect(reply["status"] == "success" && reply["broker"] == "zerodha", "\(reply)")
                    let label = ["LTP", "Quote", "Depth"][entry.mode - 1]
                    _ = try local.call(
                        "ws_subscribe",
                        params: ["symbols": [["symbol": .string(entry.symbol), "exchange": .string(entry.exchange)]], "mode": .string(label)]
                    )
                }
                // Nobody subscribed to INFY: nobody gets it.
                try publisher.publish("NSE_INFY_LTP", #"{"ltp": 1500.0, "timestamp": 1}"#)
                for entry in Self.cases {
                    try publisher.publish(entry.topic, entry.body)
                }

                var frames: [String: String] = [:]
                while frames.count < Self.cases.count {
                    let frame = try client.receiveAnsweringPings()
                    guard frame.opcode == 0x1, frame.text.hasPrefix(#"{"type": "market_data""#) else { continue }
                    let symbol = try #require(try JSONParser.parse(frame.text).objectValue?["symbol"]?.stringValue)
                    frames[symbol] = frame.text
                }
                var events: [String: JSONValue] = [:]
                while events.count < Self.cases.count {
                    let event = try local.nextEvent("market_data")
                    guard let symbol = event.objectValue?["symbol"]?.stringValue, symbol != Self.probeSymbol else { continue }
                    events[symbol] = event
                }
                for entry in Self.cases {
                    #expect(frames[entry.symbol] == entry.frame, "WebSocket frame for \(entry.topic)")
                    #expect(events[entry.symbol] == (try JSONParser.parse(entry.frame)), "local event for \(entry.topic)")
                }

                try client.send(#"{"action": "get_broker_info"}"#)
                let info = try #require(try client.receiveReply().objectValue)
                #expect(info["broker"] == "zerodha" && info["adapter_status"] == "connected", "\(info)")
                try client.send(#"{"action": "get_supported_brokers"}"#)
                let supported = try #require(try client.receiveReply().objectValue)
                #expect(supported["brokers"]?.arrayValue?.contains("zmq") == true, "\(supported)")
                #expect(try local.call("status").objectValue?["broker"] == "zerodha")
            }
        }

        @Test(
            "order updates go, unchanged, to WebSocket clients that sent subscribe_orders (until unsubscribe_orders) and local clients that enabled order_update"
        )
        func orderUpdates() async throws {
            let endpoint = try Self.freeEndpoint()
            try await BrokerFeedAgent.with(broker: "zmq", settings: ["endpoint": endpoint]) { agent in
                let publisher = try AdapterPublisher(connectingTo: endpoint)
                let local = try agent.localClient()
                let ordersClient = try agent.client()
                let quietClient = try agent.client()
                try Self.waitForBus(publisher, local)
                _ = try local.call("events_subscribe", params: ["events": ["order_update"]])
                try ordersClient.send(#"{"action": "subscribe_orders"}"#)
                #expect(try ordersClient.receiveReply().objectValue?["type"] == "subscribe_orders")
                for client in [ordersClient, quietClient] {
                    #expect(try Self.subscribe(client, "SBIN", "NSE", mode: 2)["status"] == "success")
                }

                let order = """
                    {"type": "order_update", "user_id": "rajandran", "mode": "live", "broker": "upstox", "orderid": "250501000123456", \
                    "symbol": "NHPC", "exchange": "NSE", "action": "BUY", "quantity": 1, "price": 50.0, "order_status": "rejected"}
                    """
                try publisher.publish("ZERODHA_rajandran_orders", #"{"type": "order_update", "orderid": "no user"}"#)
                try publisher.publish("CACHE_INVALIDATE_ALL_rajandran", #"{"action": "invalidate", "user_id": "rajandran", "cache_type": "ALL"}"#)
                try publisher.publish("ZERODHA_rajandran_positions", "{}")
                try publisher.publish("NSE_SBIN_QUOTE", "not json")
                try publisher.publish("ZERODHA_rajandran_orders", order)
                try publisher.publish("NSE_SBIN_QUOTE", #"{"ltp": 801.5, "timestamp": 1}"#)

                let firstFrame = try Self.nextFrame(ordersClient)
                #expect(firstFrame == order, "the first frame is the order update, as published: \(firstFrame)")
                #expect(try Self.nextFrame(ordersClient).hasPrefix(#"{"type": "market_data", "symbol": "SBIN""#))
                #expect(
                    try Self.nextFrame(quietClient).hasPrefix(#"{"type": "market_data", "symbol": "SBIN""#),
                    "a client that did not ask for orders gets the tick published after the order update, and no order update"
                )

                try ordersClient.send(#"{"action": "unsubscribe_orders"}"#)
                #expect(try ordersClient.receiveReply().objectValue?["type"] == "unsubscribe_orders")
                try publisher.publish("ANALYZE_rajandran_orders", order)
                try publisher.publish("NSE_SBIN_QUOTE", #"{"ltp": 802.5, "timestamp": 2}"#)
                #expect(try Self.nextFrame(ordersClient).hasPrefix(#"{"type": "market_data", "symbol": "SBIN""#))
                #expect(try local.nextEvent("order_update") == (try JSONParser.parse(order)), "the local client's first order event")
                #expect(try local.nextEvent("order_update") == (try JSONParser.parse(order)), "and the second, its events still on")
            }
        }

        @Test("connect mode: the agent connects to a PUB that binds; a Depth topic reaches a Quote subscriber tagged mode 2")
        func connectMode() async throws {
            let publisher = try AdapterPublisher(binding: "tcp://127.0.0.1:*")
            let endpoint = try publisher.socket.lastEndpoint()
            try await BrokerFeedAgent.with(broker: "zmq", settings: ["endpoint": endpoint, "socket_mode": "connect"]) { agent in
                let local = try agent.localClient()
                let client = try agent.client()
                try Self.waitForBus(publisher, local)
                #expect(try Self.subscribe(client, "SBIN", "NSE", mode: 2)["status"] == "success")
                try publisher.publish(
                    "NSE_SBIN_DEPTH",
                    #"{"ltp": 800.0, "depth": {"buy": [], "sell": []}, "timestamp": 1795737969836123457}"#
                )
                #expect(
                    try Self.nextFrame(client) == """
                        {"type": "market_data", "symbol": "SBIN", "exchange": "NSE", "mode": 2, "data": {"symbol": "SBIN", "exchange": "NSE", \
                        "mode": 3, "ltp": 800.0, "timestamp": 1795737969836123457, "depth": {"buy": [], "sell": []}}, "broker": "zmq"}
                        """
                )
            }
        }

        @Test("a bus message whose timestamp is no date reaches the client as sent, and the agent keeps serving (it stopped with SIGILL)")
        func timestampThatIsNoDate() async throws {
            let endpoint = try Self.freeEndpoint()
            try await BrokerFeedAgent.with(broker: "zmq", settings: ["endpoint": endpoint]) { agent in
                let publisher = try AdapterPublisher(connectingTo: endpoint)
                let local = try agent.localClient()
                let client = try agent.client()
                try Self.waitForBus(publisher, local)
                #expect(try Self.subscribe(client, "RELIANCE", "NSE", mode: 2)["status"] == "success")
                try publisher.publish("NSE_RELIANCE_QUOTE", #"{"ltp": 1, "timestamp": -9223372036854775}"#)
                try publisher.publish("NSE_RELIANCE_QUOTE", #"{"ltp": 2, "timestamp": 1795737969836123457}"#)
                let hostile = try Self.nextFrame(client)
                #expect(hostile.contains(#""ltp": 1.0, "timestamp": -9223372036854775"#), "\(hostile)")
                let next = try Self.nextFrame(client)
                #expect(next.contains(#""ltp": 2.0, "timestamp": 1795737969836123457"#), "\(next)")
                _ = try local.call("status")
            }
        }

        @Test("an endpoint that is taken fails the feed with libzmq's reason")
        func endpointTaken() async throws {
            let holder = try AdapterPublisher(binding: "tcp://127.0.0.1:*")
            let endpoint = try holder.socket.lastEndpoint()
            try await BrokerFeedAgent.with(broker: "zmq", settings: ["endpoint": endpoint], waitForConnected: false) { agent in
                let reason = try await agent.failureReason()
                #expect(reason.contains("cannot bind \(endpoint): Address already in use"), "\(reason)")
            }
        }

        // MARK: Helpers

        /// A PUB socket set up as OpenAlgo's `BaseBrokerWebSocketAdapter` sets up its own.
        final class AdapterPublisher {
            let socket: ZeroMQSocket

            init(connectingTo endpoint: String) throws {
                self.socket = try Self.makeSocket()
                try self.socket.connect(endpoint)
            }

            init(binding endpoint: String) throws {
                self.socket = try Self.makeSocket()
                try self.socket.bind(endpoint)
            }

            private static func makeSocket() throws -> ZeroMQSocket {
                let socket = try ZeroMQSocket(context: try ZeroMQContext(), kind: .publisher)
                try socket.setLinger(milliseconds: 0)
                try socket.setHighWaterMark(send: 1000)
                return socket
            }

            /// `send_multipart([topic.encode("utf-8"), json.dumps(data).encode("utf-8")])`.
            func publish(_ topic: String, _ body: String) throws {
                try self.socket.send([topic, body])
            }

            deinit {
                self.socket.close()
            }
        }

        static let probeSymbol = "ZMQPROBE"

        /// Publishes probe ticks until a local client receives one. A PUB drops what it sends
        /// before its connection is up (ZeroMQ's slow joiner); after that it delivers in order.
        static func waitForBus(_ publisher: AdapterPublisher, _ local: IPCClient) throws {
            _ = try local.call("ws_subscribe", params: ["symbols": [["symbol": .string(Self.probeSymbol), "exchange": "NSE"]], "mode": "LTP"])
            // ZeroMQ drops what a PUB sends before its connection is up: publish until one arrives.
            for _ in 0..<600 {
                try publisher.publish("NSE_\(Self.probeSymbol)_LTP", #"{"ltp": 1.0}"#)
                while true {
                    let message: IPCMessage?
                    do {
                        message = try local.nextMessage(timeout: .milliseconds(50))
                    } catch {
                        if error.isTimeout { break }
                        throw error
                    }
                    guard let message else { throw TimedOut(what: "the agent, which closed the local connection") }
                    if case .event("market_data", let params) = message, params.objectValue?["symbol"] == .string(Self.probeSymbol) {
                        return
                    }
                }
            }
            throw TimedOut(what: "the publisher's connection to the agent")
        }

        /// An endpoint on 127.0.0.1 that nothing listens on right now.
        static func freeEndpoint() throws -> String {
            let socket = try ZeroMQSocket(context: try ZeroMQContext(), kind: .subscriber)
            try socket.setLinger(milliseconds: 0)
            try socket.bind("tcp://127.0.0.1:*")
            defer { socket.close() }
            return try socket.lastEndpoint()
        }

        static func subscribe(_ client: TestWebSocketClient, _ symbol: String, _ exchange: String, mode: Int) throws -> JSONObject {
            try client.send(#"{"action": "subscribe", "symbols": [{"symbol": "\#(symbol)", "exchange": "\#(exchange)"}], "mode": \#(mode)}"#)
            return try #require(try client.receiveReply().objectValue)
        }

        /// The next text frame other than `broker_status`, exactly as sent.
        static func nextFrame(_ client: TestWebSocketClient) throws -> String {
            while true {
                let frame = try client.receiveAnsweringPings()
                if frame.opcode == 0x8 { throw TestWebSocketClient.Failure(description: "closed: \(frame.closeCode ?? 0) \(frame.closeReason)") }
                if frame.opcode == 0x1 && !frame.text.hasPrefix(#"{"type": "broker_status""#) { return frame.text }
            }
        }
    }
}
