import Agent
import Logging
import NIOCore
import ProxyServer
import StreamingHub
import Testing
import WireJSON

#if canImport(Glibc)
import Glibc
#endif

extension SocketTests {
    /// The reference fan-out rule and the slow-consumer policy, over real sockets.
    @Suite("Fan-out over WebSocket")
    struct FanOutTests {
        private static let sbin = #"[{"symbol": "SBIN", "exchange": "NSE"}]"#

        /// `count` simulator instruments as entries of a `symbols` array.
        private static func stocks(_ count: Int) -> String {
            (1...count).map { #"{"symbol": "STOCK\#($0)", "exchange": "NSE"}"# }.joined(separator: ", ")
        }

        @Test("each client gets one frame per tick for each mode it holds at or below the tick's, tagged with that mode, carrying the full data")
        func fanOutRule() async throws {
            try await TestAgent.with(TestAgent.configuration { $0.ltpThrottle = .zero }) { agent in
                let ltpAndQuote = try agent.client()
                let depth = try agent.client()
                let ltpOnly = try agent.client()
                for (client, mode) in [(ltpAndQuote, 1), (ltpAndQuote, 2), (depth, 3), (ltpOnly, 1)] {
                    try client.send(#"{"action": "subscribe", "symbols": \#(Self.sbin), "mode": \#(mode)}"#)
                    #expect(try client.receiveReply().objectValue?["status"] == "success")
                }
                let depthFrames = try (0..<12).map { _ in try depth.receiveMarketData() }
                // A tick fanned out before the Quote subscription was confirmed may come first, alone.
                let received = try (0..<25).map { _ in try ltpAndQuote.receiveMarketData() }
                let offset = received[0]["data"] == received[1]["data"] ? 0 : 1
                let mixedFrames = Array(received[offset..<offset + 24])
                let ltpFrames = try (0..<12).map { _ in try ltpOnly.receiveMarketData() }

                #expect(depthFrames.allSatisfy { $0["mode"] == 3 && $0["data"]?.objectValue?["depth"] != nil })
                #expect(mixedFrames.allSatisfy { $0["data"]?.objectValue?["depth"] != nil }, "lower modes receive the higher-mode data")
                #expect(ltpFrames.allSatisfy { $0["mode"] == 1 && $0["data"]?.objectValue?["ltp"] != nil })
                // The LTP+Quote holder gets each tick twice, tagged 1 then 2, as the SDK's LTP and
                // Quote callbacks both expect.
                for pair in stride(from: 0, to: mixedFrames.count, by: 2) {
                    #expect(mixedFrames[pair]["mode"] == 1 && mixedFrames[pair + 1]["mode"] == 2)
                    #expect(mixedFrames[pair]["data"] == mixedFrames[pair + 1]["data"])
                }

                let depthData = depthFrames.compactMap { $0["data"] }
                let quoteFrames = stride(from: 1, to: mixedFrames.count, by: 2).map { mixedFrames[$0] }
                for frames in [quoteFrames, ltpFrames] {
                    let data = frames.compactMap { $0["data"] }
                    #expect(Set(data.map(\.jsonText)).count == data.count, "no tick is delivered twice at one mode")
                    let window = Array(data[4..<8])
                    let start = try #require(depthData.firstIndex(of: window[0]), "clients see the same ticks")
                    #expect(Array(depthData[start..<min(depthData.count, start + 4)]) == window || start + 4 > depthData.count)
                }

                try depth.send(#"{"action": "unsubscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE", "mode": 3}]}"#)
                _ = try depth.receiveReply()
                var downgraded = false
                for _ in 0..<40 where !downgraded {
                    let frame = try ltpAndQuote.receiveMarketData()
                    downgraded = frame["data"]?.objectValue?["depth"] == nil
                    #expect(frame["mode"] == 1 || frame["mode"] == 2)
                }
                #expect(downgraded, "after the Depth subscriber leaves, the feed is downgraded to Quote")
            }
        }

        @Test("clients spread over three event loops get the same ticks in the same order; no data follows an unsubscribe ack")
        func clientsOnSeveralLoops() async throws {
            let configuration = TestAgent.configuration {
                $0.clientEventLoops = 3
                $0.ltpThrottle = .zero
                $0.brokers["simulator"] = .init(["ticks_per_second": "50", "seed": "11"])
            }
            try await TestAgent.with(configuration) { agent in
                let clients = try (0..<6).map { _ in try agent.client() }
                for client in clients {
                    try client.send(#"{"action": "subscribe", "symbols": \#(Self.sbin), "mode": 2}"#)
                    #expect(try client.receiveReply().objectValue?["status"] == "success")
                }
                let first = try (0..<40).map { _ in try clients[0].receiveMarketData()["data"]?.jsonText ?? "" }
                for client in clients.dropFirst() {
                    let frames = try (0..<20).map { _ in try client.receiveMarketData()["data"]?.jsonText ?? "" }
                    let start = try #require(first.firstIndex(of: frames[0]), "every client sees the ticks the first one sees")
                    let overlap = min(frames.count, first.count - start)
                    #expect(Array(first[start..<(start + overlap)]) == Array(frames.prefix(overlap)), "same ticks, same order")
                }

                let leaving = clients[4]
                try leaving.send(#"{"action": "unsubscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE", "mode": 2}]}"#)
                #expect(try leaving.receiveReply().objectValue?["type"] == "unsubscribe")
                try leaving.send(#"{"action": "subscribe", "symbols": [{"symbol": "INFY", "exchange": "NSE"}], "mode": 2}"#)
                _ = try leaving.receiveReply()
                let after = try (0..<20).map { _ in try leaving.receiveMarketData()["symbol"] }
                #expect(after.allSatisfy { $0 == "INFY" }, "no SBIN frame after its unsubscribe was acknowledged")
                #expect(try await agent.runtime.webSocketServer.connectionCount() == 6)
            }
        }

        @Test("LTP subscribers get about one frame per coalescing window per symbol")
        func ltpCoalescing() async throws {
            try await TestAgent.with(
                TestAgent.configuration {
                    $0.ltpThrottle = .milliseconds(200)
                    $0.brokers["simulator"] = .init(["ticks_per_second": "100", "seed": "3"])
                }
            ) { agent in
                let ltp = try agent.client()
                let quote = try agent.client()
                try quote.send(#"{"action": "subscribe", "symbols": \#(Self.sbin), "mode": 2}"#)
                _ = try quote.receiveReply()
                try ltp.send(#"{"action": "subscribe", "symbols": \#(Self.sbin), "mode": 1}"#)
                _ = try ltp.receiveReply()
                let start = NIODeadline.now()
                var ltpCount = 0
                while NIODeadline.now() - start < .seconds(1) {
                    _ = try ltp.receiveMarketData()
                    ltpCount += 1
                }
                #expect(ltpCount >= 3 && ltpCount <= 7, "about one frame per 200 ms window, got \(ltpCount)")
                #expect(try await agent.metrics().ltpFramesCoalesced > 50)
            }
        }

        @Test("a client that stops reading is conflated, then closed as a slow consumer; the others keep receiving and memory stays bounded")
        func slowReader() async throws {
            let symbols = Self.stocks(20)
            try await TestAgent.with(
                TestAgent.configuration {
                    $0.brokers["simulator"] = .init(["ticks_per_second": "50"])
                    $0.proxy.unwritableDeadline = .seconds(3)
                    $0.proxy.pingTimeout = .seconds(60)
                    $0.proxy.socketSendBufferBytes = 16 << 10
                }
            ) { agent in
                let stalled = try agent.client(receiveBuffer: 4096)
                let healthy = try agent.client()
                for client in [stalled, healthy] {
                    try client.send(#"{"action": "subscribe", "symbols": [\#(symbols)], "mode": 3}"#)
                    _ = try client.receiveReply()
                }
                let residentBefore = residentMemoryBytes()
                var received = 0
                var longestGap = TimeAmount.zero
                var previous = NIODeadline.now()
                let testStart = previous
                while NIODeadline.now() - testStart < .milliseconds(2500) {
                    _ = try healthy.receiveAnsweringPings()
                    let now = NIODeadline.now()
                    longestGap = max(longestGap, now - previous)
                    previous = now
                    received += 1
                }
                let stalledMetrics = try await agent.metrics()
                #expect(stalledMetrics.framesConflated > 100, "the stalled client's frames are conflated")
                #expect(stalledMetrics.slowConsumersClosed == 0, "within its deadline the stalled client stays connected")
                #expect(received > 250, "the healthy client keeps receiving (\(received) frames in 2.5 s)")
                // Shorter than the stalled client's 3 s deadline: the healthy one was never held up waiting for it.
                #expect(longestGap < .milliseconds(2500), "the healthy client never stalls (longest gap \(longestGap))")
                let growth = residentMemoryBytes() - residentBefore
                #expect(growth < 48 << 20, "memory grew by \(growth) bytes while a client was stalled")

                let deadline = NIODeadline.now() + .seconds(30)
                while try await agent.metrics().slowConsumersClosed == 0 && NIODeadline.now() < deadline {
                    _ = try healthy.receiveAnsweringPings()
                }
                #expect(try await agent.metrics().slowConsumersClosed == 1)
                _ = try healthy.receiveMarketData()
                withExtendedLifetime(stalled) {}
            }
        }

        @Test("a client over its outbound budget is closed at once")
        func outboxBudget() async throws {
            let symbols = Self.stocks(30)
            try await TestAgent.with(
                TestAgent.configuration {
                    $0.brokers["simulator"] = .init(["ticks_per_second": "200"])
                    $0.proxy.outboxBudgetBytes = 8 << 10
                    $0.proxy.unwritableDeadline = .seconds(60)
                }
            ) { agent in
                let stalled = try agent.client(receiveBuffer: 4096)
                try stalled.send(#"{"action": "subscribe", "symbols": [\#(symbols)], "mode": 3, "depth": 20}"#)
                let deadline = NIODeadline.now() + .seconds(10)
                while try await agent.metrics().slowConsumersClosed == 0 && NIODeadline.now() < deadline {
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(try await agent.metrics().slowConsumersClosed == 1)
                while try await agent.runtime.webSocketServer.connectionCount() > 0 && NIODeadline.now() < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(try await agent.runtime.webSocketServer.connectionCount() == 0)
                withExtendedLifetime(stalled) {}
            }
        }
    }
}
