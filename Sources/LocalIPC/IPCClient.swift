import NIOCore
import WireJSON

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A message from the agent: a reply to a request, or an event.
public enum IPCMessage: Sendable, Equatable {
    case reply(id: RPCID?, result: Result<JSONValue, RPCError>)
    case event(method: String, params: JSONValue)
}

/// Why a client call did not give a result. Each kind maps to one exit status of `oactl`.
public struct IPCClientError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Kind: Sendable, Equatable {
        case notRunning(path: String, detail: String)
        case permissionDenied(path: String, detail: String)
        case timedOut(String)
        case connectionClosed(String)
        case protocolViolation(String)
        case remote(RPCError)
    }

    private let kind: Kind

    private init(_ kind: Kind) {
        self.kind = kind
    }

    /// Nothing listens on the socket (or it does not exist).
    public static func notRunning(path: String, detail: String) -> IPCClientError { .init(.notRunning(path: path, detail: detail)) }
    /// The socket exists but this user may not use it, or the agent refused this peer.
    public static func permissionDenied(path: String, detail: String) -> IPCClientError {
        .init(.permissionDenied(path: path, detail: detail))
    }
    public static func timedOut(_ what: String) -> IPCClientError { .init(.timedOut(what)) }
    public static func connectionClosed(_ detail: String) -> IPCClientError { .init(.connectionClosed(detail)) }
    public static func protocolViolation(_ detail: String) -> IPCClientError { .init(.protocolViolation(detail)) }
    /// The agent answered with an error.
    public static func remote(_ error: RPCError) -> IPCClientError { .init(.remote(error)) }

    public var isNotRunning: Bool { if case .notRunning = self.kind { return true } else { return false } }
    public var isPermissionDenied: Bool { if case .permissionDenied = self.kind { return true } else { return false } }
    public var isTimeout: Bool { if case .timedOut = self.kind { return true } else { return false } }

    /// The agent's error, when it answered with one.
    public var remoteError: RPCError? {
        if case .remote(let error) = self.kind { return error }
        return nil
    }

    public var description: String {
        switch self.kind {
        case .notRunning(let path, let detail): return "the agent is not running (no answer on \(path): \(detail))"
        case .permissionDenied(let path, let detail): return "permission denied on \(path): \(detail)"
        case .timedOut(let what): return "timed out waiting for \(what)"
        case .connectionClosed(let detail): return "the agent closed the connection: \(detail)"
        case .protocolViolation(let detail): return "the agent sent something unexpected: \(detail)"
        case .remote(let error): return error.message
        }
    }
}

/// A blocking client of the local socket: plain `socket`/`connect`/`read`, no event loop, so
/// command-line tools, tests and GUIs can use it from any thread (one thread per client).
///
/// Events that arrive while ``call(_:params:)`` waits for its reply are kept, in order, for
/// ``nextMessage(timeout:)``.
public final class IPCClient {
    /// The socket path this client is connected to.
    public let path: String
    /// The `hello` the agent greeted with.
    public private(set) var hello = JSONObject()
    /// How long to wait for a reply (or the greeting); `nil` waits forever.
    public var timeout: Duration?

    private let descriptor: Int32
    private var inbound: [UInt8] = []
    private var inboundStart = 0
    private var queued: [IPCMessage] = []
    private var nextID = 0
    private var isClosed = false

    /// Connects to the agent at `path` and reads its greeting.
    public init(path: String, timeout: Duration? = .seconds(5)) throws(IPCClientError) {
        self.path = path
        self.timeout = timeout
        self.descriptor = try Self.connect(path)
        do throws(IPCClientError) {
            let deadline = Self.deadline(after: timeout)
            guard let first = try self.readMessage(deadline: deadline, waitingFor: "the agent's greeting") else {
                throw .permissionDenied(
                    path: path,
                    detail: "the agent closed the connection before greeting; it refuses clients of another user"
                )
            }
            guard case .event(let method, let params) = first, method == IPCEvent.hello.rawValue, let hello = params.objectValue else {
                throw .protocolViolation("the first message was not a hello")
            }
            self.hello = hello
        } catch {
            self.close()
            throw error
        }
    }

    deinit {
        self.close()
    }

    /// Sends a request and waits for its reply; events that come first are queued.
    ///
    /// - Throws: ``IPCClientError/remote(_:)`` when the agent answers with an error.
    @discardableResult
    public func call(_ method: String, params: JSONObject = JSONObject()) throws(IPCClientError) -> JSONValue {
        self.nextID += 1
        let id = RPCID.integer(self.nextID)
        try self.send(RPCRequest(id: id, method: method, params: params).json)
        let deadline = Self.deadline(after: self.timeout)
        while true {
            guard let message = try self.readMessage(deadline: deadline, waitingFor: "the reply to \(method)") else {
                throw .connectionClosed("no reply to \(method)")
            }
            if case .reply(let replyID, let result) = message, replyID == id {
                switch result {
                case .success(let value): return value
                case .failure(let error): throw .remote(error)
                }
            }
            self.queued.append(message)
        }
    }

    /// Sends one request without waiting (a notification when `id` is `nil`).
    public func send(_ request: JSONValue) throws(IPCClientError) {
        var buffer = ByteBufferAllocator().buffer(capacity: 256)
        buffer.writeJSONValue(request, compact: true)
        buffer.writeInteger(UInt8(ascii: "\n"))
        try self.writeAll(buffer.readableBytesView)
    }

    /// Sends raw bytes, for tests of what the agent does with malformed input.
    public func sendRaw(_ bytes: some Collection<UInt8>) throws(IPCClientError) {
        try self.writeAll(Array(bytes))
    }

    /// The next message: a queued one first, else one read within `timeout` (`nil` waits forever).
    ///
    /// - Returns: `nil` when the agent closed the connection.
    /// - Throws: ``IPCClientError/timedOut(_:)`` when nothing came in time.
    public func nextMessage(timeout: Duration? = nil) throws(IPCClientError) -> IPCMessage? {
        if !self.queued.isEmpty { return self.queued.removeFirst() }
        return try self.readMessage(deadline: Self.deadline(after: timeout), waitingFor: "a message")
    }

    /// The next raw line, undecoded (for tests and `oactl call` of batches).
    public func nextLine(timeout: Duration? = nil) throws(IPCClientError) -> String? {
        try self.readLine(deadline: Self.deadline(after: timeout), waitingFor: "a line").map { String(decoding: $0, as: UTF8.self) }
    }

    /// Closes the connection; further calls fail.
    public func close() {
        guard !self.isClosed else { return }
        self.isClosed = true
        Glibc.close(self.descriptor)
    }

    // MARK: Socket

    private static func connect(_ path: String) throws(IPCClientError) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw .notRunning(path: path, detail: "the path is longer than a socket path may be")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw .notRunning(path: path, detail: String(cString: strerror(errno))) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if result != 0 {
            let code = errno
            Glibc.close(descriptor)
            let detail = String(cString: strerror(code))
            if code == EACCES || code == EPERM { throw .permissionDenied(path: path, detail: detail) }
            throw .notRunning(path: path, detail: detail)
        }
        return descriptor
    }

    private func writeAll(_ bytes: some Collection<UInt8>) throws(IPCClientError) {
        guard !self.isClosed else { throw .connectionClosed("the client was closed") }
        let array = Array(bytes)
        var offset = 0
        while offset < array.count {
            let written = array.withUnsafeBytes { raw in
                Glibc.send(self.descriptor, raw.baseAddress! + offset, array.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw .connectionClosed(String(cString: strerror(errno)))
            }
            offset += written
        }
    }

    private static func deadline(after timeout: Duration?) -> ContinuousClock.Instant? {
        timeout.map { ContinuousClock.now + $0 }
    }

    private func readMessage(deadline: ContinuousClock.Instant?, waitingFor what: String) throws(IPCClientError) -> IPCMessage? {
        while true {
            guard let line = try self.readLine(deadline: deadline, waitingFor: what) else { return nil }
            if line.isEmpty { continue }
            let value: JSONValue
            do {
                value = try JSONParser.parse(String(decoding: line, as: UTF8.self))
            } catch {
                throw .protocolViolation("a line that is not JSON (\(error))")
            }
            return try Self.message(from: value)
        }
    }

    static func message(from value: JSONValue) throws(IPCClientError) -> IPCMessage {
        guard let object = value.objectValue else { throw .protocolViolation("a line that is not a JSON object") }
        if let method = object["method"]?.stringValue, object["id"] == nil {
            return .event(method: method, params: object["params"] ?? .null)
        }
        let id = object["id"].flatMap(RPCID.init(json:))
        if let error = object["error"] {
            return .reply(id: id, result: .failure(RPCError(json: error)))
        }
        guard let result = object["result"] else { throw .protocolViolation("a reply with neither result nor error") }
        return .reply(id: id, result: .success(result))
    }

    /// One line without its `\n` (and a trailing `\r`); `nil` at end of stream.
    private func readLine(deadline: ContinuousClock.Instant?, waitingFor what: String) throws(IPCClientError) -> ArraySlice<UInt8>? {
        while true {
            if let newline = self.inbound[self.inboundStart...].firstIndex(of: UInt8(ascii: "\n")) {
                var end = newline
                if end > self.inboundStart && self.inbound[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                let line = self.inbound[self.inboundStart..<end]
                self.inboundStart = newline + 1
                return line
            }
            if self.inboundStart > 0 {
                self.inbound.removeFirst(self.inboundStart)
                self.inboundStart = 0
            }
            guard self.inbound.count <= IPCProtocol.maximumLineBytes else {
                throw .protocolViolation("a line longer than \(IPCProtocol.maximumLineBytes) bytes")
            }
            guard try self.fill(deadline: deadline, waitingFor: what) else {
                return nil
            }
        }
    }

    /// `poll`'s timeout for a wait of `remaining`, rounded up to the next millisecond. `poll` takes
    /// at most `Int32.max` ms (24 days), and a longer wait polls again when that runs out; the
    /// milliseconds of a timeout as long as `.seconds(Int64.max)` would overflow `Int64`.
    static func pollTimeout(remaining: Duration) -> Int32 {
        let (seconds, attoseconds) = remaining.components
        guard seconds < Int64(Int32.max / 1000) else { return Int32.max }
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
    }

    /// Reads what is available into ``inbound``; `false` at end of stream.
    private func fill(deadline: ContinuousClock.Instant?, waitingFor what: String) throws(IPCClientError) -> Bool {
        guard !self.isClosed else { throw .connectionClosed("the client was closed") }
        while true {
            var timeoutMilliseconds: Int32 = -1
            if let deadline {
                let remaining = deadline - ContinuousClock.now
                if remaining <= .zero { throw .timedOut(what) }
                timeoutMilliseconds = Self.pollTimeout(remaining: remaining)
            }
            var descriptor = pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, timeoutMilliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                throw .connectionClosed(String(cString: strerror(errno)))
            }
            if ready == 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            let count = chunk.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                if errno == ECONNRESET { return false }
                throw .connectionClosed(String(cString: strerror(errno)))
            }
            if count == 0 { return false }
            self.inbound.append(contentsOf: chunk[0..<count])
            return true
        }
    }
}

@available(*, unavailable)
extension IPCClient: Sendable {}

extension IPCMessage {
    /// The message as the JSON-RPC object it came as (compact on output), for `--raw` printing.
    public var lineJSON: JSONValue {
        switch self {
        case .reply(let id, .success(let result)): return RPCReply.result(id: id, result)
        case .reply(let id, .failure(let error)): return RPCReply.error(id: id, error)
        case .event(let method, let params): return .object(["jsonrpc": "2.0", "method": .string(method), "params": params])
        }
    }
}
