import BrokerKit
import MarketData
import Testing

@Suite("Connection pool decisions")
struct FeedConnectionPoolStateMachineTests {
    let symbols = (0..<6).map { Instrument(exchange: "NSE", symbol: "S\($0)") }

    /// A running pool of two connections × two instruments whose primary is connected.
    func runningPool() -> FeedConnectionPoolStateMachine {
        var pool = FeedConnectionPoolStateMachine(limits: ConnectionPoolLimits(maximumConnections: 2, maximumInstrumentsPerConnection: 2))
        _ = pool.start()
        _ = pool.connectionStateChanged(0, generation: 1, to: .connected)
        return pool
    }

    @Test("start opens the primary connection alone; its first outcome is the feed's")
    func start() {
        var pool = FeedConnectionPoolStateMachine(limits: ConnectionPoolLimits(maximumConnections: 3, maximumInstrumentsPerConnection: 10))
        #expect(pool.state == .disconnected)
        #expect(pool.start() == [.open(connection: 0, generation: 1), .report(.connecting)])
        #expect(pool.start() == [], "a running pool is not started twice")
        #expect(pool.connectionStateChanged(0, generation: 1, to: .connecting) == [])
        #expect(pool.connectionStateChanged(0, generation: 1, to: .connected) == [.report(.connected)])
        #expect(pool.openConnections == [0])
    }

    @Test("new instruments fill the first connection with room; the next connection opens when they are first streamed")
    func placement() {
        var pool = self.runningPool()
        let s = self.symbols
        #expect(pool.reserve(s[0]) == .reserved(connection: 0))
        #expect(pool.reserve(s[1]) == .reserved(connection: 0))
        #expect(pool.reserve(s[2]) == .reserved(connection: 1))
        #expect(pool.openConnections == [0], "nothing opens before there is something to stream")
        #expect(
            pool.subscribe([s[0], s[2], s[1]], mode: .ltp, depth: 5) == [
                .subscribe(connection: 0, instruments: [s[0], s[1]], mode: .ltp, depth: 5),
                .open(connection: 1, generation: 2),
                .subscribe(connection: 1, instruments: [s[2]], mode: .ltp, depth: 5),
            ]
        )
        #expect(pool.openConnections == [0, 1])
        #expect(pool.state == .connected, "a connection opening for the first time does not degrade the feed")
        #expect(pool.subscribe([s[5]], mode: .ltp, depth: 5) == [], "an instrument without a place is not streamed")
    }

    @Test("a mode change stays on the instrument's connection and counts it once")
    func upgradeStaysPut() {
        var pool = self.runningPool()
        let s = self.symbols
        for symbol in s[0..<3] { _ = pool.reserve(symbol) }
        _ = pool.subscribe(Array(s[0..<3]), mode: .ltp, depth: 5)
        #expect(pool.reserve(s[2]) == .alreadyReserved(connection: 1))
        #expect(pool.subscribe([s[2]], mode: .depth, depth: 5) == [.subscribe(connection: 1, instruments: [s[2]], mode: .depth, depth: 5)])
        #expect(pool.reserve(s[0]) == .alreadyReserved(connection: 0))
        #expect(pool.subscribe([s[0]], mode: .ltp, depth: 5) == [.subscribe(connection: 0, instruments: [s[0]], mode: .ltp, depth: 5)])
        #expect(pool.instrumentCount == 3)
        #expect(pool.reserve(s[3]) == .reserved(connection: 1), "the upgrades took no extra room")
    }

    @Test("beyond every connection's room an instrument is refused with the reference pool's text")
    func capacity() {
        var pool = self.runningPool()
        for symbol in self.symbols[0..<4] { #expect(pool.reserve(symbol) != .poolFull) }
        #expect(pool.reserve(self.symbols[4]) == .poolFull)
        #expect(
            pool.capacityMessage() == "Maximum capacity reached: 2 connections \u{00D7} 2 symbols = 4 symbols. Currently subscribed to 4 symbols."
        )
        #expect(pool.instrumentCount == 4)
    }

    @Test("releasing unsubscribes on the instrument's connection; an extra connection closes with its last instrument, the primary stays")
    func release() {
        var pool = self.runningPool()
        let s = self.symbols
        for symbol in s[0..<4] { _ = pool.reserve(symbol) }
        _ = pool.subscribe(Array(s[0..<4]), mode: .quote, depth: 5)
        #expect(pool.release([s[2]]) == [.unsubscribe(connection: 1, instruments: [s[2]])])
        #expect(pool.release([s[3], s[0], s[5]]) == [.unsubscribe(connection: 0, instruments: [s[0]]), .close(connection: 1)])
        #expect(pool.openConnections == [0])
        #expect(pool.release([s[1]]) == [.unsubscribe(connection: 0, instruments: [s[1]])])
        #expect(pool.openConnections == [0], "the primary stays open with nothing on it")
        #expect(pool.release([s[1]]) == [], "a second release is ignored")

        for symbol in s[0..<3] { _ = pool.reserve(symbol) }
        #expect(pool.connection(of: s[2]) == 1)
        #expect(
            pool.subscribe([s[2]], mode: .ltp, depth: 5) == [
                .open(connection: 1, generation: 3), .subscribe(connection: 1, instruments: [s[2]], mode: .ltp, depth: 5),
            ],
            "a closed connection is opened again, as a new generation"
        )
    }

    @Test("an instrument that stops streaming keeps its place and is not unsubscribed again when released")
    func stopStreaming() {
        var pool = self.runningPool()
        let s = self.symbols
        for symbol in s[0..<3] { _ = pool.reserve(symbol) }
        _ = pool.subscribe(Array(s[0..<3]), mode: .quote, depth: 5)
        #expect(pool.stopStreaming([s[2]]) == [.unsubscribe(connection: 1, instruments: [s[2]])])
        #expect(pool.reserve(s[2]) == .alreadyReserved(connection: 1))
        #expect(pool.openConnections == [0, 1])
        #expect(pool.release([s[2]]) == [.close(connection: 1)])
        #expect(pool.release([s[0]]) == [.unsubscribe(connection: 0, instruments: [s[0]])])
    }

    @Test("the feed's state is the worst of the open connections: reconnecting with the highest attempt")
    func aggregate() {
        var pool = self.runningPool()
        let s = self.symbols
        for symbol in s[0..<3] { _ = pool.reserve(symbol) }
        _ = pool.subscribe(Array(s[0..<3]), mode: .quote, depth: 5)
        #expect(pool.connectionStateChanged(1, generation: 2, to: .connected) == [])
        #expect(pool.connectionStateChanged(1, generation: 2, to: .reconnecting(attempt: 1)) == [.report(.reconnecting(attempt: 1))])
        #expect(pool.connectionStateChanged(0, generation: 1, to: .reconnecting(attempt: 1)) == [])
        #expect(pool.connectionStateChanged(1, generation: 2, to: .reconnecting(attempt: 2)) == [.report(.reconnecting(attempt: 2))])
        #expect(pool.connectionStateChanged(1, generation: 2, to: .connected) == [.report(.reconnecting(attempt: 1))])
        #expect(pool.connectionStateChanged(0, generation: 1, to: .connected) == [.report(.connected)])
        #expect(pool.connectionStateChanged(1, generation: 1, to: .reconnecting(attempt: 1)) == [], "a report of another generation is stale")

        _ = pool.connectionStateChanged(1, generation: 2, to: .reconnecting(attempt: 3))
        #expect(pool.release([s[2]]) == [.close(connection: 1), .report(.connected)], "closing the reconnecting connection recovers the feed")
    }

    @Test("a connection that fails for good fails the feed and closes the others; later reports change nothing")
    func failure() {
        var pool = self.runningPool()
        let s = self.symbols
        for symbol in s[0..<3] { _ = pool.reserve(symbol) }
        _ = pool.subscribe(Array(s[0..<3]), mode: .quote, depth: 5)
        #expect(
            pool.connectionStateChanged(1, generation: 2, to: .failed(reason: "gave up")) == [
                .close(connection: 0), .close(connection: 1), .report(.failed(reason: "gave up")),
            ]
        )
        #expect(pool.phase == .failed(reason: "gave up"))
        #expect(pool.state == .failed(reason: "gave up"))
        #expect(pool.connectionStateChanged(0, generation: 1, to: .disconnected) == [])
        #expect(pool.subscribe([s[0]], mode: .ltp, depth: 5) == [])
        #expect(pool.start() == [], "a failed pool is replaced, not restarted")
        #expect(pool.stop() == [.report(.disconnected)])
    }

    @Test("stop closes every connection, forgets the places and reports disconnected")
    func stop() {
        var pool = self.runningPool()
        let s = self.symbols
        for symbol in s[0..<3] { _ = pool.reserve(symbol) }
        _ = pool.subscribe(Array(s[0..<3]), mode: .quote, depth: 5)
        #expect(pool.stop() == [.close(connection: 0), .close(connection: 1), .report(.disconnected)])
        #expect(pool.instrumentCount == 0 && pool.openConnections.isEmpty && pool.state == .disconnected)
        #expect(pool.connectionStateChanged(0, generation: 1, to: .disconnected) == [])
    }

    @Test("max_connections and max_instruments_per_connection default to the broker's limits and may only lower them")
    func settings() throws {
        let kite = ConnectionPoolLimits(maximumConnections: 3, maximumInstrumentsPerConnection: 3000)
        #expect(try FeedTuningSettings.connectionPool(BrokerSettings(), broker: "zerodha", brokerLimits: kite) == kite)
        #expect(
            try FeedTuningSettings.connectionPool(
                BrokerSettings(["max_connections": "2", "max_instruments_per_connection": "2"]),
                broker: "zerodha",
                brokerLimits: kite
            ) == ConnectionPoolLimits(maximumConnections: 2, maximumInstrumentsPerConnection: 2)
        )
        #expect(throws: BrokerConfigurationError("[brokers.zerodha] max_connections must be a whole number from 1 to 3 (zerodha's limit), got 4")) {
            try FeedTuningSettings.connectionPool(BrokerSettings(["max_connections": "4"]), broker: "zerodha", brokerLimits: kite)
        }
        #expect(
            throws: BrokerConfigurationError(
                "[brokers.dhan] max_instruments_per_connection must be a whole number from 1 to 5000 (dhan's limit), got 0"
            )
        ) {
            try FeedTuningSettings.connectionPool(
                BrokerSettings(["max_instruments_per_connection": "0"]),
                broker: "dhan",
                brokerLimits: ConnectionPoolLimits(maximumConnections: 5, maximumInstrumentsPerConnection: 5000)
            )
        }
        #expect(throws: BrokerConfigurationError("[brokers.zerodha] max_connections must be a whole number from 1 to 3 (zerodha's limit), got 1.5")) {
            try FeedTuningSettings.connectionPool(BrokerSettings(["max_connections": "1.5"]), broker: "zerodha", brokerLimits: kite)
        }
        #expect(throws: BrokerConfigurationError("[brokers.zerodha] max_connections must be a number, got 'many'")) {
            try FeedTuningSettings.connectionPool(BrokerSettings(["max_connections": "many"]), broker: "zerodha", brokerLimits: kite)
        }
    }
}
