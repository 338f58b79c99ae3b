/// Reads a JSON array of flat objects (`[{"token":"2885","symbol":"RELIANCE-EQ",…},…]`), the shape of
/// SmartAPI's scrip master, one object at a time.
///
/// A purpose-built reader rather than a document parser: the master is tens of megabytes, and a tree
/// of it would cost several times that in memory for values read once. Scalars become text (numbers
/// as written, `null` as empty); a nested array or object is an error.
package struct FlatJSONRecords {
    private let bytes: [UInt8]
    private var index = 0
    private var started = false
    private var finished = false

    package init(_ text: String) {
        self.bytes = Array(text.utf8)
    }

    /// The next object's fields, `nil` after the closing `]`.
    package mutating func next() throws(SymbolMasterError) -> [String: String]? {
        if self.finished { return nil }
        if !self.started {
            self.skipWhitespace()
            try self.expect(UInt8(ascii: "["))
            self.started = true
            self.skipWhitespace()
            if self.peek() == UInt8(ascii: "]") {
                self.finished = true
                return nil
            }
        } else {
            self.skipWhitespace()
            switch self.peek() {
            case UInt8(ascii: ","): self.index += 1
            case UInt8(ascii: "]"):
                self.finished = true
                return nil
            default: throw self.error("expected ',' or ']' between records")
            }
        }
        return try self.object()
    }

    private mutating func object() throws(SymbolMasterError) -> [String: String] {
        self.skipWhitespace()
        try self.expect(UInt8(ascii: "{"))
        var fields: [String: String] = [:]
        self.skipWhitespace()
        if self.peek() == UInt8(ascii: "}") {
            self.index += 1
            return fields
        }
        while true {
            self.skipWhitespace()
            let key = try self.string()
            self.skipWhitespace()
            try self.expect(UInt8(ascii: ":"))
            self.skipWhitespace()
            fields[key] = try self.scalar()
            self.skipWhitespace()
            switch self.peek() {
            case UInt8(ascii: ","): self.index += 1
            case UInt8(ascii: "}"):
                self.index += 1
                return fields
            default: throw self.error("expected ',' or '}' in a record")
            }
        }
    }

    private mutating func scalar() throws(SymbolMasterError) -> String {
        switch self.peek() {
        case UInt8(ascii: "\""): return try self.string()
        case UInt8(ascii: "{"), UInt8(ascii: "["): throw self.error("nested values are not expected in a scrip-master record")
        case nil: throw self.error("unexpected end of file")
        default:
            let start = self.index
            while let byte = self.peek(), byte != UInt8(ascii: ","), byte != UInt8(ascii: "}"), !Self.isWhitespace(byte) {
                self.index += 1
            }
            let text = String(decoding: self.bytes[start..<self.index], as: UTF8.self)
            return text == "null" ? "" : text
        }
    }

    private mutating func string() throws(SymbolMasterError) -> String {
        try self.expect(UInt8(ascii: "\""))
        let start = self.index
        while let byte = self.peek(), byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") { self.index += 1 }
        if self.peek() == UInt8(ascii: "\"") {
            self.index += 1
            return String(decoding: self.bytes[start..<(self.index - 1)], as: UTF8.self)
        }
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: String(decoding: self.bytes[start..<self.index], as: UTF8.self).unicodeScalars)
        var pending: [UInt8] = []
        while true {
            guard let byte = self.peek() else { throw self.error("unterminated string") }
            self.index += 1
            if byte == UInt8(ascii: "\"") { break }
            if byte != UInt8(ascii: "\\") {
                pending.append(byte)
                continue
            }
            scalars.append(contentsOf: String(decoding: pending, as: UTF8.self).unicodeScalars)
            pending.removeAll(keepingCapacity: true)
            guard let escaped = self.peek() else { throw self.error("unterminated escape") }
            self.index += 1
            switch escaped {
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "u"):
                guard self.index + 4 <= self.bytes.count,
                    let code = UInt32(String(decoding: self.bytes[self.index..<(self.index + 4)], as: UTF8.self), radix: 16)
                else { throw self.error("bad \\u escape") }
                self.index += 4
                scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            default: scalars.append(Unicode.Scalar(escaped))
            }
        }
        scalars.append(contentsOf: String(decoding: pending, as: UTF8.self).unicodeScalars)
        return String(scalars)
    }

    private func peek() -> UInt8? {
        self.index < self.bytes.count ? self.bytes[self.index] : nil
    }

    private mutating func expect(_ byte: UInt8) throws(SymbolMasterError) {
        guard self.peek() == byte else { throw self.error("expected '\(Character(Unicode.Scalar(byte)))'") }
        self.index += 1
    }

    private mutating func skipWhitespace() {
        while let byte = self.peek(), Self.isWhitespace(byte) { self.index += 1 }
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    private func error(_ reason: String) -> SymbolMasterError {
        SymbolMasterError("SmartAPI scrip master is not valid JSON at byte \(self.index): \(reason)")
    }
}
