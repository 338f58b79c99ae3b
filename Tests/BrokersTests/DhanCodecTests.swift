import FakeBrokers
import MarketData
import NIOCore
import Testing

@testable import BrokerKit
@testable import DhanFeed

@Suite("Dhan live market feed codec")
struct DhanCodecTests {
    let reliance = Instrument(exchange: "NSE", symbol: "RELIANCE")

    /// An 8-byte header; the length is patched in by ``finish(_:)``.
    static func header(code: UInt8, segment: UInt8 = 1, securityID: UInt32 = 2885) -> PacketBuilder {
        var packet = PacketBuilder(.little)
        packet.u8(code)
        packet.u16(0)
        packet.u8(segment)
        packet.u32(securityID)
        return packet
    }

    static func finish(_ packet: PacketBuilder) -> [UInt8] {
        var packet = packet
        packet.patchU16(UInt16(packet.count), at: 1)
        return packet.bytes
    }

    static func appendTrade(_ packet: inout PacketBuilder) {
        packet.f32(2500.5)  // LTP
        packet.u16(10)  // LTQ
        packet.u32(1_700_000_000)  // LTT
        packet.f32(2498.75)  // ATP
        packet.u32(1_234_567)  // volume
        packet.u32(60_000)  // total sell quantity
        packet.u32(50_000)  // total buy quantity
    }

    static func fullPacket() -> [UInt8] {
        var packet = self.header(code: 8)
        self.appendTrade(&packet)
        packet.u32(4321)  // OI
        packet.u32(5000)  // OI high
        packet.u32(4000)  // OI low
        packet.f32(2480)  // open
        packet.f32(2490)  // close
        packet.f32(2510)  // high
        packet.f32(2475)  // low
        for level in 0..<5 {
            packet.u32(UInt32(100 * (level + 1)))  // bid quantity
            packet.u32(UInt32(200 * (level + 1)))  // ask quantity
            packet.u16(UInt16(level + 1))  // bid orders
            packet.u16(UInt16(level + 2))  // ask orders
            packet.f32(2500 - 0.25 * Float(level))  // bid price
            packet.f32(2501 + 0.25 * Float(level))  // ask price
        }
        return self.finish(packet)
    }

    func onlyPacket(_ bytes: [UInt8]) throws -> DhanPacket {
        let packets = Array(try DhanTickDecoder.decode(frame: ByteBuffer(bytes: bytes)))
        try #require(packets.count == 1)
        return packets[0]
    }

    @Test("the §3.5 ticker packet normalises to the agent's LTP JSON")
    func tickerWorkedExample() throws {
        var built = Self.header(code: 2)
        built.f32(2500.5)
        built.u32(1_700_000_000)
        #expect(Self.finish(built) == hexBytes("02100001450b000000481c4500f15365"))
        let packet = try self.onlyPacket(hexBytes("02100001450b000000481c4500f15365"))
        #expect(
            packet
                == .ticker(DhanPacketHeader(responseCode: 2, exchangeSegment: 1, securityID: 2885), lastPrice: 2500.5, lastTradeTime: 1_700_000_000)
        )
        let tick = try #require(DhanTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .quote, receivedAt: referenceClock))
        #expect(
            dataJSON(tick) == #"{"symbol": "RELIANCE", "exchange": "NSE", "mode": 1, "ltp": 2500.5, "ltt": 1700000000, "timestamp": 1700000000123}"#
        )
    }

    @Test("the §3.5 quote packet reads sell before buy totals and normalises to the agent's quote JSON")
    func quoteWorkedExample() throws {
        let hex = "04320001450b0000 00481c45 0a00 00f15365 002c1c45 87d61200 60ea0000 50c30000 00001b45 00a01b45 00e01c45 00b01a45"
        var built = Self.header(code: 4)
        Self.appendTrade(&built)
        built.f32(2480)  // open
        built.f32(2490)  // close
        built.f32(2510)  // high
        built.f32(2475)  // low
        #expect(Self.finish(built) == hexBytes(hex))
        let packet = try self.onlyPacket(hexBytes(hex))
        guard case .quote(_, let trade, let prices) = packet else {
            Issue.record("expected a quote packet, got \(packet)")
            return
        }
        #expect(trade.totalSellQuantity == 60_000)
        #expect(trade.totalBuyQuantity == 50_000)
        #expect(prices == DhanDayPrices(open: 2480, close: 2490, high: 2510, low: 2475))
        let tick = try #require(DhanTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .quote, receivedAt: referenceClock))
        #expect(
            dataJSON(tick)
                == """
                {"symbol": "RELIANCE", "exchange": "NSE", "mode": 2, "ltp": 2500.5, "ltt": 1700000000, "timestamp": 1700000000123, \
                "open": 2480.0, "high": 2510.0, "low": 2475.0, "close": 2490.0, "volume": 1234567, "last_quantity": 10, \
                "last_trade_quantity": 10, "average_price": 2498.75, "avg_trade_price": 2498.75, "total_buy_quantity": 50000, \
                "total_sell_quantity": 60000, "change": 10.5, "change_percent": 0.42}
                """
        )
    }

    @Test("a full packet gives OI and a five-level book from the paired depth rows")
    func fullPacket() throws {
        let bytes = Self.fullPacket()
        #expect(bytes.count == 162)
        let packet = try self.onlyPacket(bytes)
        let tick = try #require(DhanTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .depth, receivedAt: referenceClock))
        #expect(
            dataJSON(tick)
                == """
                {"symbol": "RELIANCE", "exchange": "NSE", "mode": 3, "ltp": 2500.5, "ltt": 1700000000, "timestamp": 1700000000123, \
                "open": 2480.0, "high": 2510.0, "low": 2475.0, "close": 2490.0, "volume": 1234567, "last_quantity": 10, \
                "last_trade_quantity": 10, "average_price": 2498.75, "avg_trade_price": 2498.75, "total_buy_quantity": 50000, \
                "total_sell_quantity": 60000, "oi": 4321, "change": 10.5, "change_percent": 0.42, "depth": {"buy": [\
                {"price": 2500.0, "quantity": 100, "orders": 1}, {"price": 2499.75, "quantity": 200, "orders": 2}, \
                {"price": 2499.5, "quantity": 300, "orders": 3}, {"price": 2499.25, "quantity": 400, "orders": 4}, \
                {"price": 2499.0, "quantity": 500, "orders": 5}], "sell": [\
                {"price": 2501.0, "quantity": 200, "orders": 2}, {"price": 2501.25, "quantity": 400, "orders": 3}, \
                {"price": 2501.5, "quantity": 600, "orders": 4}, {"price": 2501.75, "quantity": 800, "orders": 5}, \
                {"price": 2502.0, "quantity": 1000, "orders": 6}]}}
                """
        )
        let quote = try #require(DhanTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .quote, receivedAt: nil))
        #expect(quote.mode == .quote)
        #expect(quote.depth == nil)
        #expect(quote.openInterest == 4321)
        guard case .full(_, _, let openInterest, _, let depth) = packet else {
            Issue.record("expected a full packet")
            return
        }
        #expect(openInterest == DhanOpenInterestFields(openInterest: 4321, dayHigh: 5000, dayLow: 4000))
        #expect(depth.row(5) == nil)
    }

    @Test("a frame of back-to-back packets yields each kind and skips unknown codes")
    func concatenatedFrame() throws {
        var openInterest = Self.header(code: 5, segment: 2, securityID: 35001)
        openInterest.u32(987_654)
        var previousClose = Self.header(code: 6)
        previousClose.f32(2490.25)
        previousClose.u32(0)
        var acknowledgement = Self.header(code: 0)
        acknowledgement.zeros(4)
        let status = Self.header(code: 7, segment: 0, securityID: 0)
        let bytes =
            hexBytes("02100001450b000000481c4500f15365") + Self.finish(openInterest) + Self.finish(previousClose) + Self.finish(acknowledgement)
            + Self.finish(status) + Self.fullPacket() + hexBytes("320a0001450b00002703")
        let frame = try DhanTickDecoder.decode(frame: ByteBuffer(bytes: bytes))
        #expect(frame.packetCount == 7)
        #expect(frame.skippedPacketCount == 1)
        let packets = Array(frame)
        #expect(packets.map(\.header.responseCode) == [2, 5, 6, 7, 8, 50])
        #expect(packets[1] == .openInterest(DhanPacketHeader(responseCode: 5, exchangeSegment: 2, securityID: 35001), openInterest: 987_654))
        #expect(
            packets[2] == .previousClose(DhanPacketHeader(responseCode: 6, exchangeSegment: 1, securityID: 2885), price: 2490.25, openInterest: 0)
        )
        #expect(packets[5] == .disconnect(DhanPacketHeader(responseCode: 50, exchangeSegment: 1, securityID: 2885), reason: 807))
        #expect(DhanTickDecoder.disconnectReason(807) == "the access token has expired")
        let ticks = packets.compactMap { DhanTickNormalizer.tick(from: $0, instrument: self.reliance, mode: .depth, receivedAt: nil) }
        #expect(ticks.map(\.mode) == [.ltp, .depth])
    }

    @Test("malformed frames throw errors naming the packet and the byte counts")
    func malformedFrames() {
        #expect(throws: BrokerFrameError.truncated("Dhan frame", needed: 8, available: 0)) {
            try DhanTickDecoder.decode(frame: ByteBuffer())
        }
        #expect(throws: BrokerFrameError.truncated("Dhan packet header", needed: 8, available: 5)) {
            try DhanTickDecoder.decode(frame: ByteBuffer(bytes: hexBytes("02100001450b000000481c4500f15365 0210000145")))
        }
        #expect(throws: BrokerFrameError.malformed("Dhan ticker packet", reason: "length field 4 is below the 8-byte header")) {
            try DhanTickDecoder.decode(frame: ByteBuffer(bytes: hexBytes("02040001450b0000")))
        }
        #expect(throws: BrokerFrameError.truncated("Dhan ticker packet", needed: 16, available: 12)) {
            try DhanTickDecoder.decode(frame: ByteBuffer(bytes: hexBytes("02100001450b000000481c45")))
        }
        #expect(throws: BrokerFrameError.truncated("Dhan quote packet", needed: 50, available: 16)) {
            try DhanTickDecoder.decode(frame: ByteBuffer(bytes: hexBytes("04100001450b000000481c4500f15365")))
        }
    }

    @Test("random bytes never crash either decoder")
    func garbage() {
        var generator = SplitMix64(seed: 0xD4A7)
        var assembler = DhanDepthBookAssembler()
        for _ in 0..<5000 {
            let length = Int(generator.next() % 700)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if length >= 3, generator.next() % 2 == 0 {
                bytes[0] = [2, 4, 5, 6, 7, 8, 50][Int(generator.next() % 7)]
                bytes[1] = UInt8(truncatingIfNeeded: generator.next() % 200)
                bytes[2] = 0
            }
            if let frame = try? DhanTickDecoder.decode(frame: ByteBuffer(bytes: bytes)) {
                for packet in frame { _ = DhanTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .depth, receivedAt: nil) }
            }
            if length >= 3, generator.next() % 2 == 0 {
                bytes[0] = 0x4C
                bytes[1] = 0x01
                bytes[2] = [41, 51, 50][Int(generator.next() % 3)]
            }
            if let frame = try? DhanDepthDecoder.decode(frame: ByteBuffer(bytes: bytes)) {
                for packet in frame { _ = assembler.receive(packet) }
            }
        }
    }

    static func depthSide(code: UInt8, securityID: UInt32 = 2885, base: Double) -> [UInt8] {
        var packet = PacketBuilder(.little)
        packet.u16(332)
        packet.u8(code)
        packet.u8(1)
        packet.u32(securityID)
        packet.u32(77)  // sequence
        for level in 0..<20 {
            packet.f64(code == 41 ? base - 0.05 * Double(level) : base + 0.05 * Double(level))
            packet.u32(UInt32(10 * (level + 1)))
            packet.u32(UInt32(level + 1))
        }
        return packet.bytes
    }

    @Test("20-level bid and ask packets decode and pair into one book")
    func twentyLevelDepth() throws {
        let bid = Self.depthSide(code: 41, base: 2500)
        #expect(Array(bid.prefix(12)) == hexBytes("4c012901450b00004d000000"))
        let ask = Self.depthSide(code: 51, base: 2500.5)
        let otherBid = Self.depthSide(code: 41, securityID: 11536, base: 3900)
        let frame = try DhanDepthDecoder.decode(frame: ByteBuffer(bytes: bid + otherBid + ask))
        #expect(frame.packetCount == 3)
        var assembler = DhanDepthBookAssembler()
        var books: [(UInt8, UInt32, MarketDepth)] = []
        for packet in frame {
            if let book = assembler.receive(packet) { books.append((book.exchangeSegment, book.securityID, book.depth)) }
        }
        #expect(books.count == 1)
        #expect(assembler.pendingCount == 1)
        let (segment, securityID, depth) = try #require(books.first)
        #expect(segment == 1)
        #expect(securityID == 2885)
        #expect(depth.buy.count == 20)
        #expect(depth.sell.count == 20)
        #expect(depth.buy[0] == DepthLevel(price: 2500, quantity: 10, orders: 1))
        #expect(depth.sell[19] == DepthLevel(price: 2500.5 + 0.05 * 19, quantity: 200, orders: 20))
        let tick = DhanTickNormalizer.tick(fromTwentyLevelDepth: depth, instrument: self.reliance, receivedAt: referenceClock)
        let json = dataJSON(tick)
        #expect(
            json.hasPrefix(
                #"{"symbol": "RELIANCE", "exchange": "NSE", "mode": 3, "timestamp": 1700000000123, "depth": {"buy": [{"price": 2500.0, "quantity": 10, "orders": 1}, {"price": 2499.95, "quantity": 20, "orders": 2}"#
            )
        )
        #expect(!json.contains("\"ltp\""))
        // The next book starts afresh: one side alone completes nothing.
        #expect(assembler.receive(.asks(try #require(Self.onlyDepthSide(ask)))) == nil)
        assembler.discard(exchangeSegment: 1, securityID: 2885)
        assembler.discard(exchangeSegment: 1, securityID: 11536)
        #expect(assembler.pendingCount == 0)
    }

    static func onlyDepthSide(_ bytes: [UInt8]) -> DhanDepthSide? {
        guard let frame = try? DhanDepthDecoder.decode(frame: ByteBuffer(bytes: bytes)), case .asks(let side)? = Array(frame).first else {
            return nil
        }
        return side
    }

    @Test("20-level frames with short packets throw; unknown codes and disconnects are handled")
    func twentyLevelErrors() throws {
        #expect(throws: BrokerFrameError.truncated("Dhan depth packet with code 41", needed: 332, available: 100)) {
            try DhanDepthDecoder.decode(frame: ByteBuffer(bytes: Array(Self.depthSide(code: 41, base: 1).prefix(100))))
        }
        var short = Array(Self.depthSide(code: 41, base: 1).prefix(100))
        short[0] = 100
        short[1] = 0
        #expect(throws: BrokerFrameError.truncated("Dhan depth packet with code 41", needed: 332, available: 100)) {
            try DhanDepthDecoder.decode(frame: ByteBuffer(bytes: short))
        }
        #expect(throws: BrokerFrameError.malformed("Dhan depth packet with code 41", reason: "length field 4 is below the 12-byte header")) {
            try DhanDepthDecoder.decode(frame: ByteBuffer(bytes: hexBytes("04002901450b00004d000000")))
        }
        let unknown = hexBytes("0c000001450b00004d000000")
        let disconnect = hexBytes("0e003201450b0000000000002703")
        let frame = try DhanDepthDecoder.decode(frame: ByteBuffer(bytes: unknown + disconnect))
        #expect(frame.skippedPacketCount == 1)
        #expect(Array(frame) == [.disconnect(exchangeSegment: 1, securityID: 2885, reason: 807)])
    }

    @Test("requests are Dhan's exact JSON, 100 instruments per message (50 on the depth feed)")
    func requests() {
        let reliance = DhanInstrumentReference(exchangeSegment: .nseEquity, securityID: "2885")
        let nifty = DhanInstrumentReference(exchangeSegment: .index, securityID: "13")
        #expect(
            DhanRequest.subscribeMessages([reliance, nifty], mode: DhanFeedMode(.quote))
                == [
                    #"{"RequestCode":17,"InstrumentCount":2,"InstrumentList":[{"ExchangeSegment":"NSE_EQ","SecurityId":"2885"},{"ExchangeSegment":"IDX_I","SecurityId":"13"}]}"#
                ]
        )
        #expect(
            DhanRequest.unsubscribeMessages([reliance], mode: .full)
                == [#"{"RequestCode":22,"InstrumentCount":1,"InstrumentList":[{"ExchangeSegment":"NSE_EQ","SecurityId":"2885"}]}"#]
        )
        #expect(
            DhanRequest.depthSubscribeMessages([reliance])
                == [#"{"RequestCode":23,"InstrumentCount":1,"InstrumentList":[{"ExchangeSegment":"NSE_EQ","SecurityId":"2885"}]}"#]
        )
        #expect(DhanRequest.depthUnsubscribeMessages([reliance]).first?.hasPrefix(#"{"RequestCode":25,"#) == true)
        #expect([DhanFeedMode(.ltp), DhanFeedMode(.quote), DhanFeedMode(.depth)].map(\.subscribeCode) == [15, 17, 21])
        #expect(DhanFeedMode.ticker.unsubscribeCode == 16)
        let many = (0..<250).map { DhanInstrumentReference(exchangeSegment: .nseDerivatives, securityID: String($0)) }
        let messages = DhanRequest.subscribeMessages(many, mode: .ticker)
        #expect(messages.count == 3)
        #expect(messages[2].hasPrefix(#"{"RequestCode":15,"InstrumentCount":50,"InstrumentList":[{"ExchangeSegment":"NSE_FNO","SecurityId":"200"}"#))
        #expect(DhanRequest.depthSubscribeMessages(Array(many.prefix(120))).count == 3)
        #expect(DhanRequest.disconnect == #"{"RequestCode":12}"#)
        #expect(DhanRequest.supportsTwentyLevelDepth(.nseDerivatives))
        #expect(!DhanRequest.supportsTwentyLevelDepth(.bseEquity))
        #expect(DhanExchangeSegment(name: "MCX_COMM") == .mcxCommodity)
        #expect(DhanExchangeSegment(name: "NSE") == nil)
    }

    @Test("both feeds authenticate in the query string")
    func connection() {
        let credentials = DhanCredentials(clientID: "1100", accessToken: "a.b+c")
        #expect(
            DhanRequest.connection(baseURL: "ws://127.0.0.1:9003", credentials: credentials).url
                == "ws://127.0.0.1:9003?version=2&token=a.b%2Bc&clientId=1100&authType=2"
        )
        #expect(
            DhanRequest.depthConnection(credentials: credentials).url
                == "wss://depth-api-feed.dhan.co/twentydepth?token=a.b%2Bc&clientId=1100&authType=2"
        )
        #expect(DhanRequest.connection(credentials: credentials).headers.isEmpty)
    }
}
