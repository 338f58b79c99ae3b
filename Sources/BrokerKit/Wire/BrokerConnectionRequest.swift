/// Where and how to open a broker's market-data WebSocket: the URL with any query authentication
/// already in it, and the extra HTTP upgrade headers. The networking layer uses it as is, so tests
/// can point the same construction at a local fake server by passing its `ws://` base URL.
package struct BrokerConnectionRequest: Sendable, Hashable {
    package var url: String
    package var headers: [BrokerHeader]

    package init(url: String, headers: [BrokerHeader] = []) {
        self.url = url
        self.headers = headers
    }
}

/// One HTTP header of a WebSocket upgrade request.
package struct BrokerHeader: Sendable, Hashable, CustomStringConvertible {
    package var name: String
    package var value: String

    package init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    package var description: String { "\(self.name): \(self.value)" }
}

package enum URLQuery {
    /// Appends `name=value` pairs to `base`, percent-encoding values, with `?` or `&` as `base` needs.
    package static func append(_ items: [(name: String, value: String)], to base: String) -> String {
        var url = base
        var separator: Character = base.contains("?") ? "&" : "?"
        for item in items {
            url.append(separator)
            url += item.name
            url.append("=")
            url += self.percentEncoded(item.value)
            separator = "&"
        }
        return url
    }

    /// RFC 3986 unreserved characters pass; everything else becomes `%XX` of its UTF-8 bytes, so
    /// tokens holding `+`, `/` or `=` survive the trip through a query string.
    package static func percentEncoded(_ text: String) -> String {
        var encoded = ""
        encoded.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let digits: [Character] = Array("0123456789ABCDEF")
                encoded.append("%")
                encoded.append(digits[Int(byte >> 4)])
                encoded.append(digits[Int(byte & 0x0F)])
            }
        }
        return encoded
    }
}

package enum JSONText {
    /// `text` as a JSON string literal, escaping what RFC 8259 requires.
    package static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                result.unicodeScalars.append(scalar)
            }
        }
        result += "\""
        return result
    }
}
