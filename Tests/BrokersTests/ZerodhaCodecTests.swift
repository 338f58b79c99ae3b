import FakeBrokers
import MarketData
import NIOCore
import Testing

@testable import BrokerKit
@testable import ZerodhaFeed

@Suite("Zerodha Kite Ticker codec")
struct ZerodhaCodecTests {
    let reliance = Instrument(exchange: "NSE", symbol: "RELIANCE")
    let nifty = Instrument(exchange: "NSE_INDEX", symbol: "NIFTY")

    /// A quote packet for RELIANCE with the spec's §1.5 values, built field by field.
    static func quotePacket(token: UInt32 = 738_561) -> PacketBuilder {
        var packet = PacketBuilder(.big)
        packet.u32(token)
        packet.u32(250_050)  // LTP
        packet.u32(10)  // last traded quantity
        packet.u32(249_875)  // average traded price
        packet.u32(1_234_567)  // volume
        packet.u32(50_000)  // total buy quantity
        packet.u32(60_000)  // total sell quantity
        packet.u32(248_000)  // open
        packet.u32(251_000)  // high
        packet.u32(247_500)  // low
        packet.u32(249_000)  // close
        return packet
    }

    /// A full packet: the quote, trade time, OI 4321 and a book whose 5th ask has 11 orders.
    static func fullPacket() -> PacketBuilder {
        var packet = self.quotePacket()
        packet.u32(1_699_999_999)  // last trade time
        packet.u32(4321)  // OI
        packet.u32(5000)  // OI day high
        packet.u32(4000)  // OI day low
        packet.u32(1_700_000_001)  // exchange timestamp
        for level in 0..<5 {  // bids, best first
            packet.u32(UInt32(100 * (level + 1)))
            packet.u32(UInt32(250_000 - 5 * level))
            packet.i16(Int16(level + 1))
            packet.zeros(2)
        }
        for level in 0..<5 {  // asks, best first
            packet.u32(UInt32(200 * (level + 1)))
            packet.u32(UInt32(250_100 + 5 * level))
            packet.i16(level == 4 ? 11 : Int16(level + 2))
            packet.zeros(2)
        }
        return packet
    }

    static func frame(_ packets: [[UInt8]]) -> ByteBuffer {
        var frame = PacketBuilder(.big)
        frame.u16(UInt16(packets.count))
        for packet in packets {
            frame.u16(UInt16(packet.count))
            frame.bytes += packet
        }
        return frame.buffer
    }

    func onlyPacket(_ frame: ByteBuffer) throws -> ZerodhaPacket {
        let packets = Array(try ZerodhaTickDecoder.decode(frame: frame))
        try #require(packets.count == 1)
        return packets[0]
    }

    @Test("the §1.5 quote frame decodes to its fields and normalises to the agent's quote JSON")
    func quoteWorkedExample() throws {
        let hex = "0001002c000b45010003d0c20000000a0003d0130012d6870000c3500000ea600003c8c00003d4780003c6cc0003cca8"
        #expect(Self.frame([Self.quotePacket().bytes]) == hexBuffer(hex))
        let packet = try self.onlyPacket(hexBuffer(hex))
        let expected = ZerodhaQuotePacket(
            instrumentToken: 738_561,
            lastPrice: 250_050,
            lastQuantity: 10,
            averagePrice: 249_875,
            volume: 1_234_567,
            totalBuyQuantity: 50_000,
            totalSellQuantity: 60_000,
            open: 248_000,
            high: 251_000,
            low: 247_500,
            close: 249_000
        )
        #expect(packet == .quote(expected))
        let tick = ZerodhaTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .quote, receivedAt: referenceClock)
        #expect(
            dataJSON(tick)
                == """
                {"symbol": "RELIANCE", "exchange": "NSE", "mode": 2, "ltp": 2500.5, "timestamp": 1700000000123, "open": 2480.0, \
                "high": 2510.0, "low": 2475.0, "close": 2490.0, "volume": 1234567, "last_quantity": 10, "last_trade_quantity": 10, \
                "average_price": 2498.75, "avg_trade_price": 2498.75, "total_buy_quantity": 50000, "total_sell_quantity": 60000, \
                "change": 10.5, "change_percent": 0.42}
                """
        )
    }

    @Test("a quote packet for an LTP subscriber keeps only the price; for a Depth subscriber it stays a quote")
    func quoteAtOtherModes() throws {
        let packet = try self.onlyPacket(Self.frame([Self.quotePacket().bytes]))
        let ltp = ZerodhaTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .ltp, receivedAt: referenceClock)
        #expect(dataJSON(ltp) == #"{"symbol": "RELIANCE", "exchange": "NSE", "mode": 1, "ltp": 2500.5, "timestamp": 1700000000123}"#)
        let depth = ZerodhaTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .depth, receivedAt: nil)
        #expect(depth.mode == .quote)
        #expect(depth.depth == nil)
        #expect(depth.timestamp == nil)
    }

    @Test("the §1.5 LTP frame gives the LTP payload without a made-up trade time")
    func ltpWorkedExample() throws {
        let packet = try self.onlyPacket(hexBuffer("00010008000b45010003d0c2"))
        #expect(packet == .ltp(ZerodhaLTPPacket(instrumentToken: 738_561, lastPrice: 250_050)))
        let tick = ZerodhaTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .depth, receivedAt: referenceClock)
        #expect(dataJSON(tick) == #"{"symbol": "RELIANCE", "exchange": "NSE", "mode": 1, "ltp": 2500.5, "timestamp": 1700000000123}"#)
    }

    @Test("the §1.5 index frame keeps the index OHLC and Kite's own change")
    func indexQuoteWorkedExample() throws {
        let packet = try self.onlyPacket(hexBuffer("0001001c0003e909001dc167001de840001d9a20001dada8001db96000000807"))
        #expect(
            packet
                == .index(
                    ZerodhaIndexPacket(
                        instrumentToken: 256_265,
                        lastPrice: 1_950_055,
                        high: 1_960_000,
                        low: 1_940_000,
                        open: 1_945_000,
                        close: 1_948_000,
                        change: 2055,
                        exchangeTimestamp: nil
                    )
                )
        )
        let tick = ZerodhaTickNormalizer.tick(from: packet, instrument: self.nifty, mode: .quote, receivedAt: referenceClock)
        #expect(
            dataJSON(tick)
                == """
                {"symbol": "NIFTY", "exchange": "NSE_INDEX", "mode": 2, "ltp": 19500.55, "timestamp": 1700000000123, "open": 19450.0, \
                "high": 19600.0, "low": 19400.0, "close": 19480.0, "change": 20.55, "change_percent": 0.11}
                """
        )
    }

    @Test("index packets are delivered at the subscribed mode, full ones with their exchange time")
    func indexFull() throws {
        var packet = PacketBuilder(.big)
        packet.bytes = hexBytes("0003e909001dc167001de840001d9a20001dada8001db960fffff7f9")
        packet.u32(1_700_000_002)
        let decoded = try self.onlyPacket(Self.frame([packet.bytes]))
        guard case .index(let index) = decoded else {
            Issue.record("expected an index packet, got \(decoded)")
            return
        }
        #expect(index.exchangeTimestamp == 1_700_000_002)
        #expect(index.change == -2055)
        let depth = ZerodhaTickNormalizer.tick(from: decoded, instrument: self.nifty, mode: .depth, receivedAt: nil)
        #expect(depth.mode == .depth)
        #expect(depth.depth == nil)
        #expect(depth.change == -20.55)
        #expect(depth.lastTradeTime == 1_700_000_002)
        let ltp = ZerodhaTickNormalizer.tick(from: decoded, instrument: self.nifty, mode: .ltp, receivedAt: nil)
        #expect(dataJSON(ltp) == #"{"symbol": "NIFTY", "exchange": "NSE_INDEX", "mode": 1, "ltp": 19500.55, "ltt": 1700000002}"#)
    }

    @Test("a full packet reads OI from bytes 48-52 and the trade time from 44-48, with a 5+5 book")
    func fullPacket() throws {
        let bytes = Self.fullPacket().bytes
        #expect(bytes.count == 184)
        let packet = try self.onlyPacket(Self.frame([bytes]))
        guard case .full(let full) = packet else {
            Issue.record("expected a full packet, got \(packet)")
            return
        }
        #expect(full.openInterest == 4321)
        #expect(full.openInterestDayHigh == 5000)
        #expect(full.openInterestDayLow == 4000)
        #expect(full.exchangeTimestamp == 1_700_000_001)
        #expect(full.depth.ask(4) == ZerodhaDepthLevel(quantity: 1000, price: 250_120, orders: 11))
        #expect(full.depth.bid(5) == nil)
        let tick = ZerodhaTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .depth, receivedAt: referenceClock)
        #expect(
            dataJSON(tick)
                == """
                {"symbol": "RELIANCE", "exchange": "NSE", "mode": 3, "ltp": 2500.5, "ltt": 1699999999, "timestamp": 1700000000123, \
                "open": 2480.0, "high": 2510.0, "low": 2475.0, "close": 2490.0, "volume": 1234567, "last_quantity": 10, \
                "last_trade_quantity": 10, "average_price": 2498.75, "avg_trade_price": 2498.75, "total_buy_quantity": 50000, \
                "total_sell_quantity": 60000, "oi": 4321, "change": 10.5, "change_percent": 0.42, "depth": {"buy": [\
                {"price": 2500.0, "quantity": 100, "orders": 1}, {"price": 2499.95, "quantity": 200, "orders": 2}, \
                {"price": 2499.9, "quantity": 300, "orders": 3}, {"price": 2499.85, "quantity": 400, "orders": 4}, \
                {"price": 2499.8, "quantity": 500, "orders": 5}], "sell": [\
                {"price": 2501.0, "quantity": 200, "orders": 2}, {"price": 2501.05, "quantity": 400, "orders": 3}, \
                {"price": 2501.1, "quantity": 600, "orders": 4}, {"price": 2501.15, "quantity": 800, "orders": 5}, \
                {"price": 2501.2, "quantity": 1000, "orders": 11}]}}
                """
        )
    }

    @Test("a full packet for Quote and LTP subscribers drops the book, and for LTP everything but price and time")
    func fullAtLowerModes() throws {
        let packet = try self.onlyPacket(Self.frame([Self.fullPacket().bytes]))
        let quote = ZerodhaTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .quote, receivedAt: nil)
        #expect(quote.mode == .quote)
        #expect(quote.depth == nil)
        #expect(quote.openInterest == 4321)
        #expect(quote.volume == 1_234_567)
        let ltp = ZerodhaTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .ltp, receivedAt: nil)
        #expect(dataJSON(ltp) == #"{"symbol": "RELIANCE", "exchange": "NSE", "mode": 1, "ltp": 2500.5, "ltt": 1699999999}"#)
    }

    @Test("currency segments use Kite's divisors: 1e7 for CDS, 1e4 for BCD")
    func currencyDivisors() throws {
        var cds = PacketBuilder(.big)
        cds.u32(0x0012_3403)  // segment 3
        cds.u32(832_500_000)
        var bcd = PacketBuilder(.big)
        bcd.u32(0x0012_3406)  // segment 6
        bcd.u32(832_500)
        let packets = Array(try ZerodhaTickDecoder.decode(frame: Self.frame([cds.bytes, bcd.bytes])))
        let usdinr = Instrument(exchange: "CDS", symbol: "USDINR24DECFUT")
        #expect(packets.map { ZerodhaTickNormalizer.tick(from: $0, instrument: usdinr, mode: .ltp, receivedAt: nil).ltp } == [83.25, 83.25])
    }

    @Test("a batched frame yields its packets in order and skips undocumented sizes")
    func multiPacketFrame() throws {
        var ltp = PacketBuilder(.big)
        ltp.u32(256_265)
        ltp.u32(1_950_055)
        let unknown = [UInt8](repeating: 0xAB, count: 20)
        let frame = try ZerodhaTickDecoder.decode(
            frame: Self.frame([ltp.bytes, Self.quotePacket(token: 408_065).bytes, unknown, Self.fullPacket().bytes])
        )
        #expect(!frame.isHeartbeat)
        #expect(frame.packetCount == 4)
        #expect(frame.skippedPacketCount == 1)
        #expect(frame.map(\.instrumentToken) == [256_265, 408_065, 738_561])
        guard case .full = Array(frame)[2] else {
            Issue.record("third packet should be full")
            return
        }
    }

    @Test("a 1-byte frame is a heartbeat with no packets; an empty packet list is valid")
    func heartbeat() throws {
        let heartbeat = try ZerodhaTickDecoder.decode(frame: ByteBuffer(bytes: [0x00]))
        #expect(heartbeat.isHeartbeat)
        #expect(Array(heartbeat).isEmpty)
        let empty = try ZerodhaTickDecoder.decode(frame: ByteBuffer(bytes: [0x00, 0x00]))
        #expect(!empty.isHeartbeat)
        #expect(Array(empty).isEmpty)
    }

    @Test("a frame reading from a non-zero reader index decodes the same packets")
    func readerIndexRespected() throws {
        var buffer = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF])
        buffer.moveReaderIndex(forwardBy: 3)
        buffer.writeBytes(hexBytes("00010008000b45010003d0c2"))
        #expect(Array(try ZerodhaTickDecoder.decode(frame: buffer)) == [.ltp(ZerodhaLTPPacket(instrumentToken: 738_561, lastPrice: 250_050))])
    }

    @Test("truncated and oversized frames throw errors that say what was wrong")
    func truncatedFrames() {
        #expect(throws: BrokerFrameError.truncated("Kite frame", needed: 2, available: 0)) {
            try ZerodhaTickDecoder.decode(frame: ByteBuffer())
        }
        // Two packets announced, one present.
        #expect(throws: BrokerFrameError.truncated("Kite frame header of packet 2 of 2", needed: 14, available: 12)) {
            try ZerodhaTickDecoder.decode(frame: hexBuffer("00020008000b45010003d0c2"))
        }
        // A 44-byte quote announced, 8 bytes present.
        #expect(throws: BrokerFrameError.truncated("Kite packet 1 of 1", needed: 48, available: 12)) {
            try ZerodhaTickDecoder.decode(frame: hexBuffer("0001002c000b45010003d0c2"))
        }
        #expect(throws: BrokerFrameError.trailingBytes("Kite frame", count: 3)) {
            try ZerodhaTickDecoder.decode(frame: hexBuffer("00010008000b45010003d0c2 aabbcc"))
        }
        #expect(
            BrokerFrameError.truncated("Kite packet 1 of 1", needed: 48, available: 12).description
                == "Kite packet 1 of 1 is truncated: needs 48 bytes, has 12"
        )
    }

    @Test("random bytes never crash the decoder: each frame throws or yields well-formed packets")
    func garbage() {
        var generator = SplitMix64(seed: 0x5EED)
        for _ in 0..<5000 {
            let length = Int(generator.next() % 400)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if length >= 2, generator.next() % 2 == 0 {
                bytes[0] = 0
                bytes[1] = UInt8(generator.next() % 4)
            }
            guard let frame = try? ZerodhaTickDecoder.decode(frame: ByteBuffer(bytes: bytes)) else { continue }
            for packet in frame {
                _ = ZerodhaTickNormalizer.tick(from: packet, instrument: self.reliance, mode: .depth, receivedAt: nil)
            }
        }
    }

    @Test("requests are Kite's exact JSON, batched at 200 tokens with a mode message after each subscribe")
    func requests() {
        #expect(ZerodhaRequest.subscribe([738_561, 256_265]) == #"{"a":"subscribe","v":[738561,256265]}"#)
        #expect(ZerodhaRequest.mode(.full, tokens: [738_561]) == #"{"a":"mode","v":["full",[738561]]}"#)
        #expect(ZerodhaRequest.unsubscribe([738_561]) == #"{"a":"unsubscribe","v":[738561]}"#)
        #expect(ZerodhaMode(.ltp) == .ltp)
        #expect(ZerodhaMode(.quote) == .quote)
        #expect(ZerodhaMode(.depth) == .full)
        let tokens = (1...450).map { UInt32($0) }
        let messages = ZerodhaRequest.subscribeMessages(tokens, mode: .quote)
        #expect(messages.count == 6)
        #expect(messages[0] == ZerodhaRequest.subscribe(Array(tokens[0..<200])))
        #expect(messages[1] == ZerodhaRequest.mode(.quote, tokens: Array(tokens[0..<200])))
        #expect(messages[5] == ZerodhaRequest.mode(.quote, tokens: Array(tokens[400..<450])))
        #expect(ZerodhaRequest.unsubscribeMessages(tokens).count == 3)
        #expect(ZerodhaRequest.subscribeMessages([], mode: .ltp).isEmpty)
    }

    @Test("the connection URL carries the API key and access token, percent-encoded, plus the Kite version header")
    func connection() {
        let credentials = ZerodhaCredentials(apiKey: "kitekey", accessToken: "tok+en/=")
        let local = ZerodhaRequest.connection(baseURL: "ws://127.0.0.1:9001", credentials: credentials)
        #expect(local.url == "ws://127.0.0.1:9001?api_key=kitekey&access_token=tok%2Ben%2F%3D")
        #expect(local.headers == [BrokerHeader("X-Kite-Version", "3")])
        #expect(ZerodhaRequest.connection(credentials: credentials).url.hasPrefix("wss://ws.kite.trade?api_key=kitekey&"))
        #expect(ZerodhaRequest.connection(baseURL: "ws://h/p?x=1", credentials: credentials).url.hasPrefix("ws://h/p?x=1&api_key="))
    }
}
