import NIOCore
import NIOHTTP1

/// A `ws://` or `wss://` address, split into what a connection needs.
package struct WebSocketURL: Sendable, Hashable, CustomStringConvertible {
    /// `true` for `wss://`: TLS with certificate verification and SNI.
    package var isSecure: Bool
    /// The host name or IP literal (without IPv6 brackets).
    package var host: String
    package var port: Int
    /// Path and query, as sent in the request line (`/smart-stream`, `/?api_key=…&access_token=…`).
    package var target: String

    /// Parses `ws://host[:port][/path][?query]` or `wss://…`; brokers put credentials in the query
    /// (Kite, Dhan), so the query is kept verbatim.
    package init(_ text: String) throws(BrokerWebSocketError) {
        let secure: Bool
        var rest: Substring
        if text.lowercased().hasPrefix("wss://") {
            secure = true
            rest = text.dropFirst(6)
        } else if text.lowercased().hasPrefix("ws://") {
            secure = false
            rest = text.dropFirst(5)
        } else {
            throw .invalidURL(text, "it must start with ws:// or wss://")
        }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        rest = rest[authorityEnd...]
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw .invalidURL(text, "the IPv6 address has no closing ]") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw .invalidURL(text, "unexpected text after the host")
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty, !host.contains("@") else { throw .invalidURL(text, "it has no host (user info is not supported)") }
        var port = secure ? 443 : 80
        if let portText {
            guard let value = Int(portText), (1...65_535).contains(value) else { throw .invalidURL(text, "the port must be 1 to 65535") }
            port = value
        }
        if rest.hasPrefix("?") { rest = "/" + rest }
        self.isSecure = secure
        self.host = String(host)
        self.port = port
        self.target = rest.isEmpty ? "/" : String(rest)
    }

    /// The `Host` header value: the port only when it is not the scheme's default.
    package var hostHeader: String {
        let name = self.host.contains(":") ? "[\(self.host)]" : self.host
        return self.port == (self.isSecure ? 443 : 80) ? name : "\(name):\(self.port)"
    }

    /// The URL with its query elided: queries carry access tokens, so this is what logs show.
    package var description: String {
        let path = self.target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "/"
        return "\(self.isSecure ? "wss" : "ws")://\(self.hostHeader)\(path)\(self.target.contains("?") ? "?…" : "")"
    }
}

/// Where to open a broker socket and the HTTP headers of the upgrade request (Angel One and Fyers
/// authenticate by headers). Built fresh before every connect attempt, so tokens can be re-read.
package struct BrokerWebSocketRequest: Sendable {
    package var url: WebSocketURL
    package var headers: HTTPHeaders

    package init(url: WebSocketURL, headers: HTTPHeaders = HTTPHeaders()) {
        self.url = url
        self.headers = headers
    }

    /// Parses `url`; see ``WebSocketURL/init(_:)``.
    package init(url: String, headers: [(String, String)] = []) throws(BrokerWebSocketError) {
        self.init(url: try WebSocketURL(url), headers: HTTPHeaders(headers))
    }

    /// The request a broker codec describes (`ZerodhaRequest.connection`, ...), ready to send.
    package init(_ request: BrokerConnectionRequest) throws(BrokerWebSocketError) {
        try self.init(url: request.url, headers: request.headers.map { ($0.name, $0.value) })
    }
}

/// A WebSocket message, inbound or outbound. Text is decoded because brokers only send short
/// control and error JSON as text; ticks come as binary and stay in their `ByteBuffer`.
package enum WebSocketMessage: Sendable, Equatable {
    case text(String)
    case binary(ByteBuffer)
}
