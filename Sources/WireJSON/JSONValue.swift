/// A parsed JSON document that keeps what Python's `json.loads` keeps: the difference between
/// integers and floats, object key order, and numbers too large for 64 bits.
///
/// The OpenAlgo server's behaviour (and its error texts) depends on those distinctions: a mode of
/// `2.0` is rejected where `2` is accepted, and a `request_id` must be echoed unchanged.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// An integer literal. Values beyond 64 bits keep their literal text (Python ints are unbounded).
    case integer(JSONInteger)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// An integer literal: the value when it fits in 64 bits, and always its canonical decimal text.
public struct JSONInteger: Sendable, Equatable {
    /// The value, when it fits in an `Int`.
    public var value: Int?
    /// The decimal text, as Python would print the number.
    public var text: String

    public init(_ value: Int) {
        self.value = value
        self.text = String(value)
    }

    public init(literal: String) {
        if let value = Int(literal) {
            self.value = value
            self.text = String(value)
        } else {
            self.value = nil
            self.text = literal
        }
    }
}

/// A JSON object with its keys in insertion order, as Python dicts keep them. A repeated key
/// keeps its first position and its last value, like `json.loads`.
public struct JSONObject: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    public private(set) var entries: [(key: String, value: JSONValue)]

    public init() {
        self.entries = []
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.entries = []
        for (key, value) in elements {
            self[key] = value
        }
    }

    public subscript(key: String) -> JSONValue? {
        get {
            for entry in self.entries where entry.key == key {
                return entry.value
            }
            return nil
        }
        set {
            if let index = self.entries.firstIndex(where: { $0.key == key }) {
                if let newValue {
                    self.entries[index].value = newValue
                } else {
                    self.entries.remove(at: index)
                }
            } else if let newValue {
                self.entries.append((key, newValue))
            }
        }
    }

    public var count: Int { self.entries.count }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.entries.count == rhs.entries.count else { return false }
        return zip(lhs.entries, rhs.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .integer(JSONInteger(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var object = JSONObject()
        for (key, value) in elements { object[key] = value }
        self = .object(object)
    }
}

extension JSONValue {
    /// Convenience for building integer values from any width.
    public static func int(_ value: some BinaryInteger) -> JSONValue {
        .integer(JSONInteger(Int(value)))
    }

    /// Python truthiness: `None`, `False`, `0`, `0.0`, `""`, `[]` and `{}` are false.
    ///
    /// The reference reads fields as `data.get("a") or data.get("b")`, so an empty value falls
    /// through to the alternative spelling; matching that needs the same rule.
    public var isTruthy: Bool {
        switch self {
        case .null: return false
        case .bool(let value): return value
        case .integer(let integer): return integer.value.map { $0 != 0 } ?? true
        case .double(let value): return value != 0
        case .string(let value): return !value.isEmpty
        case .array(let values): return !values.isEmpty
        case .object(let object): return object.count > 0
        }
    }

    /// The Python type name of the value as `json.loads` would build it, used in error texts that
    /// the reference produces from Python exceptions (`'list' object has no attribute 'get'`).
    public var pythonTypeName: String {
        switch self {
        case .null: return "NoneType"
        case .bool: return "bool"
        case .integer: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .object: return "dict"
        }
    }

    /// `str(value)` in Python, for messages such as `Invalid action: <action>`.
    public var pythonString: String {
        if case .string(let value) = self {
            return value
        }
        return self.pythonRepr
    }

    /// `repr(value)` in Python.
    public var pythonRepr: String {
        switch self {
        case .null: return "None"
        case .bool(let value): return value ? "True" : "False"
        case .integer(let integer): return integer.text
        case .double(let value): return PythonFloatFormatter.repr(value)
        case .string(let value): return PythonStringRepr.repr(value)
        case .array(let values): return "[" + values.map(\.pythonRepr).joined(separator: ", ") + "]"
        case .object(let object):
            return "{" + object.entries.map { PythonStringRepr.repr($0.key) + ": " + $0.value.pythonRepr }.joined(separator: ", ")
                + "}"
        }
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The value of an integer that fits in `Int`; `nil` for anything else, floats included.
    public var intValue: Int? {
        if case .integer(let value) = self { return value.value }
        return nil
    }

    /// A number as `Double`, whether it was written as an integer or not.
    public var numberValue: Double? {
        switch self {
        case .integer(let value): return value.value.map(Double.init) ?? Double(value.text)
        case .double(let value): return value
        default: return nil
        }
    }
}

/// Python's `repr()` of a `str`: single quotes unless the text contains a single quote and no
/// double quote, with backslash escapes for quotes, backslashes and control characters.
enum PythonStringRepr {
    static func repr(_ value: String) -> String {
        let useDouble = value.contains("'") && !value.contains("\"")
        let quote: Character = useDouble ? "\"" : "'"
        var result = String(quote)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where Character(scalar) == quote: result += "\\" + String(quote)
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                result += "\\x" + hex(scalar.value, width: 2)
            default: result.unicodeScalars.append(scalar)
            }
        }
        result.append(quote)
        return result
    }

    private static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
