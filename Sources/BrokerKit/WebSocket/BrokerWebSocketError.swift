import NIOCore
import NIOWebSocket

/// Why a broker socket could not be opened or why it closed.
///
/// A struct over a private enum (as swift-service-lifecycle does) so that cases can be added
/// without breaking callers; match on ``kind`` and read ``httpStatus`` or ``closeCode``.
package struct BrokerWebSocketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The category of failure.
    package struct Kind: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Code: Hashable {
            case invalidURL
            case connectTimeout
            case upgradeRejected
            case closedByServer
            case connectionLost
            case pingTimeout
            case protocolViolation
            case transport
        }

        fileprivate let code: Code

        /// The URL is not a usable `ws://` or `wss://` address.
        package static let invalidURL = Kind(code: .invalidURL)
        /// TCP, TLS and the upgrade did not finish within the connect timeout.
        package static let connectTimeout = Kind(code: .connectTimeout)
        /// The server answered the upgrade with another HTTP status (401/403: bad credentials).
        package static let upgradeRejected = Kind(code: .upgradeRejected)
        /// The server sent a close frame.
        package static let closedByServer = Kind(code: .closedByServer)
        /// The connection ended without a close frame.
        package static let connectionLost = Kind(code: .connectionLost)
        /// A keepalive ping got no pong before the next one was due.
        package static let pingTimeout = Kind(code: .pingTimeout)
        /// The server broke the WebSocket protocol (or sent a message over the size limit).
        package static let protocolViolation = Kind(code: .protocolViolation)
        /// A socket or TLS error (refused, reset, certificate not trusted, …).
        package static let transport = Kind(code: .transport)

        package var description: String { "\(self.code)" }
    }

    package let kind: Kind
    /// A sentence for logs and `failed(reason:)`; never contains credentials.
    package let message: String
    /// The HTTP status of a rejected upgrade.
    package let httpStatus: Int?
    /// The code of the server's close frame.
    package let closeCode: WebSocketErrorCode?

    private init(_ kind: Kind, _ message: String, httpStatus: Int? = nil, closeCode: WebSocketErrorCode? = nil) {
        self.kind = kind
        self.message = message
        self.httpStatus = httpStatus
        self.closeCode = closeCode
    }

    package var description: String { self.message }

    /// 401 or 403 on upgrade: the broker refused the credentials.
    package var isAuthenticationFailure: Bool { self.httpStatus == 401 || self.httpStatus == 403 }

    static func invalidURL(_ url: String, _ problem: String) -> Self {
        Self(.invalidURL, "invalid WebSocket URL '\(url.split(separator: "?", maxSplits: 1).first ?? "")': \(problem)")
    }

    static func connectTimeout(_ url: WebSocketURL, after timeout: TimeAmount) -> Self {
        Self(.connectTimeout, "could not connect to \(url) within \(timeout.secondsDescription)")
    }

    static func upgradeRejected(_ url: WebSocketURL, status: Int, reason: String, detail: String?) -> Self {
        let detailText = detail.map { ": \($0)" } ?? ""
        let hint = status == 401 || status == 403 ? " (check the broker credentials)" : ""
        return Self(.upgradeRejected, "\(url) refused the WebSocket upgrade with HTTP \(status) \(reason)\(detailText)\(hint)", httpStatus: status)
    }

    static func closedByServer(code: WebSocketErrorCode?, reason: String) -> Self {
        let codeText = code.map { "\(UInt16(webSocketErrorCode: $0))" } ?? "no code"
        return Self(.closedByServer, "the broker closed the connection (\(codeText)\(reason.isEmpty ? "" : ": \(reason)"))", closeCode: code)
    }

    static let connectionLost = Self(.connectionLost, "the connection to the broker was lost")

    static func closedDuringHandshake(_ url: WebSocketURL) -> Self {
        Self(.connectionLost, "\(url) closed the connection before the WebSocket upgrade completed")
    }

    static func pingTimeout(_ interval: TimeAmount) -> Self {
        Self(.pingTimeout, "the broker did not answer a ping within \(interval.secondsDescription)")
    }

    static func protocolViolation(_ detail: String) -> Self {
        Self(.protocolViolation, "the broker broke the WebSocket protocol: \(detail)")
    }

    static func transport(_ error: any Error) -> Self {
        Self(.transport, "connection error: \(error)")
    }
}

extension TimeAmount {
    /// `"1.5 s"`, for messages people read.
    var secondsDescription: String {
        let seconds = Double(self.nanoseconds) / 1e9
        return seconds == seconds.rounded() ? "\(Int64(seconds)) s" : "\(seconds) s"
    }
}
