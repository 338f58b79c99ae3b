/// RFC 4180 CSV records: commas, double-quoted fields with `""` escapes, `\n` or `\r\n` line ends.
package struct CSVRecords: Sequence, IteratorProtocol {
    private var bytes: Substring.UTF8View
    private var index: Substring.UTF8View.Index

    package init(_ text: String) {
        self.bytes = Substring(text).utf8
        self.index = self.bytes.startIndex
    }

    package mutating func next() -> [String]? {
        guard self.index < self.bytes.endIndex else { return nil }
        var fields: [String] = []
        var field: [UInt8] = []
        var quoted = false
        while self.index < self.bytes.endIndex {
            let byte = self.bytes[self.index]
            self.bytes.formIndex(after: &self.index)
            if quoted {
                if byte == UInt8(ascii: "\"") {
                    if self.index < self.bytes.endIndex, self.bytes[self.index] == UInt8(ascii: "\"") {
                        field.append(byte)
                        self.bytes.formIndex(after: &self.index)
                    } else {
                        quoted = false
                    }
                } else {
                    field.append(byte)
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                quoted = true
            case UInt8(ascii: ","):
                fields.append(String(decoding: field, as: UTF8.self))
                field.removeAll(keepingCapacity: true)
            case UInt8(ascii: "\n"):
                fields.append(String(decoding: field, as: UTF8.self))
                return fields
            case UInt8(ascii: "\r"):
                continue
            default:
                field.append(byte)
            }
        }
        fields.append(String(decoding: field, as: UTF8.self))
        return fields
    }
}

/// A CSV file's header row, so rows are read by column name whatever the column order.
package struct CSVColumns {
    private var positions: [String: Int] = [:]

    package init(header: [String], required: [String], file: String) throws(SymbolMasterError) {
        for (position, name) in header.enumerated() {
            let trimmed = name.trimmingSpaces()
            if self.positions[trimmed] == nil { self.positions[trimmed] = position }
        }
        let missing = required.filter { self.positions[$0] == nil }
        guard missing.isEmpty else {
            throw SymbolMasterError("\(file) lacks the column(s) \(missing.joined(separator: ", "))")
        }
    }

    package func value(_ name: String, in row: [String]) -> String {
        guard let position = self.positions[name], position < row.count else { return "" }
        return row[position].trimmingSpaces()
    }
}

/// Expiry dates and strikes in the spelling OpenAlgo symbols use (`28DEC24`, `25000`, `187.5`).
package enum ContractNaming {
    private static let months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]

    /// `2024-12-28` (optionally followed by a time) as `28DEC24`; `nil` if it is not such a date.
    package static func expiry(isoDate text: String) -> String? {
        let parts = text.prefix(10).split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, let month = Int(parts[1]), (1...12).contains(month), parts[2].count == 2,
            Int(parts[0]) != nil, Int(parts[2]) != nil
        else { return nil }
        return "\(parts[2])\(self.months[month - 1])\(parts[0].suffix(2))"
    }

    /// `28DEC2024` as `28DEC24`; `nil` if it is not such a date.
    package static func expiry(dayMonthYear text: String) -> String? {
        let upper = text.uppercased()
        guard upper.count == 9, let day = Int(upper.prefix(2)), (1...31).contains(day), Int(upper.suffix(4)) != nil else { return nil }
        let month = String(upper.dropFirst(2).prefix(3))
        guard self.months.contains(month) else { return nil }
        return "\(upper.prefix(2))\(month)\(upper.suffix(2))"
    }

    /// A count written as an integer or a whole decimal (`75`, `75.0`); 0 when it is neither.
    package static func count(_ text: String) -> Int {
        if let value = Int(text) { return value }
        guard let value = Double(text), value == value.rounded(), abs(value) < 1e15 else { return 0 }
        return Int(value)
    }

    /// A strike as OpenAlgo writes it: no decimals when whole (`25000`), else the shortest decimal.
    package static func strike(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}

extension String {
    /// The text without leading and trailing spaces, tabs and carriage returns.
    package func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = self.firstIndex(where: { !isSpace($0) }), let last = self.lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }

    /// Upper case with spaces and hyphens removed: how OpenAlgo derives index symbols from names.
    package func indexSymbolForm() -> String {
        String(self.uppercased().filter { $0 != " " && $0 != "-" })
    }
}
