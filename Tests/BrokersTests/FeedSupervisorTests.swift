import BrokerKit
import FakeBrokers
import Logging
import MarketData
import NIOCore
import NIOPosix
import Testing

@Suite("Feed supervisor against a fake broker")
struct FeedSupervisorTests {
    let reliance = Instrument(exchange: "NSE", symbol: "RELIANCE")
    let infy = Instrument(exchange: "NSE", symbol: "INFY")
    let tcs = Instrument(exchange: "NSE", symbol: "TCS")

    /// Short real delays: the sequence of events is asserted, never how long they took.
    func makeSupervisor(
        server: FakeBrokerServer,
        attempts: Int = 5,
        stallTimeout: TimeAmount? = nil,
        codec: LineCodec = LineCodec()
    ) -> FeedSupervisor<LineCodec> {
        let url = server.url("/feed?token=abc")
        return FeedSupervisor(
            configuration: .init(
                supervision: .init(
                    reconnect: ReconnectPolicy(initialDelay: .milliseconds(20), maximumDelay: .milliseconds(80), maximumAttempts: attempts),
                    stallTimeout: stallTimeout,
                    stallCheckInterval: .milliseconds(20)
                ),
                batching: .init(window: .milliseconds(20), maximumInstrumentsPerMessage: 2),
                client: .init(connectTimeout: .seconds(10))
            ),
            makeRequest: { _ in try BrokerWebSocketRequest(url: url, headers: [("x-feed-token", "f")]) },
            codec: codec,
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test"),
            random: SplitMix64(seed: 3)
        )
    }

    func texts(_ server: FakeBrokerServer, connection: Int) -> [String] {
        server.snapshot.received.compactMap { received in
            guard received.connection == connection, case .text(let text) = received.message else { return nil }
            return text
        }
    }

    @Test("subscriptions are batched, ticks reach the sink, and after a drop the feed reconnects and replays them")
    func dropReconnectReplay() async throws {
        let server = try await FakeBrokerServer.start()
        defer { Task { await server.shutdown() } }
        let sink = RecordingSink()
        let supervisor = self.makeSupervisor(server: server, codec: LineCodec(greets: true))
        supervisor.start(sink: sink)
        try await waitUntil("connected") { sink.reportedStates == [.connecting, .connected] }
        #expect(server.snapshot.handshakes.first?.uri == "/feed?token=abc")
        #expect(server.snapshot.handshakes.first?.headers["x-feed-token"] == ["f"])

        supervisor.subscribe([self.reliance, self.infy, self.tcs], mode: .quote, depth: 5)
        supervisor.subscribe([self.infy], mode: .depth, depth: 5)
        try await server.wait(for: "the batched subscribes") { $0.received.count >= 4 }
        #expect(
            self.texts(server, connection: 0) == ["hello", "sub 2 5 NSE:RELIANCE,NSE:INFY", "sub 2 5 NSE:TCS", "sub 3 5 NSE:INFY"],
            "a full message goes out at once, the rest within the window"
        )
        supervisor.unsubscribe([self.tcs])
        try await server.wait(for: "the unsubscribe") { $0.received.contains { $0.message == .text("unsub NSE:TCS") } }

        server.send(.text("tick NSE:RELIANCE 2500.5"))
        try await waitUntil("a tick") { sink.receivedTicks.count == 1 }
        #expect(sink.receivedTicks.first?.instrument == self.reliance && sink.receivedTicks.first?.ltp == 2500.5)

        server.dropConnections()
        try await server.wait(for: "a second connection with its replay") { state in
            state.received.filter { $0.connection == 1 }.count >= 3
        }
        #expect(self.texts(server, connection: 1) == ["hello", "sub 2 5 NSE:RELIANCE", "sub 3 5 NSE:INFY"])
        try await waitUntil("connected again") { sink.reportedStates.last == .connected }
        #expect(sink.reportedStates == [.connecting, .connected, .reconnecting(attempt: 1), .connected])
        #expect(supervisor.connectionState == .connected)

        server.send(.text("tick NSE:INFY 1500"))
        try await waitUntil("a tick on the new connection") { sink.receivedTicks.count == 2 }
        await supervisor.stop()
        #expect(sink.reportedStates.last == .disconnected)
        #expect(await supervisor.activeSubscriptions().isEmpty)
    }

    @Test("a silent feed with subscriptions is reconnected; the replay goes to the new connection")
    func stallForcesReconnect() async throws {
        let server = try await FakeBrokerServer.start()
        defer { Task { await server.shutdown() } }
        let sink = RecordingSink()
        let supervisor = self.makeSupervisor(server: server, stallTimeout: .milliseconds(100))
        supervisor.start(sink: sink)
        supervisor.subscribe([self.reliance], mode: .ltp, depth: 5)
        try await server.wait(for: "a stall reconnect") { $0.handshakes.count >= 2 }
        try await server.wait(for: "the replay on the new connection") { state in
            state.received.contains { $0.connection == 1 && $0.message == .text("sub 1 5 NSE:RELIANCE") }
        }
        #expect(Array(sink.reportedStates.prefix(3)) == [.connecting, .connected, .reconnecting(attempt: 1)])
        await supervisor.stop()
    }

    @Test("when the broker keeps refusing, the feed reports each attempt and then fails")
    func refusedUntilFailed() async throws {
        let server = try await FakeBrokerServer.start()
        defer { Task { await server.shutdown() } }
        let sink = RecordingSink()
        let supervisor = self.makeSupervisor(server: server, attempts: 3)
        supervisor.start(sink: sink)
        try await waitUntil("connected") { sink.reportedStates.last == .connected }
        try await server.waitForConnections(1)
        server.setAdmission(.refuse)
        server.dropConnections()
        try await waitUntil("failed, reported: \(sink.reportedStates)") {
            if case .failed = sink.reportedStates.last { return true } else { return false }
        }
        #expect(
            sink.reportedStates.dropLast() == [
                .connecting, .connected, .reconnecting(attempt: 1), .reconnecting(attempt: 2), .reconnecting(attempt: 3),
            ]
        )
        guard case .failed(let reason) = sink.reportedStates.last else { return }
        #expect(reason.hasPrefix("gave up after 3 reconnect attempts: "), "then the last error, which depends on how TCP saw the refusal")
        #expect(server.snapshot.refusedConnections == 3)
        #expect(supervisor.connectionState == sink.reportedStates.last)
        await supervisor.stop()
        #expect(sink.reportedStates.last == .disconnected)
    }

    @Test("rejected credentials fail at once when the codec says retrying cannot help")
    func authenticationRejected() async throws {
        let server = try await FakeBrokerServer.start()
        defer { Task { await server.shutdown() } }
        server.setAdmission(.reject(status: .unauthorized, message: "Invalid Feed Token"))
        let sink = RecordingSink()
        let supervisor = self.makeSupervisor(server: server)
        supervisor.start(sink: sink)
        try await waitUntil("failed") { sink.reportedStates.count == 2 }
        guard case .failed(let reason) = sink.reportedStates[1] else {
            Issue.record("expected failed, got \(sink.reportedStates)")
            return
        }
        #expect(reason.contains("HTTP 401") && reason.contains("Invalid Feed Token"))
        #expect(server.snapshot.handshakes.count == 1)
        await supervisor.stop()
    }

    @Test("a codec ending the session without retry fails the feed; stop while waiting to reconnect cancels the retry")
    func codecEndsSessionAndStopWhileWaiting() async throws {
        let server = try await FakeBrokerServer.start()
        defer { Task { await server.shutdown() } }
        let sink = RecordingSink()
        let supervisor = self.makeSupervisor(server: server)
        supervisor.start(sink: sink)
        try await server.waitForConnections(1)
        server.send(.text("bye 807 access token expired"))
        try await waitUntil("failed, reported: \(sink.reportedStates)") { sink.reportedStates.last == .failed(reason: "807 access token expired") }
        try await server.wait(for: "the socket closed") { $0.openConnections == 0 }

        supervisor.start(sink: sink)
        try await waitUntil("connected again") { sink.reportedStates.last == .connected }
        try await server.waitForConnections(2)
        server.setAdmission(.refuse)
        server.dropConnections()
        try await waitUntil("reconnecting") { sink.reportedStates.last == .reconnecting(attempt: 1) }
        await supervisor.stop()
        let handshakes = server.snapshot.handshakes.count
        #expect(sink.reportedStates.last == .disconnected)
        try await Task.sleep(for: .milliseconds(200))
        #expect(server.snapshot.handshakes.count == handshakes && sink.reportedStates.last == .disconnected, "no attempt after stop")
    }
}
