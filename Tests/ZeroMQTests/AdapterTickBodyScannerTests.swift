import BrokerKit
import MarketData
import NIOCore
import Testing
import WireJSON
import ZeroMQ

@testable import OpenAlgoBusFeed

/// The direct body scanner must make exactly the tick the generic path (a parsed `JSONObject`)
/// makes, and must take the common adapter bodies itself.
@Suite("ZeroMQ body scanner")
struct AdapterTickBodyScannerTests {
    static let instrument = Instrument(exchange: "NSE", symbol: "SBIN")

    /// What the generic path makes of a body: the reference behaviour the scanner must match.
    static func generic(_ body: String, mode: SubscriptionMode) -> Result<Tick, ZeroMQTickDecoder.Failure> {
        do {
            guard case .object(let object) = try JSONParser.parse(body) else { return .failure(.notAnObject) }
            return .success(ZeroMQTickDecoder.tick(instrument: Self.instrument, mode: mode, fields: object))
        } catch {
            return .failure(.invalidJSON(error))
        }
    }

    /// What the decoder the feed uses makes of a body (the scanner first).
    static func decoded(_ body: String, mode: SubscriptionMode) -> Result<Tick, ZeroMQTickDecoder.Failure> {
        Result { () throws(ZeroMQTickDecoder.Failure) in
            try ZeroMQTickDecoder.tick(instrument: Self.instrument, mode: mode, body: ByteBuffer(string: body))
        }
    }

    /// The scanner alone: `nil` when it leaves the body to the generic path.
    static func scanned(_ body: String, mode: SubscriptionMode) -> Tick? {
        ByteBuffer(string: body).withUnsafeReadableBytes { AdapterTickBodyScanner.tick(instrument: Self.instrument, mode: mode, body: $0) }
    }

    /// Equal down to the bits of every double (`-0.0`, `NaN`), and writing the same `data` bytes.
    static func identical(_ lhs: Result<Tick, ZeroMQTickDecoder.Failure>, _ rhs: Result<Tick, ZeroMQTickDecoder.Failure>) -> Bool {
        switch (lhs, rhs) {
        case (.success(let left), .success(let right)):
            return String(reflecting: left) == String(reflecting: right) && Self.written(left) == Self.written(right)
        case (.failure(let left), .failure(let right)):
            return left == right
        default:
            return false
        }
    }

    static func written(_ tick: Tick) -> String {
        var buffer = ByteBuffer()
        MarketDataEnvelope.writeData(of: tick, into: &buffer)
        return String(buffer: buffer)
    }

    /// Bodies the adapters publish (Angel, Zerodha, Dhan and the other samples of the ZeroMQ tests),
    /// and the value shapes JSON allows: the scanner must read every one of them itself.
    static let scannedBodies: [String] = [
        // Angel: LTP, Quote, Depth.
        #"{"ltp": 1424.05, "ltt": 1746171226000, "symbol": "RELIANCE", "exchange": "NSE", "mode": 1, "timestamp": 1795737969836}"#,
        #"{"ltp": 1424.05, "ltt": 1746171226000, "volume": 100000, "open": 1415.0, "high": 1432.5, "low": 1408.0, "close": 1418.0, "last_quantity": 50, "average_price": 1420.12, "total_buy_quantity": 5000, "total_sell_quantity": 7000, "symbol": "RELIANCE", "exchange": "NSE", "mode": 2, "timestamp": 1795737969836}"#,
        #"{"ltp": 1424.05, "ltt": 1746171226000, "volume": 100000, "open": 1415.0, "high": 1432.5, "low": 1408.0, "close": 1418.0, "last_quantity": 50, "oi": 0, "upper_circuit": 1560.0, "lower_circuit": 1276.0, "depth": {"buy": [{"price": 1423.9, "quantity": 50, "orders": 2}, {"price": 1423.8500000000001, "quantity": 100, "orders": 3}], "sell": [{"price": 1424.1, "quantity": 50, "orders": 2}, {"price": 1424.1499999999999, "quantity": 100, "orders": 3}]}, "symbol": "RELIANCE", "exchange": "NSE", "mode": 3, "timestamp": 1795737969836}"#,
        // Zerodha: string modes, extra keys, OI fields, a 5-level book.
        #"{"symbol": "NIFTY", "exchange": "NSE_INDEX", "mode": "ltp", "ltp": 24350.55, "ltt": 1746171226, "timestamp": 1795737969836123457}"#,
        #"{"ltp": 250.5, "oi": 4321, "depth": {"buy": [{"price": 250.45, "quantity": 100, "orders": 2}], "sell": [{"price": 250.55, "quantity": 75, "orders": 1}]}, "timestamp": 1795737969836000002, "depth_level": 5}"#,
        #"{"mode": "full", "ltp": 800, "oi": 12, "oi_day_high": 20, "oi_day_low": 5, "change": 1.25, "exchange_timestamp": 1746171226, "depth": {"buy": [], "sell": []}}"#,
        // Dhan: prev_oi, bid/ask, circuits, a float volume kept as sent.
        #"{"ltp": 101.5, "prev_oi": 100, "oi": 120, "bid": 101.45, "ask": 101.55, "bid_qty": 10, "ask_qty": 20, "volume": 100.0, "upper_circuit": 111.6, "lower_circuit": 91.35}"#,
        // Samples of the decoder tests.
        #"{"ltp": 1424.05, "ltt": 1746171226000, "volume": 100000, "open": 1415, "high": 1432.5, "low": 1408.0, "close": 1418.0, "last_quantity": 50, "average_price": 1420.12, "total_buy_quantity": 5000, "total_sell_quantity": 7000, "oi": null, "price_change": 6.05, "exchange_timestamp": 1746171226, "symbol": "RELIANCE", "exchange": "NSE", "mode": 2, "timestamp": 1795737969836}"#,
        #"{"ltp": 800, "volume": 100.0, "timestamp": 123456789012345678901234567890, "ltt": "09:15:00"}"#,
        #"{"depth": {"buy": [{"price": 1, "quantity": 2, "orders": 3, "source": "x"}], "sell": []}, "timestamp": 5}"#,
        #"{"last_quantity": 5, "last_trade_quantity": null, "avg_trade_price": 1.5, "average_price": "n/a", "timestamp": 5}"#,
        #"{"ltp": 10.5, "change": 0.5, "change_percent": 5, "timestamp": 5}"#,
        #"{"ltp": 10.5, "change": 0.25, "change_percent": null, "timestamp": 5}"#,
        #"{"ltp": 10.5, "close": 10.0, "change": null, "timestamp": 5}"#,
        #"{"change_percent": "x", "ltp": 10.5, "close": 10.0, "change": 1e-1}"#,
        #"{"ltp": 12150.5, "timestamp": 1795737969836999999, "symbol": "SOL_INR", "exchange": "CRYPTO", "mode": 1}"#,
        // Escapes and Unicode in values and unknown keys; Unicode in topic-taken values.
        #"{"ltp": 1, "note": "a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\ud800", "name_₹": "₹ 100", "symbol": "S\u00e9", "exchange": "ÉX"}"#,
        // Numbers: signs, exponents, zeros, the edges of Int and of exact doubles.
        #"{"ltp": -0.0, "open": -0, "high": 1e2, "low": 1E-3, "close": 2.5e+2, "bid": -12.75, "ask": 0e0, "upper_circuit": 123456789012345.6, "lower_circuit": 0.000001}"#,
        #"{"ltp": 9007199254740992, "open": 9007199254740993, "high": -9007199254740992, "volume": 9223372036854775807, "oi": -9223372036854775808, "prev_oi": 9223372036854775808, "timestamp": -99999999999999999999}"#,
        #"{"ltp": 1.7976931348623157e308, "open": 1e400, "high": 5e-324, "low": 1e-400, "close": 0.30000000000000004, "bid": 123456789.12345678901234, "ask": 1.00000000000000000000001}"#,
        #"{"ltp": NaN, "open": Infinity, "high": -Infinity, "volume": 1.5, "ltt": 1e3, "timestamp": true, "oi": false, "bid_qty": [1], "ask_qty": {"a": 1}}"#,
        // Missing fields, nothing at all, nested extras.
        "{}",
        #"{"timestamp": 5}"#,
        #"{"extra": {"nested": [1, 2.5, "x", null, true, {"deep": []}]}, "ltp": 3}"#,
        // Books: keys in any order, integer prices, a price beyond 2^53, an empty side, not a book.
        #"{"depth": {"sell": [{"orders": 1, "quantity": 75, "price": 250}], "buy": [{"quantity": 100, "price": 250.45, "orders": 2}]}}"#,
        #"{"depth": {"buy": [{"price": 9007199254740993, "quantity": 1, "orders": 1}], "sell": []}}"#,
        #"{"depth": {"buy": [{"price": 1.5, "quantity": 1.0, "orders": 1}], "sell": []}}"#,
        #"{"depth": {"buy": [], "sell": [], "extra": []}}"#,
        #"{"depth": {"buy": []}}"#,
        #"{"depth": null, "ltp": 1}"#,
        #"{"depth": {"buy": [{"price": 1, "quantity": 2, "orders": 3}, 7], "sell": []}}"#,
        #"{"depth": {"buy": [{"price": 1, "price": 2, "quantity": 2, "orders": 3}], "sell": []}}"#,
        // Compact JSON and odd whitespace.
        #"{"ltp":1424.05,"volume":5,"depth":{"buy":[{"price":1.5,"quantity":1,"orders":0}],"sell":[]},"x":[1,2]}"#,
        " \n\t{ \"ltp\" :\t1.5 ,\r\n\"depth\" : { \"buy\" : [ { \"price\" : 2 , \"quantity\" : 1 , \"orders\" : 0 } ] , \"sell\" : [ ] } , \"y\" : null } \n",
    ]

    /// Bodies the scanner leaves to the generic path (which merges repeated keys, decodes escaped
    /// keys, and names what is wrong with invalid JSON).
    static let declinedBodies: [String] = [
        #"{"ltp": 1, "ltp": null}"#,
        #"{"x": 1, "ltp": 2, "x": 3}"#,
        #"{"change": 1, "ltp": 5, "close": 4, "change": 2}"#,
        #"{"\u006ctp": 1.5}"#,
        #"{"a\nb": 1}"#,
        "", " ", "[1, 2]", "\"ltp\"", "null", "12",
        #"{"ltp": 1"#, #"{"ltp": 1,}"#, #"{"ltp": 01}"#, #"{"ltp": 1.}"#, #"{"ltp": -}"#, #"{"ltp": 1e}"#, #"{"ltp": .5}"#,
        #"{"ltp": +1}"#, #"{"ltp": 1} x"#, #"{'ltp': 1}"#, #"{"ltp" 1}"#, #"{"ltp": tru}"#, #"{"ltp": "\x"}"#, #"{"ltp": "a"#,
        "{\"ltp\": \"a\u{01}\"}", "{\"a\u{01}\": 1}", #"{"depth": {"buy": [}}"#, #"{"symbol": "abc}"#, #"{"ltp": 1 "open": 2}"#,
    ]

    @Test("the scanner reads the adapters' bodies and every JSON value shape itself, into exactly the generic path's tick")
    func scannedBodiesMatchTheGenericPath() {
        for body in Self.scannedBodies {
            for mode in SubscriptionMode.allCases {
                #expect(Self.scanned(body, mode: mode) != nil, "the scanner declined \(body)")
                #expect(Self.identical(Self.decoded(body, mode: mode), Self.generic(body, mode: mode)), "\(mode) \(body)")
            }
        }
    }

    @Test("every modelled key fills its own field, on both paths")
    func everyModelledKeyFillsItsField() throws {
        let body = """
            {"symbol": "X", "exchange": "Y", "mode": 9, "ltp": 1.5, "ltt": 2, "timestamp": 3, "open": 4.5, "high": 5.5, "low": 6.5, \
            "close": 7.5, "volume": 8, "last_trade_quantity": 9, "avg_trade_price": 10.5, "total_buy_quantity": 11, \
            "total_sell_quantity": 12, "bid": 13.5, "ask": 14.5, "bid_qty": 15, "ask_qty": 16, "oi": 17, "prev_oi": 18, \
            "upper_circuit": 19.5, "lower_circuit": 20.5, "change": 21.5, "change_percent": 22.5, \
            "depth": {"buy": [{"price": 23.5, "quantity": 24, "orders": 25}], "sell": []}}
            """
        var expected = Tick(instrument: Self.instrument, mode: .depth)
        expected.ltp = 1.5
        expected.lastTradeTime = 2
        expected.timestamp = 3
        expected.open = 4.5
        expected.high = 5.5
        expected.low = 6.5
        expected.close = 7.5
        expected.volume = 8
        expected.lastQuantity = 9
        expected.averagePrice = 10.5
        expected.totalBuyQuantity = 11
        expected.totalSellQuantity = 12
        expected.bid = 13.5
        expected.ask = 14.5
        expected.bidQuantity = 15
        expected.askQuantity = 16
        expected.openInterest = 17
        expected.previousOpenInterest = 18
        expected.upperCircuit = 19.5
        expected.lowerCircuit = 20.5
        expected.change = 21.5
        expected.changePercent = 22.5
        expected.depth = MarketDepth(buy: [DepthLevel(price: 23.5, quantity: 24, orders: 25)], sell: [])
        #expect(Self.scanned(body, mode: .depth) == expected)
        #expect(try Self.generic(body, mode: .depth).get() == expected)
        let otherSpellings = #"{"last_quantity": 1, "average_price": 2.5}"#
        #expect(Self.scanned(otherSpellings, mode: .quote)?.lastQuantity == 1)
        #expect(Self.scanned(otherSpellings, mode: .quote)?.averagePrice == 2.5)
    }

    @Test("repeated keys, escaped keys and invalid JSON go to the generic path, which decides as before")
    func declinedBodiesGoToTheGenericPath() {
        for body in Self.declinedBodies {
            #expect(Self.scanned(body, mode: .depth) == nil, "the scanner took \(body)")
            #expect(Self.identical(Self.decoded(body, mode: .depth), Self.generic(body, mode: .depth)), "\(body)")
        }
        guard case .success(let tick) = Self.decoded(#"{"x": 1, "ltp": 2, "x": 3}"#, mode: .ltp) else {
            Issue.record("not a tick")
            return
        }
        #expect(tick.extraFields == [Tick.ExtraField(key: "x", value: 3)], "a repeated key keeps its first place and its last value")
    }

    @Test("malformed bodies are skipped as invalid JSON and counted, bodies that are not objects as such")
    func malformedBodiesAreSkippedAndCounted() {
        var decoder = ZeroMQBusDecoder()
        let malformed = [#"{"ltp": 1,}"#, #"{"ltp": 01}"#, #"{"ltp": 1.}"#, #"{"ltp": -}"#, #"{"ltp": 1} x"#, "{\"a\u{01}\": 1}", #"{"ltp": "a"#]
        for body in malformed {
            let outcome = decoder.decode(ZeroMQMessage(frames: [ByteBuffer(string: "NSE_SBIN_DEPTH"), ByteBuffer(string: body)]))
            #expect(outcome == .skipped(.invalidJSON), "\(body)")
        }
        #expect(decoder.decode(ZeroMQMessage(frames: [ByteBuffer(string: "NSE_SBIN_LTP"), ByteBuffer(string: " [] ")])) == .skipped(.notAnObject))
        #expect(decoder.statistics.skipped == [.invalidJSON: UInt64(malformed.count), .notAnObject: 1])
        #expect(decoder.statistics.messages == UInt64(malformed.count) + 1)
    }

    @Test("decimal literals convert to the double Double(String) gives, in place or through strtod")
    func numbersConvertExactly() {
        var generator = SplitMix64(seed: 0x5EED)
        var literals = ["0.1", "0.3", "1424.05", "1423.8500000000001", "9007199254740993.0", "4.35", "2.2250738585072014e-308", "1e23", "8.5e-15"]
        for _ in 0..<20_000 {
            literals.append(RandomBodies.decimalLiteral(&generator))
        }
        for literal in literals {
            let body = #"{"ltp": \#(literal)}"#
            guard let tick = Self.scanned(body, mode: .ltp), let expected = Double(literal) else {
                Issue.record("\(literal) was not read")
                continue
            }
            #expect(tick.ltp?.bitPattern == expected.bitPattern, "\(literal)")
        }
    }

    @Test("random bodies, whole and damaged: the decoder makes exactly what the generic path makes")
    func randomBodiesMatchTheGenericPath() {
        var generator = SplitMix64(seed: 7)
        var scannedCount = 0
        let bodies = 3_000
        for round in 0..<bodies {
            var body = RandomBodies.body(&generator)
            if round % 5 == 4 { body = RandomBodies.damaged(body, &generator) }
            let mode = SubscriptionMode.allCases[Int(generator.next() % 3)]
            if Self.scanned(body, mode: mode) != nil { scannedCount += 1 }
            #expect(Self.identical(Self.decoded(body, mode: mode), Self.generic(body, mode: mode)), "\(mode) \(body)")
        }
        #expect(scannedCount > bodies / 2, "the scanner took only \(scannedCount) of \(bodies) bodies")
    }

    @Test("topics read as bytes tell the same as topics read as text")
    func topicBytesMatchTopicText() {
        var generator = SplitMix64(seed: 11)
        let parts = [
            "NSE", "INDEX", "BSE", "GLOBAL", "MCX", "NIFTY", "TCS:50", "", "LTP", "ltp", "Quote", "DEPTH", " depth\t", "FULL", "orders",
            "positions", "margins", "CACHE", "INVALIDATE", "é", "\r\n", "\u{0B}LTP\u{0C}", "\u{1F}LTP",
        ]
        var topics = ["", "_", "__", "NSE_SBIN_LTP", "NSE_INDEX_NIFTY_LTP", "GLOBAL_INDEX__QUOTE", "NSE_INDEX_LTP", "CACHE_INVALIDATE", "_orders"]
        for _ in 0..<5_000 {
            let count = Int(generator.next() % 6)
            topics.append((0..<count).map { _ in parts[Int(generator.next() % UInt64(parts.count))] }.joined(separator: "_"))
        }
        for topic in topics {
            let fromBytes = ByteBuffer(string: topic).withUnsafeReadableBytes { ZeroMQTopic(utf8: $0) }
            #expect(fromBytes == ZeroMQTopic(topic), "\(topic.debugDescription)")
        }
        #expect([UInt8]([0x4E, 0xFF, 0x5F]).withUnsafeBytes { ZeroMQTopic(utf8: $0) } == nil, "bytes that are not UTF-8")
    }
}

/// Random adapter-like bodies: modelled and unknown keys with values of every JSON shape, books,
/// `json.dumps`, compact or odd whitespace.
enum RandomBodies {
    static let keys = [
        "symbol", "exchange", "mode", "ltp", "ltt", "timestamp", "open", "high", "low", "close", "volume", "last_quantity",
        "last_trade_quantity", "average_price", "avg_trade_price", "total_buy_quantity", "total_sell_quantity", "bid", "ask", "bid_qty",
        "ask_qty", "oi", "prev_oi", "upper_circuit", "lower_circuit", "change", "change_percent", "depth", "price_change", "oi_high",
        "exchange_timestamp", "note", "é_key", "lt", "ltpx", "Ltp",
    ]

    static func pick<T>(_ values: [T], _ generator: inout SplitMix64) -> T {
        values[Int(generator.next() % UInt64(values.count))]
    }

    static func decimalLiteral(_ generator: inout SplitMix64) -> String {
        let digits = Int(generator.next() % 20) + 1
        var text = String(generator.next() % 9 + 1)
        for _ in 1..<digits { text += String(generator.next() % 10) }
        let point = Int(generator.next() % UInt64(digits + 1))
        if point >= 1 && point < digits { text.insert(".", at: text.index(text.startIndex, offsetBy: point)) }
        if generator.next() % 4 == 0 { text += pick(["e", "E", "e+", "e-", "E-"], &generator) + String(generator.next() % 40) }
        if !text.contains("."), !text.contains("e"), !text.contains("E") { text += ".0" }
        if generator.next() % 3 == 0 { text = "0.000" + text.replacing(".", with: "") }
        return generator.next() % 4 == 0 ? "-" + text : text
    }

    static func number(_ generator: inout SplitMix64) -> String {
        switch generator.next() % 6 {
        case 0: return String(Int64(bitPattern: generator.next()) >> (generator.next() % 64))
        case 1: return String(generator.next() % 100_000)
        case 2: return "\(Double(generator.next() % 10_000_000) / 100)"
        case 3: return self.decimalLiteral(&generator)
        case 4: return pick(["123456789012345678901234567890", "-0", "0", "9007199254740993", "-9223372036854775808", "1e400", "NaN"], &generator)
        default: return "\(Double(bitPattern: generator.next() >> 2))"
        }
    }

    static func value(_ generator: inout SplitMix64, depth: Int = 0) -> String {
        switch generator.next() % 10 {
        case 0: return pick(["null", "true", "false"], &generator)
        case 1: return pick([#""RELIANCE""#, #""a\"b\u00e9\n""#, #""₹""#, #""""#, #""\ud83d\ude00""#], &generator)
        case 2 where depth < 2:
            return "[" + (0..<Int(generator.next() % 3)).map { _ in self.value(&generator, depth: depth + 1) }.joined(separator: ", ") + "]"
        case 3 where depth < 2: return #"{"k": \#(self.value(&generator, depth: depth + 1))}"#
        default: return self.number(&generator)
        }
    }

    static func book(_ generator: inout SplitMix64) -> String {
        func levels() -> String {
            "["
                + (0..<Int(generator.next() % 6)).map { _ in
                    var entries = [
                        #""price": \#(number(&generator))"#, #""quantity": \#(generator.next() % 1000)"#, #""orders": \#(generator.next() % 9)"#,
                    ]
                    if generator.next() % 10 == 0 { entries.append(#""source": 1"#) }
                    if generator.next() % 10 == 0 { entries.removeLast() }
                    if generator.next() % 4 == 0 { entries.reverse() }
                    return "{" + entries.joined(separator: ", ") + "}"
                }.joined(separator: ", ") + "]"
        }
        var sides = [#""buy": \#(levels())"#, #""sell": \#(levels())"#]
        if generator.next() % 5 == 0 { sides.reverse() }
        if generator.next() % 12 == 0 { sides.removeLast() }
        return "{" + sides.joined(separator: ", ") + "}"
    }

    static func body(_ generator: inout SplitMix64) -> String {
        var used = Set<String>()
        var entries: [String] = []
        for _ in 0..<Int(generator.next() % 12) {
            let key = pick(self.keys, &generator)
            guard used.insert(key).inserted || generator.next() % 8 == 0 else { continue }
            let value =
                key == "depth" && generator.next() % 4 != 0
                ? self.book(&generator) : generator.next() % 3 == 0 ? self.value(&generator) : self.number(&generator)
            entries.append(#""\#(key)": \#(value)"#)
        }
        let body = "{" + entries.joined(separator: ", ") + "}"
        switch generator.next() % 3 {
        case 0: return body.replacing(", ", with: ",").replacing(": ", with: ":")
        case 1: return " \n" + body.replacing(", ", with: " ,\t").replacing(": ", with: " :\r\n") + "\t"
        default: return body
        }
    }

    /// The body with one byte changed, dropped or added.
    static func damaged(_ body: String, _ generator: inout SplitMix64) -> String {
        var bytes = Array(body.utf8)
        guard !bytes.isEmpty else { return "x" }
        let position = Int(generator.next() % UInt64(bytes.count))
        let byte = pick(Array("{}[],:\"\\ -.e0Nn".utf8), &generator)
        switch generator.next() % 3 {
        case 0: bytes[position] = byte
        case 1: bytes.remove(at: position)
        default: bytes.insert(byte, at: position)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
