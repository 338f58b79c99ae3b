import MarketData
import WireJSON

#if canImport(Glibc)
import Glibc
#endif

/// The latest market data of each streamed instrument, and its rendering as the live table
/// `oactl subscribe` shows on a terminal (with a depth ladder in Depth mode).
public struct TickBoard {
    struct Row {
        var instrument: Instrument
        var data = JSONObject()
        var mode: SubscriptionMode = .ltp
        /// -1, 0, 1: the direction of the last price move, for the colour of the price.
        var direction = 0
        var updates = 0
    }

    private var rows: [Row]
    private var positions: [Instrument: Int] = [:]
    public let depthLevels: Int

    /// - Parameter instruments: the rows, in the order they were asked for.
    public init(instruments: [Instrument], depthLevels: Int = 5) {
        self.rows = instruments.map { Row(instrument: $0) }
        for (index, instrument) in instruments.enumerated() { self.positions[instrument] = index }
        self.depthLevels = depthLevels
    }

    /// Takes the params of one `market_data` event; returns whether it belonged to a row.
    @discardableResult
    public mutating func update(with envelope: JSONValue) -> Bool {
        guard let object = envelope.objectValue, let symbol = object["symbol"]?.stringValue,
            let exchange = object["exchange"]?.stringValue, let data = object["data"]?.objectValue
        else { return false }
        let instrument = Instrument(exchange: exchange, symbol: symbol)
        let index: Int
        if let known = self.positions[instrument] {
            index = known
        } else {
            index = self.rows.count
            self.rows.append(Row(instrument: instrument))
            self.positions[instrument] = index
        }
        let previous = self.rows[index].data["ltp"]?.numberValue
        let current = data["ltp"]?.numberValue
        if let previous, let current, previous != current {
            self.rows[index].direction = current > previous ? 1 : -1
        }
        self.rows[index].data = data
        self.rows[index].mode = object["mode"]?.intValue.flatMap { SubscriptionMode(rawValue: UInt8(clamping: $0)) } ?? .ltp
        self.rows[index].updates += 1
        return true
    }

    /// The table as lines; `color` adds ANSI colours (green up, red down).
    public func render(color: Bool) -> [String] {
        let hasOI = self.rows.contains { $0.data["oi"] != nil }
        var header = ["SYMBOL", "LTP", "CHG", "CHG%", "VOLUME", "BID", "ASK"]
        if hasOI { header.append("OI") }
        header.append("TIME")
        var cells: [[Cell]] = [header.map { Cell(text: $0, colour: nil) }]
        for row in self.rows {
            let data = row.data
            let change = data["change"]?.numberValue
            let changeColour = change.map { $0 > 0 ? Colour.green : $0 < 0 ? Colour.red : nil } ?? nil
            var line = [
                Cell(text: row.instrument.description, colour: nil),
                Cell(
                    text: Self.price(data["ltp"]?.numberValue),
                    colour: row.direction > 0 ? .green : row.direction < 0 ? .red : nil
                ),
                Cell(text: Self.signed(change, suffix: ""), colour: changeColour),
                Cell(text: Self.signed(data["change_percent"]?.numberValue, suffix: "%"), colour: changeColour),
                Cell(text: Self.quantity(data["volume"]?.numberValue), colour: nil),
                Cell(text: Self.price(data["bid"]?.numberValue), colour: nil),
                Cell(text: Self.price(data["ask"]?.numberValue), colour: nil),
            ]
            if hasOI { line.append(Cell(text: Self.quantity(data["oi"]?.numberValue), colour: nil)) }
            line.append(Cell(text: Self.clock(data["timestamp"]?.numberValue), colour: nil))
            cells.append(line)
        }
        var lines = Self.layout(cells, leftAligned: [0], color: color)
        for row in self.rows where row.mode == .depth {
            lines.append("")
            lines.append(contentsOf: self.ladder(for: row, color: color))
        }
        return lines
    }

    private func ladder(for row: Row, color: Bool) -> [String] {
        let depth = row.data["depth"]?.objectValue
        let buy = depth?["buy"]?.arrayValue ?? []
        let sell = depth?["sell"]?.arrayValue ?? []
        var cells: [[Cell]] = [
            ["ORDERS", "BID QTY", "BID", "ASK", "ASK QTY", "ORDERS"].map { Cell(text: $0, colour: nil) }
        ]
        let levels = min(max(buy.count, sell.count), self.depthLevels)
        for level in 0..<levels {
            let bid = level < buy.count ? buy[level].objectValue : nil
            let ask = level < sell.count ? sell[level].objectValue : nil
            cells.append([
                Cell(text: Self.quantity(bid?["orders"]?.numberValue), colour: nil),
                Cell(text: Self.quantity(bid?["quantity"]?.numberValue), colour: .green),
                Cell(text: Self.price(bid?["price"]?.numberValue), colour: .green),
                Cell(text: Self.price(ask?["price"]?.numberValue), colour: .red),
                Cell(text: Self.quantity(ask?["quantity"]?.numberValue), colour: .red),
                Cell(text: Self.quantity(ask?["orders"]?.numberValue), colour: nil),
            ])
        }
        let title = "\(row.instrument)  depth (\(levels) levels)"
        return [title] + Self.layout(cells, leftAligned: [], color: color).map { "  " + $0 }
    }

    // MARK: Layout

    enum Colour: String {
        case green = "\u{1B}[32m"
        case red = "\u{1B}[31m"
    }

    struct Cell: ExpressibleByStringLiteral {
        var text: String
        var colour: Colour?

        init(text: String, colour: Colour?) {
            self.text = text
            self.colour = colour
        }

        init(stringLiteral value: String) {
            self.init(text: value, colour: nil)
        }
    }

    private static func layout(_ rows: [[Cell]], leftAligned: Set<Int>, color: Bool) -> [String] {
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.text.count) }
        }
        return rows.enumerated().map { rowIndex, row in
            var line = ""
            for (index, cell) in row.enumerated() {
                let padding = String(repeating: " ", count: widths[index] - cell.text.count)
                let text = leftAligned.contains(index) ? cell.text + padding : padding + cell.text
                if index > 0 { line += "  " }
                if color, rowIndex > 0, let colour = cell.colour {
                    line += colour.rawValue + text + "\u{1B}[0m"
                } else if color, rowIndex == 0 {
                    line += "\u{1B}[1m" + text + "\u{1B}[0m"
                } else {
                    line += text
                }
            }
            while line.last == " " { line.removeLast() }
            return line
        }
    }

    // MARK: Numbers

    /// 2^63: the market data comes from whatever published it, so a number may be too large (or
    /// not finite) for `Int64`, whose conversion would trap; such a number is shown as the agent
    /// wrote it, and such a time as `-`.
    private static let beyondInt64 = 9_223_372_036_854_775_808.0

    /// Prices with two decimals, or four where the price has finer steps (currency derivatives).
    static func price(_ value: Double?) -> String {
        guard let value else { return "-" }
        let cents = value * 100
        let decimals = abs(cents - cents.rounded()) < 1e-6 ? 2 : 4
        return Self.fixed(value, decimals: decimals)
    }

    static func signed(_ value: Double?, suffix: String) -> String {
        guard let value else { return "-" }
        return (value > 0 ? "+" : "") + Self.fixed(value, decimals: 2) + suffix
    }

    /// Whole quantities with Indian digit grouping (12,34,567), as traders here read them.
    static func quantity(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "-" }
        guard value.magnitude < Self.beyondInt64 else { return PythonFloatFormatter.repr(value) }
        let digits = String(Int64(value.rounded()).magnitude)
        let sign = value < 0 ? "-" : ""
        guard digits.count > 3 else { return sign + digits }
        var head = String(digits.dropLast(3))
        var groups: [String] = [String(digits.suffix(3))]
        while head.count > 2 {
            groups.insert(String(head.suffix(2)), at: 0)
            head = String(head.dropLast(2))
        }
        if !head.isEmpty { groups.insert(head, at: 0) }
        return sign + groups.joined(separator: ",")
    }

    static func fixed(_ value: Double, decimals: Int) -> String {
        let scale = decimals == 2 ? 100.0 : 10_000.0
        let scaled = (abs(value) * scale).rounded()
        guard scaled < Self.beyondInt64 else { return PythonFloatFormatter.repr(value) }
        let whole = Int64(scaled / scale)
        let fraction = Int64(scaled) - whole * Int64(scale)
        let fractionText = String(fraction)
        let padded = String(repeating: "0", count: decimals - fractionText.count) + fractionText
        return (value < 0 && scaled > 0 ? "-" : "") + String(whole) + "." + padded
    }

    /// `HH:MM:SS` in local time from epoch milliseconds.
    static func clock(_ milliseconds: Double?) -> String {
        guard let milliseconds, milliseconds > 0, milliseconds / 1000 < Self.beyondInt64 else { return "-" }
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
    }
}
