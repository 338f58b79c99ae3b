import FakeBrokers
import MarketData
import NIOCore
import Testing

@testable import AngelOneFeed
@testable import BrokerKit

@Suite("Angel One SmartAPI codec")
struct AngelOneCodecTests {
    let reliance = Instrument(exchange: "NSE", symbol: "RELIANCE")

    /// The 43-byte header every packet starts with.
    static func header(mode: UInt8, exchangeType: UInt8 = 1, token: String = "2885") -> PacketBuilder {
        var packet = PacketBuilder(.little)
        packet.u8(mode)
        packet.u8(exchangeType)
        packet.ascii(token, width: 25)
        packet.i64(123_456)  // sequence number
        packet.i64(1_700_000_000_000)  // exchange timestamp, ms
        return packet
    }

    /// Quote fields with the spec's §2.5 values.
    static func appendQuote(_ packet: inout PacketBuilder) {
        packet.i64(250_050)  // LTP
        packet.i64(10)  // last traded quantity
        packet.i64(249_875)  // average price
        packet.i64(1_234_567)  // volume
        packet.f64(50_000)  // total buy quantity
        packet.f64(60_000)  // total sell quantity
        packet.i64(248_000)  // open
        packet.i64(251_000)  // high
        packet.i64(247_500)  // low
        packet.i64(249_000)  // close
    }

    /// A SnapQuote whose best-five rows interleave bids (flag 1) and asks (flag 0).
    static func snapQuote(exchangeType: UInt8 = 1) -> PacketBuilder {
        var packet = self.header(mode: 3, exchangeType: exchangeType)
        self.appendQuote(&packet)
        packet.i64(1_699_999_999)  // last traded timestamp
        packet.i64(4321)  // open interest
        packet.f64(1.5)  // OI change %
        for level in 0..<5 {
            packet.u16(1)
            packet.i64(Int64(100 * (level + 1)))
            packet.i64(Int64(250_000 - 5 * level))
            packet.u16(UInt16(level + 1))
            packet.u16(0)
            packet.i64(Int64(200 * (level + 1)))
            packet.i64(Int64(250_100 + 5 * level))
            packet.u16(UInt16(level + 2))
        }
        packet.i64(275_000)  // upper circuit
        packet.i64(225_000)  // lower circuit
        packet.i64(300_000)  // 52-week high
        packet.i64(200_000)  // 52-week low
        return packet
    }

    @Test("the §2.5 LTP packet decodes and normalises to the agent's LTP JSON")
    func ltpWorkedExample() throws {
        let hex = "01013238383500000000000000000000000000000000000000000040e20100000000000068e5cf8b010000c2d0030000000000"
        var built = Self.header(mode: 1)
        built.i64(250_050)
        #expect(built.bytes == hexBytes(hex))
        let packet = try AngelOneTickDecoder.decode(frame: hexBuffer(hex))
        let header = AngelOnePacketHeader(
            mode: .ltp,
            exchangeType: 1,
            token: "2885",
            sequenceNumber: 123_456,
            exchangeTimestamp: 1_700_000_000_000
        )
        #expect(packet == .ltp(header, lastPrice: 250_050))
        let tick = AngelOneTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .depth, receivedAt: referenceClock)
        #expect(
            dataJSON(tick)
                == #"{"symbol": "RELIANCE", "exchange": "NSE", "mode": 1, "ltp": 2500.5, "ltt": 1700000000000, "timestamp": 1700000000123}"#
        )
    }

    @Test("the §2.5 quote packet normalises with integer totals and both quantity spellings")
    func quoteWorkedExample() throws {
        let tail =
            "0a00000000000000 13d0030000000000 87d6120000000000 00000000006ae840 00000000004ced40 c0c8030000000000 78d4030000000000 ccc6030000000000 a8cc030000000000"
        var frame = Self.header(mode: 2)
        frame.i64(250_050)
        frame.bytes += hexBytes(tail)
        var built = Self.header(mode: 2)
        Self.appendQuote(&built)
        #expect(frame.bytes == built.bytes)
        #expect(frame.count == 123)
        let packet = try AngelOneTickDecoder.decode(frame: frame.buffer)
        guard case .quote(_, let quote) = packet else {
            Issue.record("expected a quote packet, got \(packet)")
            return
        }
        #expect(quote.totalBuyQuantity == 50_000)
        #expect(quote.close == 249_000)
        let tick = AngelOneTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .quote, receivedAt: referenceClock)
        #expect(
            dataJSON(tick)
                == """
                {"symbol": "RELIANCE", "exchange": "NSE", "mode": 2, "ltp": 2500.5, "ltt": 1700000000000, "timestamp": 1700000000123, \
                "open": 2480.0, "high": 2510.0, "low": 2475.0, "close": 2490.0, "volume": 1234567, "last_quantity": 10, \
                "last_trade_quantity": 10, "average_price": 2498.75, "avg_trade_price": 2498.75, "total_buy_quantity": 50000, \
                "total_sell_quantity": 60000, "change": 10.5, "change_percent": 0.42}
                """
        )
        let ltp = AngelOneTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .ltp, receivedAt: nil)
        #expect(dataJSON(ltp) == #"{"symbol": "RELIANCE", "exchange": "NSE", "mode": 1, "ltp": 2500.5, "ltt": 1700000000000}"#)
    }

    @Test("a SnapQuote keeps the real OHLC, OI and circuits, and splits the best five by flag")
    func snapQuote() throws {
        let bytes = Self.snapQuote().bytes
        #expect(bytes.count == 379)
        let packet = try AngelOneTickDecoder.decode(frame: ByteBuffer(bytes: bytes))
        guard case .snapQuote(_, _, let snap) = packet else {
            Issue.record("expected a SnapQuote packet, got \(packet)")
            return
        }
        #expect(snap.openInterest == 4321)
        #expect(snap.openInterestChangePercent == 1.5)
        #expect(snap.high52Week == 300_000)
        #expect(snap.bestFive.row(1)?.isBid == false)
        #expect(snap.bestFive.row(10) == nil)
        let tick = AngelOneTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .depth, receivedAt: referenceClock)
        #expect(
            dataJSON(tick)
                == """
                {"symbol": "RELIANCE", "exchange": "NSE", "mode": 3, "ltp": 2500.5, "ltt": 1700000000000, "timestamp": 1700000000123, \
                "open": 2480.0, "high": 2510.0, "low": 2475.0, "close": 2490.0, "volume": 1234567, "last_quantity": 10, \
                "last_trade_quantity": 10, "average_price": 2498.75, "avg_trade_price": 2498.75, "total_buy_quantity": 50000, \
                "total_sell_quantity": 60000, "oi": 4321, "upper_circuit": 2750.0, "lower_circuit": 2250.0, "change": 10.5, \
                "change_percent": 0.42, "depth": {"buy": [\
                {"price": 2500.0, "quantity": 100, "orders": 1}, {"price": 2499.95, "quantity": 200, "orders": 2}, \
                {"price": 2499.9, "quantity": 300, "orders": 3}, {"price": 2499.85, "quantity": 400, "orders": 4}, \
                {"price": 2499.8, "quantity": 500, "orders": 5}], "sell": [\
                {"price": 2501.0, "quantity": 200, "orders": 2}, {"price": 2501.05, "quantity": 400, "orders": 3}, \
                {"price": 2501.1, "quantity": 600, "orders": 4}, {"price": 2501.15, "quantity": 800, "orders": 5}, \
                {"price": 2501.2, "quantity": 1000, "orders": 6}]}}
                """
        )
        let quote = AngelOneTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .quote, receivedAt: nil)
        #expect(quote.mode == .quote)
        #expect(quote.depth == nil)
        #expect(quote.openInterest == 4321)
    }

    @Test("currency derivatives (exchange type 13) divide prices by 1e7")
    func currencyDivisor() throws {
        var packet = Self.header(mode: 1, exchangeType: 13, token: "1234")
        packet.i64(832_500_000)
        let decoded = try AngelOneTickDecoder.decode(frame: packet.buffer)
        let tick = AngelOneTickNormalizer.tick(
            from: decoded,
            instrument: Instrument(exchange: "CDS", symbol: "USDINR"),
            mode: .ltp,
            receivedAt: nil
        )
        #expect(tick.ltp == 83.25)
    }

    @Test("a Depth-20 packet gives twenty levels a side and no prices")
    func depth20() throws {
        var packet = Self.header(mode: 4)
        for level in 0..<20 {
            packet.i32(Int32(10 * (level + 1)))
            packet.i32(Int32(250_000 - 5 * level))
            packet.i16(Int16(level + 1))
        }
        for level in 0..<20 {
            packet.i32(Int32(20 * (level + 1)))
            packet.i32(Int32(250_100 + 5 * level))
            packet.i16(Int16(level + 2))
        }
        #expect(packet.count == AngelOneTickDecoder.depth20PacketSize)
        let decoded = try AngelOneTickDecoder.decode(frame: packet.buffer)
        let tick = AngelOneTickNormalizer.tick(from: decoded, instrument: self.reliance, mode: .depth, receivedAt: referenceClock)
        #expect(tick.mode == .depth)
        #expect(tick.ltp == nil)
        let depth = try #require(tick.depth)
        #expect(depth.buy.count == 20)
        #expect(depth.sell.count == 20)
        #expect(depth.buy[19] == DepthLevel(price: 2499.05, quantity: 200, orders: 20))
        #expect(depth.sell[0] == DepthLevel(price: 2501.0, quantity: 20, orders: 2))
    }

    @Test("malformed frames throw errors naming the problem")
    func malformedFrames() {
        #expect(throws: BrokerFrameError.truncated("SmartAPI frame", needed: 1, available: 0)) {
            try AngelOneTickDecoder.decode(frame: ByteBuffer())
        }
        #expect(throws: BrokerFrameError.unknownPacketKind("SmartAPI packet", code: 9)) {
            try AngelOneTickDecoder.decode(frame: ByteBuffer(bytes: [9, 1, 0]))
        }
        var quote = Self.header(mode: 2)
        quote.zeros(57)
        #expect(throws: BrokerFrameError.truncated("SmartAPI mode 2 packet", needed: 123, available: 100)) {
            try AngelOneTickDecoder.decode(frame: quote.buffer)
        }
        var long = Self.header(mode: 1)
        long.zeros(9)
        #expect(throws: BrokerFrameError.unexpectedLength("SmartAPI mode 1 packet", length: 52, expected: 51)) {
            try AngelOneTickDecoder.decode(frame: long.buffer)
        }
        var empty = Self.header(mode: 1, token: "")
        empty.zeros(8)
        #expect(throws: BrokerFrameError.malformed("SmartAPI token", reason: "it is empty")) {
            try AngelOneTickDecoder.decode(frame: empty.buffer)
        }
        var binary = Self.header(mode: 1, token: "28\u{7}5")
        binary.zeros(8)
        #expect(throws: BrokerFrameError.malformed("SmartAPI token", reason: "byte 7 at offset 4 is not printable ASCII")) {
            try AngelOneTickDecoder.decode(frame: binary.buffer)
        }
    }

    @Test("a token filling all 25 bytes without a terminator is read whole")
    func fullWidthToken() throws {
        let token = String(repeating: "9", count: 25)
        var packet = Self.header(mode: 1, token: token)
        packet.i64(1)
        #expect(try AngelOneTickDecoder.decode(frame: packet.buffer).header.token == token)
    }

    @Test("random bytes never crash the decoder")
    func garbage() {
        var generator = SplitMix64(seed: 0xA4E1)
        let sizes = [0, 1, 2, 27, 43, 50, 51, 52, 122, 123, 378, 379, 443]
        for round in 0..<5000 {
            let length = round % 3 == 0 ? sizes[Int(generator.next() % UInt64(sizes.count))] : Int(generator.next() % 500)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if length > 0 { bytes[0] = UInt8(generator.next() % 6) }
            guard let packet = try? AngelOneTickDecoder.decode(frame: ByteBuffer(bytes: bytes)) else { continue }
            _ = AngelOneTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .depth, receivedAt: nil)
        }
    }

    @Test("requests are SmartAPI's exact JSON, tokens grouped by exchange type")
    func requests() {
        let groups = AngelOneRequest.groups([
            (.nseCash, "2885"), (.nseFutures, "35001"), (.nseCash, "99926000"), (.nseCash, "2885"),
        ])
        #expect(
            groups == [
                AngelOneTokenGroup(exchangeType: .nseCash, tokens: ["2885", "99926000"]),
                AngelOneTokenGroup(exchangeType: .nseFutures, tokens: ["35001"]),
            ]
        )
        #expect(
            AngelOneRequest.subscribe(mode: AngelOneMode(.depth), groups: groups, correlationID: "abcde12345")
                == #"{"correlationID":"abcde12345","action":1,"params":{"mode":3,"tokenList":[{"exchangeType":1,"tokens":["2885","99926000"]},{"exchangeType":2,"tokens":["35001"]}]}}"#
        )
        #expect(
            AngelOneRequest.unsubscribe(mode: .ltp, groups: [groups[1]], correlationID: "q\"1")
                == #"{"correlationID":"q\"1","action":0,"params":{"mode":1,"tokenList":[{"exchangeType":2,"tokens":["35001"]}]}}"#
        )
        #expect([AngelOneMode(.ltp), AngelOneMode(.quote), AngelOneMode(.depth)] == [.ltp, .quote, .snapQuote])
    }

    @Test("the connection authenticates with the four SmartAPI headers")
    func connection() {
        let credentials = AngelOneCredentials(apiKey: "key", clientCode: "A123", jwtToken: "eyJhbGc", feedToken: "feed")
        let request = AngelOneRequest.connection(baseURL: "ws://127.0.0.1:9002/smart-stream", credentials: credentials)
        #expect(request.url == "ws://127.0.0.1:9002/smart-stream")
        #expect(
            request.headers == [
                BrokerHeader("Authorization", "eyJhbGc"), BrokerHeader("x-api-key", "key"), BrokerHeader("x-client-code", "A123"),
                BrokerHeader("x-feed-token", "feed"),
            ]
        )
        #expect(AngelOneRequest.connection(credentials: credentials).url == "wss://smartapisocket.angelone.in/smart-stream")
    }
}
