import MarketData
import OactlSupport
import Testing
import WireJSON

@Suite("oactl values and the live table")
struct OactlSupportTests {
    @Test("EXCHANGE:SYMBOL, including index exchanges; a bad one names itself")
    func instruments() throws {
        #expect(try InstrumentArgument.parse("NSE:RELIANCE") == Instrument(exchange: "NSE", symbol: "RELIANCE"))
        #expect(try InstrumentArgument.parse("nse_index:NIFTY") == Instrument(exchange: "NSE_INDEX", symbol: "NIFTY"))
        #expect(try InstrumentArgument.parse("NSE:M&M") == Instrument(exchange: "NSE", symbol: "M&M"))
        for bad in ["RELIANCE", ":TCS", "NSE:", "NS E:TCS"] {
            #expect(throws: CommandLineValueError.self) { try InstrumentArgument.parse(bad) }
        }
        do {
            _ = try InstrumentArgument.parse("RELIANCE")
        } catch {
            #expect(error.description.contains("'RELIANCE'"))
        }
    }

    @Test("symbol lists as the official CLI's stream takes them, de-duplicated in order")
    func instrumentLists() throws {
        let nse = { Instrument(exchange: "NSE", symbol: $0) }
        #expect(
            try InstrumentList.parse(arguments: ["NSE:TCS"], symbols: "NSE:RELIANCE, NSE:SBIN", symbol: nil, exchange: nil) == [
                nse("TCS"), nse("RELIANCE"), nse("SBIN"),
            ]
        )
        #expect(
            try InstrumentList.parse(arguments: [], symbols: "RELIANCE,NSE_INDEX:NIFTY", symbol: nil, exchange: "nse") == [
                nse("RELIANCE"), Instrument(exchange: "NSE_INDEX", symbol: "NIFTY"),
            ]
        )
        #expect(try InstrumentList.parse(arguments: ["NSE:SBIN"], symbols: nil, symbol: "SBIN", exchange: "NSE") == [nse("SBIN")])
        #expect(throws: CommandLineValueError("--symbol SBIN needs --exchange (e.g. --exchange NSE)")) {
            try InstrumentList.parse(arguments: [], symbols: nil, symbol: "SBIN", exchange: nil)
        }
        #expect(throws: CommandLineValueError.self) { try InstrumentList.parse(arguments: [], symbols: "RELIANCE", symbol: nil, exchange: nil) }
        #expect(throws: CommandLineValueError("give at least one symbol, e.g. NSE:RELIANCE")) {
            try InstrumentList.parse(arguments: [], symbols: " , ", symbol: nil, exchange: nil)
        }
    }

    @Test("durations as people write them")
    func durations() throws {
        #expect(try DurationArgument.parse("30s") == .seconds(30))
        #expect(try DurationArgument.parse("500ms") == .milliseconds(500))
        #expect(try DurationArgument.parse("1m30s") == .seconds(90))
        #expect(try DurationArgument.parse("2") == .seconds(2))
        #expect(try DurationArgument.parse("1h") == .seconds(3600))
        for bad in ["", "s", "10x", "-1s", "1 s"] {
            #expect(throws: CommandLineValueError.self) { try DurationArgument.parse(bad) }
        }
    }

    @Test("a duration too long for the clock is refused with the limit, never a trap")
    func durationsTooLong() throws {
        #expect(try DurationArgument.parse("87600h") == .seconds(315_360_000))
        let tooLong = [
            "1e300", "315360001", "87601h", "9223372036854775807ms", String(repeating: "9", count: 400) + "s",
            String(repeating: "5256000m", count: 3),
        ]
        for text in tooLong {
            #expect(throws: CommandLineValueError("'\(text)' is too long a duration; at most 87600h (10 years)")) {
                try DurationArgument.parse(text)
            }
        }
    }

    @Test("modes by label or number")
    func modes() throws {
        #expect(try ModeArgument.parse("quote") == .quote)
        #expect(try ModeArgument.parse("3") == .depth)
        #expect(throws: CommandLineValueError.self) { try ModeArgument.parse("full") }
    }

    private func envelope(_ symbol: String, _ exchange: String, mode: Int, data: JSONObject) -> JSONValue {
        .object(["type": "market_data", "symbol": .string(symbol), "exchange": .string(exchange), "mode": .int(mode), "data": .object(data)])
    }

    @Test("the table: aligned columns, two-decimal prices, Indian grouping, signed change, OI only when present")
    func table() {
        var board = TickBoard(instruments: [Instrument(exchange: "NSE", symbol: "RELIANCE"), Instrument(exchange: "NSE_INDEX", symbol: "NIFTY")])
        board.update(
            with: self.envelope(
                "RELIANCE",
                "NSE",
                mode: 2,
                data: ["ltp": 2850.5, "change": 12.3, "change_percent": 0.43, "volume": 1_234_567, "bid": 2850.45, "ask": 2850.55]
            )
        )
        board.update(with: self.envelope("NIFTY", "NSE_INDEX", mode: 2, data: ["ltp": 24000, "change": -50.25, "change_percent": -0.21]))
        let lines = board.render(color: false)
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("SYMBOL"))
        #expect(!lines[0].contains("OI"))
        #expect(lines[1].contains("2850.50") && lines[1].contains("+12.30") && lines[1].contains("+0.43%") && lines[1].contains("12,34,567"))
        #expect(lines[2].contains("24000.00") && lines[2].contains("-50.25") && lines[2].contains("-0.21%"))
        let ltpColumn = lines[0].firstRange(of: "LTP")!.upperBound
        for line in lines.dropFirst() {
            #expect(line[..<ltpColumn].hasSuffix("0"), "prices are right-aligned under LTP: \(line)")
        }
    }

    @Test("numbers too large for a 64-bit integer are shown as written, a time beyond the clock as '-'")
    func hugeNumbers() {
        var board = TickBoard(instruments: [Instrument(exchange: "NSE", symbol: "TCS")])
        board.update(
            with: self.envelope(
                "TCS",
                "NSE",
                mode: 2,
                data: ["ltp": 1e17, "change": .double(-.infinity), "change_percent": .double(.nan), "volume": 1e19, "timestamp": 1e300]
            )
        )
        let row = board.render(color: false)[1]
        #expect(row.contains("1e+17") && row.contains("-inf") && row.contains("nan") && row.contains("1e+19"))
        #expect(row.hasSuffix(" -"))
    }

    @Test("colour follows the direction of the price and the sign of the change")
    func colour() {
        var board = TickBoard(instruments: [Instrument(exchange: "NSE", symbol: "TCS")])
        board.update(with: self.envelope("TCS", "NSE", mode: 2, data: ["ltp": 100.0, "change": 1.0]))
        board.update(with: self.envelope("TCS", "NSE", mode: 2, data: ["ltp": 99.5, "change": -0.5]))
        let row = board.render(color: true)[1]
        #expect(row.contains("\u{1B}[31m   99.50") || row.contains("\u{1B}[31m99.50"))
        #expect(row.contains("\u{1B}[31m-0.50"))
        #expect(!board.render(color: false).joined().contains("\u{1B}"))
    }

    @Test("Depth mode adds a ladder with bids and asks side by side")
    func ladder() {
        var board = TickBoard(instruments: [Instrument(exchange: "NSE", symbol: "INFY")], depthLevels: 5)
        let buy: [JSONValue] = [["price": 1500.1, "quantity": 10, "orders": 2], ["price": 1500.0, "quantity": 2500, "orders": 7]]
        let sell: [JSONValue] = [["price": 1500.2, "quantity": 30, "orders": 3]]
        board.update(with: self.envelope("INFY", "NSE", mode: 3, data: ["ltp": 1500.15, "depth": ["buy": .array(buy), "sell": .array(sell)]]))
        let lines = board.render(color: false)
        let title = lines.firstIndex { $0.hasPrefix("NSE:INFY  depth") }!
        #expect(lines[title + 1].contains("BID QTY") && lines[title + 1].contains("ASK QTY"))
        #expect(lines[title + 2].contains("1500.10") && lines[title + 2].contains("1500.20"))
        #expect(lines[title + 3].contains("2,500") && lines[title + 3].contains("1500.00") && lines[title + 3].contains("-"))
    }
}
