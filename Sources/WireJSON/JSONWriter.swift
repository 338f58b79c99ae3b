import NIOCore

/// Writes JSON the way Python's `json.dumps` does with its defaults (`", "` and `": "`
/// separators, `ensure_ascii`, shortest round-trip floats), straight into a `ByteBuffer`.
///
/// Every frame the agent sends goes through these functions, so they avoid `String`
/// intermediates on the common paths (ASCII strings, integers, prices with two decimals).
extension ByteBuffer {
    /// Writes `value` as a JSON string literal with Python's `ensure_ascii` escaping.
    @inlinable
    public mutating func writeJSONString(_ value: String) {
        var value = value
        let plain = value.withUTF8 { utf8 in
            utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
        }
        if plain {
            self.writeInteger(UInt8(ascii: "\""))
            self.writeString(value)
            self.writeInteger(UInt8(ascii: "\""))
        } else {
            self.writeEscapedJSONString(value)
        }
    }

    @usableFromInline
    mutating func writeEscapedJSONString(_ value: String) {
        self.writeInteger(UInt8(ascii: "\""))
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": self.writeStaticString("\\\"")
            case "\\": self.writeStaticString("\\\\")
            case "\n": self.writeStaticString("\\n")
            case "\r": self.writeStaticString("\\r")
            case "\t": self.writeStaticString("\\t")
            case "\u{08}": self.writeStaticString("\\b")
            case "\u{0C}": self.writeStaticString("\\f")
            default:
                if scalar.value >= 0x20 && scalar.value < 0x7F {
                    self.writeInteger(UInt8(scalar.value))
                } else if scalar.value < 0x10000 {
                    self.writeUnicodeEscape(UInt16(scalar.value))
                } else {
                    let offset = scalar.value - 0x10000
                    self.writeUnicodeEscape(UInt16(0xD800 + (offset >> 10)))
                    self.writeUnicodeEscape(UInt16(0xDC00 + (offset & 0x3FF)))
                }
            }
        }
        self.writeInteger(UInt8(ascii: "\""))
    }

    private mutating func writeUnicodeEscape(_ unit: UInt16) {
        let hex: StaticString = "0123456789abcdef"
        self.writeStaticString("\\u")
        for shift in stride(from: 12, through: 0, by: -4) {
            self.writeInteger(hex.utf8Start[Int((unit >> UInt16(shift)) & 0xF)])
        }
    }

    /// Writes a decimal integer without going through `String`.
    @inlinable
    public mutating func writeJSONInteger(_ value: some BinaryInteger) {
        var magnitude = UInt64(value.magnitude)
        if value < 0 { self.writeInteger(UInt8(ascii: "-")) }
        if magnitude < 10 {
            self.writeInteger(UInt8(ascii: "0") + UInt8(magnitude))
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var index = 20
            while magnitude > 0 {
                index -= 1
                digits[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            }
            self.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(digits)[index..<20]))
        }
    }

    /// Writes `key` (a literal with its separator, quotes and colon, e.g. `, "ltp": `) and `value`,
    /// or nothing when the value is absent: the optional members of an object written by hand.
    @inlinable
    public mutating func writeJSONMember(_ key: StaticString, _ value: Double?) {
        guard let value else { return }
        self.writeStaticString(key)
        self.writeJSONDouble(value)
    }

    /// Writes `key` and `value`, or nothing when the value is absent, for integers.
    @inlinable
    public mutating func writeJSONMember(_ key: StaticString, _ value: Int64?) {
        guard let value else { return }
        self.writeStaticString(key)
        self.writeJSONInteger(value)
    }

    /// Writes a float as Python's `repr` would (`1424.05`, `1424.0`, `1e-05`).
    ///
    /// Prices are the bulk of market data and nearly all have at most two decimals; those take a
    /// fast path that is exact (see ``PythonFloatFormatter``). Non-finite values, which Python
    /// would write as the invalid tokens `NaN`/`Infinity`, are written as `null` so strict JSON
    /// parsers in other languages keep working.
    @inlinable
    public mutating func writeJSONDouble(_ value: Double) {
        guard value.isFinite else {
            self.writeStaticString("null")
            return
        }
        if let cents = PythonFloatFormatter.exactCents(value) {
            if cents < 0 || (cents == 0 && value.sign == .minus) { self.writeInteger(UInt8(ascii: "-")) }
            let magnitude = cents.magnitude
            self.writeJSONInteger(magnitude / 100)
            self.writeInteger(UInt8(ascii: "."))
            let fraction = magnitude % 100
            if fraction == 0 {
                self.writeInteger(UInt8(ascii: "0"))
            } else if fraction % 10 == 0 {
                self.writeInteger(UInt8(ascii: "0") + UInt8(fraction / 10))
            } else {
                self.writeInteger(UInt8(ascii: "0") + UInt8(fraction / 10))
                self.writeInteger(UInt8(ascii: "0") + UInt8(fraction % 10))
            }
            return
        }
        self.writeString(PythonFloatFormatter.repr(value))
    }

    /// Writes any ``JSONValue`` with `json.dumps` formatting.
    public mutating func writeJSONValue(_ value: JSONValue) {
        self.writeJSONValue(value, compact: false)
    }

    /// Writes any ``JSONValue``; `compact` drops the spaces after `,` and `:`, as JSON-lines
    /// protocols want (one value per line, small enough to read in a terminal).
    public mutating func writeJSONValue(_ value: JSONValue, compact: Bool) {
        switch value {
        case .null: self.writeStaticString("null")
        case .bool(let flag): self.writeStaticString(flag ? "true" : "false")
        case .integer(let integer):
            if let small = integer.value {
                self.writeJSONInteger(small)
            } else {
                self.writeString(integer.text)
            }
        case .double(let number): self.writeJSONDouble(number)
        case .string(let text): self.writeJSONString(text)
        case .array(let values):
            self.writeInteger(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { self.writeStaticString(compact ? "," : ", ") }
                self.writeJSONValue(element, compact: compact)
            }
            self.writeInteger(UInt8(ascii: "]"))
        case .object(let object):
            self.writeInteger(UInt8(ascii: "{"))
            for (index, entry) in object.entries.enumerated() {
                if index > 0 { self.writeStaticString(compact ? "," : ", ") }
                self.writeJSONString(entry.key)
                self.writeStaticString(compact ? ":" : ": ")
                self.writeJSONValue(entry.value, compact: compact)
            }
            self.writeInteger(UInt8(ascii: "}"))
        }
    }
}

extension JSONValue {
    /// The value serialised as `json.dumps` would.
    public func jsonBuffer(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 256)
        buffer.writeJSONValue(self)
        return buffer
    }

    /// The value serialised as `json.dumps` would, as a string.
    public var jsonText: String {
        String(buffer: self.jsonBuffer())
    }

    /// The value serialised without optional spaces, as a string.
    public var compactJSONText: String {
        var buffer = ByteBufferAllocator().buffer(capacity: 256)
        buffer.writeJSONValue(self, compact: true)
        return String(buffer: buffer)
    }
}

/// Python's float `repr`, built from Swift's own shortest round-trip digits.
///
/// Swift and Python both print the shortest digit string that reads back to the same double;
/// they differ only in where they switch to exponent notation (Python: below 1e-4 and from 1e16),
/// so this re-lays Swift's digits out with Python's rule.
public enum PythonFloatFormatter {
    /// `value × 100` as an integer when `value` has at most two decimals and `|value| < 1e12`.
    ///
    /// Exact: below 1e12 one unit in the last place is far below 0.01, so the only decimal with at
    /// most two places that reads back to `value` is `cents / 100`, and it is the shortest one.
    @inlinable
    public static func exactCents(_ value: Double) -> Int64? {
        guard value.magnitude < 1e12 else { return nil }
        let scaled = (value * 100).rounded()
        guard scaled / 100 == value else { return nil }
        return Int64(scaled)
    }

    public static func repr(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        let swift = value.magnitude.description
        let negative = value.sign == .minus
        var mantissa = Substring(swift)
        var exponent = 0
        if let e = swift.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = swift[..<e]
            exponent = Int(swift[swift.index(after: e)...]) ?? 0
        }
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        let integerPart = parts.first.map(String.init) ?? ""
        let fractionPart = parts.count > 1 ? String(parts[1]) : ""
        let all = integerPart + fractionPart
        let leadingZeros = all.prefix(while: { $0 == "0" }).count
        var digits = String(all.dropFirst(leadingZeros))
        while digits.hasSuffix("0") { digits.removeLast() }
        let sign = negative ? "-" : ""
        if digits.isEmpty { return sign + "0.0" }
        let scientificExponent = integerPart.count + exponent - leadingZeros - 1
        if scientificExponent >= -4 && scientificExponent < 16 {
            let pointPosition = scientificExponent + 1
            if pointPosition <= 0 {
                return sign + "0." + String(repeating: "0", count: -pointPosition) + digits
            }
            if pointPosition >= digits.count {
                return sign + digits + String(repeating: "0", count: pointPosition - digits.count) + ".0"
            }
            let split = digits.index(digits.startIndex, offsetBy: pointPosition)
            return sign + digits[..<split] + "." + digits[split...]
        }
        let first = digits.prefix(1)
        let rest = digits.dropFirst()
        let exponentMagnitude = String(abs(scientificExponent))
        let exponentText = (scientificExponent < 0 ? "-" : "+") + (exponentMagnitude.count < 2 ? "0" : "") + exponentMagnitude
        return sign + first + (rest.isEmpty ? "" : "." + rest) + "e" + exponentText
    }
}
