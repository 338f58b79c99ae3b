import NIOCore
import Testing
import WireJSON

@Suite("JSON parsing and Python-compatible writing")
struct JSONTests {
    @Test(
        "floats print as Python's repr",
        arguments: [
            (1424.05, "1424.05"), (1424.0, "1424.0"), (0.1, "0.1"), (-2.5, "-2.5"), (1e-05, "1e-05"), (0.0001, "0.0001"),
            (1e16, "1e+16"), (1e15, "1000000000000000.0"), (123_456_789.123, "123456789.123"), (1.5e300, "1.5e+300"),
            (-0.0, "-0.0"), (0.3333333333333333, "0.3333333333333333"), (5e-324, "5e-324"), (24_567.35, "24567.35"),
        ]
    )
    func pythonFloatRepr(value: Double, expected: String) {
        #expect(PythonFloatFormatter.repr(value) == expected)
        var buffer = ByteBuffer()
        buffer.writeJSONDouble(value)
        #expect(String(buffer: buffer) == expected)
    }

    @Test("the two-decimal fast path agrees with the general formatter")
    func fastPathAgrees() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let cents = Int64.random(in: -10_000_000_000...10_000_000_000, using: &generator)
            let value = Double(cents) / 100
            var buffer = ByteBuffer()
            buffer.writeJSONDouble(value)
            #expect(String(buffer: buffer) == PythonFloatFormatter.repr(value))
        }
    }

    @Test("non-finite numbers are written as null, never as invalid JSON")
    func nonFinite() {
        #expect(JSONValue.double(.nan).jsonText == "null")
        #expect(JSONValue.double(-.infinity).jsonText == "null")
    }

    @Test("strings are escaped like json.dumps with ensure_ascii")
    func stringEscaping() {
        #expect(JSONValue.string("plain").jsonText == #""plain""#)
        #expect(JSONValue.string("a\"b\\c\n\t\u{01}").jsonText == #""a\"b\\c\n\t\u0001""#)
        #expect(JSONValue.string("₹ 100 😀").jsonText == #""\u20b9 100 \ud83d\ude00""#)
    }

    @Test("objects keep key order and print with Python's separators")
    func objectFormatting() throws {
        let value = try JSONParser.parse(#"{"b":1,"a":[true,false,null,2.5,"x"],"c":{}}"#)
        #expect(value.jsonText == #"{"b": 1, "a": [true, false, null, 2.5, "x"], "c": {}}"#)
    }

    @Test("integers and floats stay apart; big integers keep their digits")
    func numbers() throws {
        #expect(try JSONParser.parse("2") == 2)
        #expect(try JSONParser.parse("2.0") == .double(2))
        #expect(try JSONParser.parse("-0") == 0)
        let big = try JSONParser.parse("123456789012345678901234567890")
        #expect(big.jsonText == "123456789012345678901234567890")
        #expect(big.pythonTypeName == "int")
        #expect(try JSONParser.parse("1E3") == .double(1000))
    }

    @Test("Python-only literals are accepted like json.loads does")
    func pythonLiterals() throws {
        guard case .double(let nan) = try JSONParser.parse("NaN") else {
            Issue.record("NaN must parse")
            return
        }
        #expect(nan.isNaN)
        #expect(try JSONParser.parse("-Infinity") == .double(-.infinity))
    }

    @Test("a repeated key keeps its first position and its last value")
    func duplicateKeys() throws {
        #expect(try JSONParser.parse(#"{"a": 1, "b": 2, "a": 3}"#).jsonText == #"{"a": 3, "b": 2}"#)
    }

    @Test(
        "escapes and surrogate pairs decode",
        arguments: [
            (#""\u20b9""#, "₹"), (#""\ud83d\ude00""#, "😀"), (#""a\/b""#, "a/b"), (#""\"\\\b\f\n\r\t""#, "\"\\\u{08}\u{0C}\n\r\t"),
        ]
    )
    func escapes(input: String, expected: String) throws {
        #expect(try JSONParser.parse(input) == .string(expected))
    }

    @Test(
        "malformed documents are rejected",
        arguments: [
            "", "{", "{\"a\"}", "[1,]", "{\"a\":1,}", "01", "1.", "\"unterminated", "\"tab\there\"", "tru", "{} extra", "'single'",
            String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
        ]
    )
    func rejects(input: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(input) }
    }

    @Test("Python str() and repr() of values, as used in the reference's error texts")
    func pythonText() throws {
        #expect(JSONValue.null.pythonString == "None")
        #expect(JSONValue.string("it's").pythonRepr == #""it's""#)
        #expect(JSONValue.string("foo").pythonRepr == "'foo'")
        #expect(try JSONParser.parse(#"[1, "a", true, {"k": null}]"#).pythonString == "[1, 'a', True, {'k': None}]")
        #expect(JSONValue.double(2).pythonString == "2.0")
    }

    @Test("truthiness follows Python")
    func truthiness() {
        #expect(![JSONValue.null, false, 0, .double(0), "", [], .object([:])].contains { $0.isTruthy })
        #expect([JSONValue.bool(true), 1, .double(0.5), "x", [0], .object(["a": 1])].allSatisfy { $0.isTruthy })
    }
}
