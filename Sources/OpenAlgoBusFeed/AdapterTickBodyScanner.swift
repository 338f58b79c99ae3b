import MarketData
import WireJSON

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads the JSON body of an OpenAlgo adapter's tick straight from its bytes into a ``Tick``:
/// keys are matched as bytes, numbers are converted in place, a book's levels go straight into
/// ``DepthLevel``s. The bus carries thousands of these a second, and building a generic JSON tree
/// first cost about 57 allocations and 10 µs per Depth body.
///
/// The scanner only ever changes how fast a body is read, never what it becomes: values the tick
/// does not hold (unknown keys, `null`, big integers, odd books) are handed to ``JSONParser`` at
/// their position and go through the same ``AdapterTickAssembly`` as a parsed body, and anything
/// the scanner does not vouch for (invalid JSON, not an object, a repeated key, a key with escapes
/// or not UTF-8) makes it return `nil`, so that the generic path decides.
struct AdapterTickBodyScanner {
    /// The scanner does not read this body; the generic path decides what it is.
    private struct Declined: Error {}

    /// A JSON number as the generic parser would read it, when it is an integer that fits `Int` or
    /// a float.
    private enum Number {
        case integer(Int)
        case double(Double)
    }

    /// Longest number literal converted on the stack; longer ones go through `Double(String)`.
    private static let longestStackLiteral = 64

    /// Levels of one side of a book read onto the stack (960 bytes: Swift keeps temporary
    /// allocations of up to 1 KiB on the stack), so that the side's array is allocated once at its
    /// size; a longer side grows an array.
    private static let levelsOnStack = 40

    private let bytes: UnsafeRawBufferPointer
    private let base: UnsafePointer<UInt8>
    private var index = 0

    private init(bytes: UnsafeRawBufferPointer, base: UnsafePointer<UInt8>) {
        self.bytes = bytes
        self.base = base
    }

    /// The tick for a body, or `nil` when the generic path must decide.
    static func tick(instrument: Instrument, mode: SubscriptionMode, body: UnsafeRawBufferPointer) -> Tick? {
        guard let base = body.baseAddress else { return nil }
        var scanner = Self(bytes: body, base: base.assumingMemoryBound(to: UInt8.self))
        var assembly = AdapterTickAssembly(instrument: instrument, mode: mode)
        do {
            try scanner.scanBody(into: &assembly)
        } catch {
            return nil
        }
        return assembly.finish()
    }

    // MARK: Structure

    private mutating func scanBody(into assembly: inout AdapterTickAssembly) throws(Declined) {
        self.skipWhitespace()
        try self.consume(UInt8(ascii: "{"))
        self.skipWhitespace()
        if self.current == UInt8(ascii: "}") {
            self.index += 1
        } else {
            var seen: UInt32 = 0
            while true {
                let name = try self.scanMemberName()
                if let key = AdapterTickKey(utf8: name) {
                    let bit: UInt32 = 1 << key.rawValue
                    guard seen & bit == 0 else { throw Declined() }
                    seen |= bit
                    try self.scanValue(of: key, into: &assembly)
                } else {
                    guard let key = String(validating: name, as: UTF8.self), !assembly.hasKept(key) else { throw Declined() }
                    assembly.keep(key, try self.scanAnyValue())
                }
                self.skipWhitespace()
                guard let byte = self.current else { throw Declined() }
                self.index += 1
                if byte == UInt8(ascii: "}") { break }
                guard byte == UInt8(ascii: ",") else { throw Declined() }
            }
        }
        self.skipWhitespace()
        guard self.index == self.bytes.count else { throw Declined() }
    }

    /// A modelled key's value: numbers that fit go straight into the field; anything else is
    /// parsed generically and taken as the generic path takes it.
    private mutating func scanValue(of key: AdapterTickKey, into assembly: inout AdapterTickAssembly) throws(Declined) {
        let start = self.index
        switch key.role {
        case .fromTopic:
            try self.skipValue()
            return
        case .price(let field):
            switch self.scanNumber() {
            case .double(let number):
                assembly.setPrice(field, number)
                return
            case .integer(let number) where number.magnitude <= AdapterTickAssembly.largestExactDouble:
                assembly.setPrice(field, Double(number))
                return
            case .integer, nil:
                break
            }
        case .count(let field):
            if case .integer(let number) = self.scanNumber() {
                assembly.setCount(field, Int64(number))
                return
            }
        case .change:
            break
        case .depth:
            if let depth = self.scanBook() {
                assembly.setDepth(depth)
                return
            }
        }
        self.index = start
        assembly.take(key, try self.scanAnyValue())
    }

    /// Any value as the generic parser reads it; plain numbers without the parser.
    private mutating func scanAnyValue() throws(Declined) -> JSONValue {
        switch self.scanNumber() {
        case .integer(let number): return .integer(JSONInteger(number))
        case .double(let number): return .double(number)
        case nil: return try self.parseGenerically()
        }
    }

    /// Checks a value the tick takes from the topic without keeping it.
    private mutating func skipValue() throws(Declined) {
        if self.current == UInt8(ascii: "\"") {
            let start = self.index
            self.index += 1
            while let byte = self.current, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\"), byte >= 0x20, byte < 0x80 {
                self.index += 1
            }
            if self.current == UInt8(ascii: "\"") {
                self.index += 1
                return
            }
            self.index = start
        } else if self.scanNumber() != nil {
            return
        }
        _ = try self.parseGenerically()
    }

    private mutating func parseGenerically() throws(Declined) -> JSONValue {
        do {
            // Inside the body's object: one level deep, as in a whole-body parse.
            return try JSONParser.parseValue(in: self.bytes, at: &self.index, depth: 1)
        } catch {
            throw Declined()
        }
    }

    /// A member's key (as ``scanKey()`` reads it) and the `:` after it, with the whitespace around
    /// both; the scanner is left at the member's value.
    private mutating func scanMemberName() throws(Declined) -> UnsafeRawBufferPointer {
        self.skipWhitespace()
        let name = try self.scanKey()
        self.skipWhitespace()
        try self.consume(UInt8(ascii: ":"))
        self.skipWhitespace()
        return name
    }

    /// A key's bytes, without its quotes; a key with escapes or control characters is declined.
    private mutating func scanKey() throws(Declined) -> UnsafeRawBufferPointer {
        try self.consume(UInt8(ascii: "\""))
        let start = self.index
        var position = start
        let count = self.bytes.count
        while position < count {
            let byte = self.base[position]
            if byte == UInt8(ascii: "\"") {
                self.index = position + 1
                return UnsafeRawBufferPointer(start: self.base + start, count: position - start)
            }
            guard byte != UInt8(ascii: "\\"), byte >= 0x20 else { throw Declined() }
            position += 1
        }
        throw Declined()
    }

    // MARK: Depth

    /// `{"buy": [...], "sell": [...]}` in either order with plain levels, else `nil` (the book is
    /// then parsed generically, and kept as sent when it does not fit).
    private mutating func scanBook() -> MarketDepth? {
        guard self.current == UInt8(ascii: "{") else { return nil }
        self.index += 1
        var buy: [DepthLevel]?
        var sell: [DepthLevel]?
        for position in 0..<2 {
            guard let name = try? self.scanMemberName() else { return nil }
            if Self.matches(name, "buy"), buy == nil {
                buy = self.scanLevels()
                if buy == nil { return nil }
            } else if Self.matches(name, "sell"), sell == nil {
                sell = self.scanLevels()
                if sell == nil { return nil }
            } else {
                return nil
            }
            self.skipWhitespace()
            guard self.current == (position == 0 ? UInt8(ascii: ",") : UInt8(ascii: "}")) else { return nil }
            self.index += 1
        }
        guard let buy, let sell else { return nil }
        return MarketDepth(buy: buy, sell: sell)
    }

    private mutating func scanLevels() -> [DepthLevel]? {
        guard self.current == UInt8(ascii: "[") else { return nil }
        self.index += 1
        self.skipWhitespace()
        if self.current == UInt8(ascii: "]") {
            self.index += 1
            return []
        }
        return withUnsafeTemporaryAllocation(of: DepthLevel.self, capacity: Self.levelsOnStack) { stack -> [DepthLevel]? in
            var count = 0
            var grown: [DepthLevel] = []
            while true {
                self.skipWhitespace()
                guard let level = self.scanLevel() else { return nil }
                if count < stack.count {
                    stack.initializeElement(at: count, to: level)
                } else {
                    if grown.isEmpty { grown = Array(stack) }
                    grown.append(level)
                }
                count += 1
                self.skipWhitespace()
                guard let byte = self.current else { return nil }
                self.index += 1
                if byte == UInt8(ascii: "]") { return grown.isEmpty ? Array(stack[..<count]) : grown }
                guard byte == UInt8(ascii: ",") else { return nil }
            }
        }
    }

    /// `{"price": P, "quantity": Q, "orders": O}` in any order, nothing else.
    private mutating func scanLevel() -> DepthLevel? {
        guard self.current == UInt8(ascii: "{") else { return nil }
        self.index += 1
        var price: Double?
        var quantity: Int64?
        var orders: Int64?
        for position in 0..<3 {
            guard let name = try? self.scanMemberName() else { return nil }
            let number = self.scanNumber()
            if Self.matches(name, "price"), price == nil {
                switch number {
                case .double(let value): price = value
                case .integer(let value) where value.magnitude <= AdapterTickAssembly.largestExactDouble: price = Double(value)
                case .integer, nil: return nil
                }
            } else if Self.matches(name, "quantity"), quantity == nil, case .integer(let value) = number {
                quantity = Int64(value)
            } else if Self.matches(name, "orders"), orders == nil, case .integer(let value) = number {
                orders = Int64(value)
            } else {
                return nil
            }
            self.skipWhitespace()
            guard self.current == (position < 2 ? UInt8(ascii: ",") : UInt8(ascii: "}")) else { return nil }
            self.index += 1
        }
        guard let price, let quantity, let orders else { return nil }
        return DepthLevel(price: price, quantity: quantity, orders: orders)
    }

    private static func matches(_ name: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        name.count == literal.utf8CodeUnitCount && memcmp(name.baseAddress!, literal.utf8Start, name.count) == 0
    }

    // MARK: Numbers

    /// A number at the current position, read as the generic parser reads it (an integer literal
    /// is `Int(literal)`, any other is `Double(literal)`), and the position moved past it; `nil`,
    /// with the position unchanged, for anything else: not a number, `-Infinity`, a malformed
    /// number, an integer beyond 64 bits.
    private mutating func scanNumber() -> Number? {
        let start = self.index
        var position = start
        let count = self.bytes.count
        let negative = position < count && self.base[position] == UInt8(ascii: "-")
        if negative { position += 1 }
        guard position < count, Self.isDigit(self.base[position]) else { return nil }
        // Up to 19 significant digits, which always fit; more make the number inexact here.
        var significand: UInt64 = 0
        var significantDigits = 0
        var truncated = false
        var exponent = 0
        if self.base[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            while position < count, Self.isDigit(self.base[position]) {
                if significantDigits < 19 {
                    significand = significand &* 10 &+ UInt64(self.base[position] &- UInt8(ascii: "0"))
                    significantDigits += 1
                } else {
                    truncated = true
                }
                position += 1
            }
        }
        var isInteger = true
        if position < count, self.base[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            let fractionStart = position
            while position < count, Self.isDigit(self.base[position]) {
                let digit = self.base[position] &- UInt8(ascii: "0")
                if significantDigits == 0 && digit == 0 {
                    exponent -= 1
                } else if significantDigits < 19 {
                    significand = significand &* 10 &+ UInt64(digit)
                    significantDigits += 1
                    exponent -= 1
                } else {
                    truncated = true
                }
                position += 1
            }
            guard position > fractionStart else { return nil }
        }
        if position < count, self.base[position] | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            position += 1
            var exponentNegative = false
            if position < count, self.base[position] == UInt8(ascii: "+") || self.base[position] == UInt8(ascii: "-") {
                exponentNegative = self.base[position] == UInt8(ascii: "-")
                position += 1
            }
            let exponentStart = position
            var written = 0
            while position < count, Self.isDigit(self.base[position]) {
                if written < 100_000 { written = written * 10 + Int(self.base[position] &- UInt8(ascii: "0")) }
                position += 1
            }
            guard position > exponentStart else { return nil }
            exponent += exponentNegative ? -written : written
        }
        if isInteger {
            guard !truncated else { return nil }
            if negative {
                guard significand <= UInt64(Int.max) + 1 else { return nil }
                self.index = position
                return .integer(Int(bitPattern: UInt(0 &- significand)))
            }
            guard significand <= UInt64(Int.max) else { return nil }
            self.index = position
            return .integer(Int(significand))
        }
        let value: Double
        if !truncated, significand <= 1 << 53, (-22...22).contains(exponent) {
            let scaled = Double(significand)
            value =
                exponent >= 0 ? scaled * Self.exactPowerOfTen(exponent) : scaled / Self.exactPowerOfTen(-exponent)
        } else if !truncated, (-19 ... -1).contains(exponent), let quotient = Self.quotient(significand, dividedByTenToThe: -exponent) {
            value = quotient
        } else {
            guard let converted = self.convertLiteral(start..<position) else { return nil }
            self.index = position
            return .double(converted)
        }
        self.index = position
        return .double(negative ? -value : value)
    }

    /// `significand / 10^exponent` correctly rounded (to nearest, ties to even), for the 16 to 19
    /// digit significands Python writes for prices such as `1423.8500000000001`: the quotient to 63
    /// or 64 bits by one 128-by-64-bit division, rounded to 53 bits with the remainder as sticky
    /// bit. `nil` when the result would not be a normal double.
    private static func quotient(_ significand: UInt64, dividedByTenToThe exponent: Int) -> Double? {
        let divisor = Self.integerPowerOfTen(exponent)
        let leadingZeros = significand.leadingZeroBitCount
        let normalized = significand << leadingZeros
        // Shifting by one bit less than the divisor has keeps the quotient within 64 bits.
        let shift = (64 - divisor.leadingZeroBitCount) - 1
        let high = shift == 0 ? 0 : normalized >> (64 - shift)
        let (quotient, remainder) = divisor.dividingFullWidth((high, normalized << shift))
        let quotientZeros = quotient.leadingZeroBitCount
        let aligned = quotient << quotientZeros
        var mantissa = aligned >> 11
        let dropped = aligned & 0x7FF
        if dropped > 0x400 || (dropped == 0x400 && (remainder != 0 || mantissa & 1 == 1)) {
            mantissa += 1
        }
        var binaryExponent = 11 - quotientZeros - shift - leadingZeros
        if mantissa == 1 << 53 {
            mantissa >>= 1
            binaryExponent += 1
        }
        let value = Double(sign: .plus, exponent: binaryExponent, significand: Double(mantissa))
        return value.isNormal ? value : nil
    }

    /// `10^exponent` for `0...22`, the powers of ten a double holds exactly: a decimal with at most
    /// 2^53 as significand and such a power as scale converts with one correctly rounded
    /// multiplication or division (Clinger's fast path). A switch of constants, which compiles to
    /// a table lookup without the reference counting of a static array.
    private static func exactPowerOfTen(_ exponent: Int) -> Double {
        switch exponent {
        case 0: 1
        case 1: 1e1
        case 2: 1e2
        case 3: 1e3
        case 4: 1e4
        case 5: 1e5
        case 6: 1e6
        case 7: 1e7
        case 8: 1e8
        case 9: 1e9
        case 10: 1e10
        case 11: 1e11
        case 12: 1e12
        case 13: 1e13
        case 14: 1e14
        case 15: 1e15
        case 16: 1e16
        case 17: 1e17
        case 18: 1e18
        case 19: 1e19
        case 20: 1e20
        case 21: 1e21
        default: 1e22
        }
    }

    /// `10^exponent` for `1...19`, the powers of ten a `UInt64` holds.
    private static func integerPowerOfTen(_ exponent: Int) -> UInt64 {
        var power: UInt64 = 10
        for _ in 1..<exponent { power &*= 10 }
        return power
    }

    /// The correctly rounded double of a literal the fast path cannot convert exactly: `strtod` on
    /// a stack copy (correctly rounded like `Double(String)`), or `Double(String)` itself when
    /// `strtod` does not read the whole literal (a locale with another decimal point) or the
    /// literal is long.
    private func convertLiteral(_ range: Range<Int>) -> Double? {
        let literal = UnsafeRawBufferPointer(rebasing: self.bytes[range])
        if literal.count <= Self.longestStackLiteral {
            let converted = withUnsafeTemporaryAllocation(of: CChar.self, capacity: literal.count + 1) { text -> Double? in
                let base = text.baseAddress!
                UnsafeMutableRawPointer(base).copyMemory(from: literal.baseAddress!, byteCount: literal.count)
                base[literal.count] = 0
                var end: UnsafeMutablePointer<CChar>?
                let value = strtod(base, &end)
                return end == base + literal.count ? value : nil
            }
            if let converted { return converted }
        }
        return Double(String(decoding: literal, as: UTF8.self))
    }

    // MARK: Bytes

    private var current: UInt8? {
        @inline(__always) get { self.index < self.bytes.count ? self.base[self.index] : nil }
    }

    @inline(__always)
    private static func isDigit(_ byte: UInt8) -> Bool {
        byte &- UInt8(ascii: "0") < 10
    }

    @inline(__always)
    private mutating func consume(_ byte: UInt8) throws(Declined) {
        guard self.current == byte else { throw Declined() }
        self.index += 1
    }

    /// JSON's whitespace; `json.dumps` writes one space after `,` and `:`, compact JSON none.
    @inline(__always)
    private mutating func skipWhitespace() {
        let count = self.bytes.count
        var position = self.index
        while position < count {
            let byte = self.base[position]
            guard byte <= 0x20, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { break }
            position += 1
        }
        self.index = position
    }
}
