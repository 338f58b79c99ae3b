import NIOCore
import WireJSON

#if canImport(Glibc)
import Glibc
#endif

/// A deliberately plain, blocking WebSocket client for transcript tests: it sends exactly the
/// bytes a test asks for and hands back every frame the server sends, including control frames,
/// so tests can see pings, close codes and reasons that a full client library would hide.
public final class TestWebSocketClient {
    public struct Frame: Equatable {
        public var opcode: UInt8
        public var payload: [UInt8]

        public var text: String { String(decoding: self.payload, as: UTF8.self) }
        public var closeCode: Int? { self.opcode == 0x8 && self.payload.count >= 2 ? Int(self.payload[0]) << 8 | Int(self.payload[1]) : nil }
        public var closeReason: String { String(decoding: self.payload.dropFirst(2), as: UTF8.self) }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String

        public init(description: String) {
            self.description = description
        }
    }

    private let descriptor: Int32
    private var pending: [UInt8] = []

    /// Sends a plain HTTP GET (no upgrade) and returns the whole response.
    public static func plainHTTPGet(port: Int) throws -> String {
        let client = try TestWebSocketClient(port: port, upgrade: false)
        try client.sendBytes(Array("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
        return try client.readHTTPHead()
    }

    /// Connects and completes the upgrade. `receiveBuffer` shrinks the socket's receive buffer, to
    /// make a client that stops reading fill up quickly.
    public init(port: Int, path: String = "/", receiveBuffer: Int32? = nil, timeoutSeconds: Int = 10, upgrade: Bool = true) throws {
        self.descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard self.descriptor >= 0 else { throw Failure(description: "socket() failed") }
        if var size = receiveBuffer {
            setsockopt(self.descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(self.descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(self.descriptor)
            throw Failure(description: "connect() failed: \(errno)")
        }
        guard upgrade else { return }
        try self.sendBytes(
            Array(
                ("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").utf8
            )
        )
        let head = try self.readHTTPHead()
        guard head.hasPrefix("HTTP/1.1 101") else { throw Failure(description: "upgrade refused: \(head)") }
    }

    deinit {
        close(self.descriptor)
    }

    // MARK: Sending

    public func send(_ text: String) throws {
        try self.sendFrame(opcode: 0x1, payload: Array(text.utf8))
    }

    public func send(_ value: JSONValue) throws {
        try self.send(value.jsonText)
    }

    public func sendFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true) throws {
        var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count < 65_536 {
            frame.append(0x80 | 126)
            frame += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try self.sendBytes(frame)
    }

    private func sendBytes(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(self.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw Failure(description: "send() failed: \(errno)") }
            offset += written
        }
    }

    // MARK: Receiving

    /// The next frame of any kind; throws on timeout or when the server closed the TCP connection.
    public func receiveFrame() throws -> Frame {
        let header = try self.readExactly(2)
        let opcode = header[0] & 0x0F
        var length = Int(header[1] & 0x7F)
        if length == 126 {
            let extended = try self.readExactly(2)
            length = Int(extended[0]) << 8 | Int(extended[1])
        } else if length == 127 {
            length = try self.readExactly(8).reduce(0) { $0 << 8 | Int($1) }
        }
        return Frame(opcode: opcode, payload: try self.readExactly(length))
    }

    /// The next frame that is not a ping; pings are answered, as every real client does.
    public func receiveAnsweringPings() throws -> Frame {
        while true {
            let frame = try self.receiveFrame()
            guard frame.opcode == 0x9 else { return frame }
            try self.sendFrame(opcode: 0xA, payload: frame.payload)
        }
    }

    /// The next text frame that is not market data, parsed.
    public func receiveReply() throws -> JSONValue {
        while true {
            let frame = try self.receiveAnsweringPings()
            guard frame.opcode == 0x1 else {
                if frame.opcode == 0x8 { throw Failure(description: "closed: \(frame.closeCode ?? 0) \(frame.closeReason)") }
                continue
            }
            let value = try JSONParser.parse(frame.text)
            if value.objectValue?["type"] == "market_data" { continue }
            return value
        }
    }

    /// The text of the next reply that is not market data, exactly as sent.
    public func receiveReplyText() throws -> String {
        while true {
            let frame = try self.receiveAnsweringPings()
            if frame.opcode == 0x8 { throw Failure(description: "closed: \(frame.closeCode ?? 0) \(frame.closeReason)") }
            if frame.opcode == 0x1 && !frame.text.hasPrefix("{\"type\": \"market_data\"") { return frame.text }
        }
    }

    /// The next market-data frame, parsed.
    public func receiveMarketData() throws -> JSONObject {
        while true {
            let frame = try self.receiveAnsweringPings()
            if frame.opcode == 0x8 { throw Failure(description: "closed: \(frame.closeCode ?? 0) \(frame.closeReason)") }
            guard frame.opcode == 0x1, let object = try JSONParser.parse(frame.text).objectValue, object["type"] == "market_data" else { continue }
            return object
        }
    }

    /// Reads until a close frame arrives; returns it.
    public func receiveClose() throws -> Frame {
        while true {
            let frame = try self.receiveAnsweringPings()
            if frame.opcode == 0x8 { return frame }
        }
    }

    /// Authenticates with `key` and returns the reply.
    @discardableResult
    public func authenticate(_ key: String) throws -> JSONValue {
        try self.send(.object(["action": "authenticate", "api_key": .string(key)]))
        return try self.receiveReply()
    }

    private func readHTTPHead() throws -> String {
        while true {
            if let end = self.findHeadEnd() {
                let head = String(decoding: self.pending[..<end], as: UTF8.self)
                self.pending.removeFirst(end + 4)
                return head
            }
            try self.fill()
        }
    }

    private func findHeadEnd() -> Int? {
        guard self.pending.count >= 4 else { return nil }
        for index in 0...(self.pending.count - 4)
        where self.pending[index] == 13 && self.pending[index + 1] == 10 && self.pending[index + 2] == 13 && self.pending[index + 3] == 10 {
            return index
        }
        return nil
    }

    private func readExactly(_ count: Int) throws -> [UInt8] {
        while self.pending.count < count { try self.fill() }
        let bytes = Array(self.pending[..<count])
        self.pending.removeFirst(count)
        return bytes
    }

    private func fill() throws {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let count = recv(self.descriptor, &buffer, buffer.count, 0)
        guard count > 0 else { throw Failure(description: count == 0 ? "connection closed by the server" : "recv() failed or timed out: \(errno)") }
        self.pending += buffer[..<count]
    }
}
