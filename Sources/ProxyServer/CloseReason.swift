import NIOCore
import NIOWebSocket

/// Why the server closes a WebSocket, with the code and reason text clients see.
struct CloseReason: Sendable, Equatable {
    var code: WebSocketErrorCode
    var text: String

    static let authTimeout = CloseReason(code: .unknown(4401), text: "auth timeout")
    static let keepaliveTimeout = CloseReason(code: .unexpectedServerError, text: "keepalive ping timeout")
    static let tryAgainLater = CloseReason(code: .unknown(1013), text: "try again later")
    static let shuttingDown = CloseReason(code: .goingAway, text: "server shutting down")
    static let protocolError = CloseReason(code: .protocolError, text: "protocol error")
    static let apiKeyRotated = CloseReason(code: .policyViolation, text: "API key rotated; authenticate with the new key")

    /// The close frame carrying this code and reason.
    func frame(allocator: ByteBufferAllocator) -> WebSocketFrame {
        var data = allocator.buffer(capacity: 2 + self.text.utf8.count)
        data.write(webSocketErrorCode: self.code)
        data.writeString(self.text)
        return WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
    }

    /// 1012 ("service restart"): the broker feed failed for good; the SDK reconnects and
    /// re-subscribes, which starts the feed's recovery.
    static func feedFailed(_ reason: String) -> CloseReason {
        CloseReason(code: .unknown(1012), text: String("broker feed failed: \(reason)".utf8.prefix(120)) ?? "broker feed failed")
    }

    static func slowConsumer(_ detail: String) -> CloseReason {
        CloseReason(code: .policyViolation, text: "slow consumer: \(detail)")
    }

    static func tooBig(limit: Int) -> CloseReason {
        CloseReason(code: .messageTooLarge, text: "frame exceeds limit of \(limit) bytes")
    }
}
