import NIOCore

/// Why a document could not be parsed. The offset helps logs; clients only ever see the
/// reference's fixed `Invalid JSON message`.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var reason: String

    public var description: String { "invalid JSON at byte \(self.offset): \(self.reason)" }
}

/// A strict RFC 8259 parser that accepts what Python's `json.loads` accepts (including `NaN`,
/// `Infinity` and `-Infinity`), keeps integers apart from floats and preserves key order.
///
/// Client requests are small and rare compared with market data, so this favours exactness over
/// speed; it never allocates more than the document needs and refuses nesting deeper than
/// ``maximumDepth`` instead of overflowing the stack.
public struct JSONParser {
    public static let maximumDepth = 512

    public static func parse(_ buffer: ByteBuffer) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = buffer.withUnsafeReadableBytes { bytes in
            var parser = Cursor(bytes: bytes)
            do throws(JSONParseError) {
                return .success(try parser.parseDocument())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try self.parse(ByteBuffer(string: text))
    }

    /// Parses the one value that starts at `index` of `bytes` as it would be parsed inside a whole
    /// document, nested `depth` containers deep, and moves `index` just past it.
    ///
    /// Decoders that read the shapes they expect straight from the bytes (the ZeroMQ bus's tick
    /// bodies) hand every other value to this parser, so a value they keep is the value a
    /// whole-document parse would have produced, and a document this parser refuses is refused.
    public static func parseValue(in bytes: UnsafeRawBufferPointer, at index: inout Int, depth: Int) throws(JSONParseError) -> JSONValue {
        var cursor = Cursor(bytes: bytes)
        cursor.index = index
        cursor.depth = depth
        let value = try cursor.parseValue()
        index = cursor.index
        return value
    }
}

private struct Cursor {
    let bytes: UnsafeRawBufferPointer
    var index = 0
    var depth = 0

    init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        self.skipWhitespace()
        let value = try self.parseValue()
        self.skipWhitespace()
        guard self.index == self.bytes.count else { throw self.error("extra data after the document") }
        return value
    }

    func error(_ reason: String) -> JSONParseError {
        JSONParseError(offset: self.index, reason: reason)
    }

    var current: UInt8? { self.index < self.bytes.count ? self.bytes[self.index] : nil }

    mutating func skipWhitespace() {
        while let byte = self.current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
            self.index += 1
        }
    }

    mutating func expect(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard self.index + count <= self.bytes.count else { throw self.error("unexpected end") }
        let start = literal.utf8Start
        for offset in 0..<count where self.bytes[self.index + offset] != start[offset] {
            throw self.error("unexpected literal")
        }
        self.index += count
    }

    mutating func parseValue() throws(JSONParseError) -> JSONValue {
        guard let byte = self.current else { throw self.error("unexpected end") }
        switch byte {
        case UInt8(ascii: "{"): return try self.parseObject()
        case UInt8(ascii: "["): return try self.parseArray()
        case UInt8(ascii: "\""): return .string(try self.parseString())
        case UInt8(ascii: "t"):
            try self.expect("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try self.expect("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try self.expect("null")
            return .null
        case UInt8(ascii: "N"):
            try self.expect("NaN")
            return .double(.nan)
        case UInt8(ascii: "I"):
            try self.expect("Infinity")
            return .double(.infinity)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try self.parseNumber()
        default:
            throw self.error("unexpected character")
        }
    }

    mutating func enter() throws(JSONParseError) {
        self.depth += 1
        if self.depth > JSONParser.maximumDepth { throw self.error("nesting too deep") }
    }

    mutating func parseObject() throws(JSONParseError) -> JSONValue {
        try self.enter()
        defer { self.depth -= 1 }
        self.index += 1
        var object = JSONObject()
        self.skipWhitespace()
        if self.current == UInt8(ascii: "}") {
            self.index += 1
            return .object(object)
        }
        while true {
            self.skipWhitespace()
            guard self.current == UInt8(ascii: "\"") else { throw self.error("expected a key") }
            let key = try self.parseString()
            self.skipWhitespace()
            guard self.current == UInt8(ascii: ":") else { throw self.error("expected ':'") }
            self.index += 1
            self.skipWhitespace()
            object[key] = try self.parseValue()
            self.skipWhitespace()
            switch self.current {
            case UInt8(ascii: ","): self.index += 1
            case UInt8(ascii: "}"):
                self.index += 1
                return .object(object)
            default: throw self.error("expected ',' or '}'")
            }
        }
    }

    mutating func parseArray() throws(JSONParseError) -> JSONValue {
        try self.enter()
        defer { self.depth -= 1 }
        self.index += 1
        var values: [JSONValue] = []
        self.skipWhitespace()
        if self.current == UInt8(ascii: "]") {
            self.index += 1
            return .array(values)
        }
        while true {
            self.skipWhitespace()
            values.append(try self.parseValue())
            self.skipWhitespace()
            switch self.current {
            case UInt8(ascii: ","): self.index += 1
            case UInt8(ascii: "]"):
                self.index += 1
                return .array(values)
            default: throw self.error("expected ',' or ']'")
            }
        }
    }

    mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = self.index
        if self.current == UInt8(ascii: "-") {
            self.index += 1
            if self.current == UInt8(ascii: "I") {
                try self.expect("Infinity")
                return .double(-.infinity)
            }
        }
        guard let first = self.current, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else {
            throw self.error("expected a digit")
        }
        if first == UInt8(ascii: "0") {
            self.index += 1
        } else {
            self.skipDigits()
        }
        var isInteger = true
        if self.current == UInt8(ascii: ".") {
            self.index += 1
            guard self.skipDigits() > 0 else { throw self.error("expected a digit after '.'") }
            isInteger = false
        }
        if self.current == UInt8(ascii: "e") || self.current == UInt8(ascii: "E") {
            self.index += 1
            if self.current == UInt8(ascii: "+") || self.current == UInt8(ascii: "-") { self.index += 1 }
            guard self.skipDigits() > 0 else { throw self.error("expected an exponent") }
            isInteger = false
        }
        let literal = String(decoding: UnsafeRawBufferPointer(rebasing: self.bytes[start..<self.index]), as: UTF8.self)
        if isInteger {
            var integer = JSONInteger(literal: literal)
            if integer.value == 0 { integer.text = "0" }
            return .integer(integer)
        }
        guard let value = Double(literal) else { throw self.error("bad number") }
        return .double(value)
    }

    @discardableResult
    mutating func skipDigits() -> Int {
        let start = self.index
        while let byte = self.current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
            self.index += 1
        }
        return self.index - start
    }

    mutating func parseString() throws(JSONParseError) -> String {
        self.index += 1
        let start = self.index
        // Fast path: no escapes.
        while let byte = self.current, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
            guard byte >= 0x20 else { throw self.error("control character in string") }
            self.index += 1
        }
        guard let stop = self.current else { throw self.error("unterminated string") }
        var scalars = try self.validatedUTF8(start..<self.index)
        if stop == UInt8(ascii: "\"") {
            self.index += 1
            return scalars
        }
        while true {
            guard let byte = self.current else { throw self.error("unterminated string") }
            switch byte {
            case UInt8(ascii: "\""):
                self.index += 1
                return scalars
            case UInt8(ascii: "\\"):
                self.index += 1
                try self.parseEscape(into: &scalars)
            default:
                let runStart = self.index
                while let next = self.current, next != UInt8(ascii: "\""), next != UInt8(ascii: "\\") {
                    guard next >= 0x20 else { throw self.error("control character in string") }
                    self.index += 1
                }
                scalars += try self.validatedUTF8(runStart..<self.index)
            }
        }
    }

    func validatedUTF8(_ range: Range<Int>) throws(JSONParseError) -> String {
        let slice = UnsafeRawBufferPointer(rebasing: self.bytes[range])
        guard let text = String(validating: slice, as: UTF8.self) else { throw self.error("invalid UTF-8") }
        return text
    }

    mutating func parseEscape(into text: inout String) throws(JSONParseError) {
        guard let byte = self.current else { throw self.error("unterminated escape") }
        self.index += 1
        switch byte {
        case UInt8(ascii: "\""): text += "\""
        case UInt8(ascii: "\\"): text += "\\"
        case UInt8(ascii: "/"): text += "/"
        case UInt8(ascii: "b"): text += "\u{08}"
        case UInt8(ascii: "f"): text += "\u{0C}"
        case UInt8(ascii: "n"): text += "\n"
        case UInt8(ascii: "r"): text += "\r"
        case UInt8(ascii: "t"): text += "\t"
        case UInt8(ascii: "u"):
            let unit = try self.parseHex4()
            if (0xD800..<0xDC00).contains(unit), self.peekLowSurrogate() {
                self.index += 2
                let low = try self.parseHex4()
                let scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                text.unicodeScalars.append(Unicode.Scalar(scalar) ?? "\u{FFFD}")
            } else {
                // A lone surrogate is legal for Python but not representable in a Swift string.
                text.unicodeScalars.append(Unicode.Scalar(unit) ?? "\u{FFFD}")
            }
        default:
            throw self.error("invalid escape")
        }
    }

    func peekLowSurrogate() -> Bool {
        guard self.index + 6 <= self.bytes.count, self.bytes[self.index] == UInt8(ascii: "\\"),
            self.bytes[self.index + 1] == UInt8(ascii: "u")
        else { return false }
        var copy = self
        copy.index += 2
        guard let unit = try? copy.parseHex4() else { return false }
        return (0xDC00..<0xE000).contains(unit)
    }

    mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard self.index + 4 <= self.bytes.count else { throw self.error("short \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = self.bytes[self.index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw self.error("bad hex digit")
            }
            value = value << 4 | UInt32(digit)
            self.index += 1
        }
        return value
    }
}
