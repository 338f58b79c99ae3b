import CZeroMQ
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One libzmq socket, used from one thread at a time (libzmq sockets are not thread-safe).
///
/// Only what a market-data bus needs: PUB and SUB sockets, bind or connect, whole multipart
/// messages in and out. Receiving blocks for at most ``receiveTimeoutMilliseconds``, so a
/// thread that loops on ``receive(into:)`` notices within that time that it should stop.
public final class ZeroMQSocket {
    /// The socket types this wrapper supports.
    public enum Kind: Sendable {
        case publisher
        case subscriber

        var rawValue: Int32 {
            switch self {
            case .publisher: return ZMQ_PUB
            case .subscriber: return ZMQ_SUB
            }
        }
    }

    /// Keeps the context alive until the socket is closed.
    private let context: ZeroMQContext
    private var handle: UnsafeMutableRawPointer?

    public init(context: ZeroMQContext, kind: Kind) throws(ZeroMQError) {
        guard let handle = zmq_socket(context.handle, kind.rawValue) else { throw ZeroMQError.lastError("zmq_socket") }
        self.context = context
        self.handle = handle
    }

    deinit {
        self.close()
    }

    /// Closes the socket; later calls fail with a "closed" error. Closing twice is harmless.
    public func close() {
        guard let handle = self.handle else { return }
        self.handle = nil
        zmq_close(handle)
    }

    private func open() throws(ZeroMQError) -> UnsafeMutableRawPointer {
        guard let handle = self.handle else { throw ZeroMQError.closed }
        return handle
    }

    // MARK: Endpoints

    /// Listens on `endpoint` (`tcp://127.0.0.1:5555`; `tcp://127.0.0.1:*` picks a free port, see
    /// ``lastEndpoint``).
    public func bind(_ endpoint: String) throws(ZeroMQError) {
        guard zmq_bind(try self.open(), endpoint) == 0 else { throw ZeroMQError.lastError("cannot bind \(endpoint)") }
    }

    /// Connects to `endpoint`. libzmq connects in the background and keeps reconnecting, so this
    /// fails only for a malformed endpoint, never because nobody listens yet.
    public func connect(_ endpoint: String) throws(ZeroMQError) {
        guard zmq_connect(try self.open(), endpoint) == 0 else { throw ZeroMQError.lastError("cannot connect to \(endpoint)") }
    }

    /// The endpoint last bound or connected, with the port libzmq chose for a `*` port.
    public func lastEndpoint() throws(ZeroMQError) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        var length = buffer.count
        guard zmq_getsockopt(try self.open(), ZMQ_LAST_ENDPOINT, &buffer, &length) == 0 else {
            throw ZeroMQError.lastError("zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: Options

    /// Receives messages whose first frame starts with `prefix`; an empty prefix receives everything.
    public func subscribe(prefix: [UInt8] = []) throws(ZeroMQError) {
        let handle = try self.open()
        let result = prefix.withUnsafeBytes { zmq_setsockopt(handle, ZMQ_SUBSCRIBE, $0.baseAddress, $0.count) }
        guard result == 0 else { throw ZeroMQError.lastError("zmq_setsockopt(ZMQ_SUBSCRIBE)") }
    }

    /// How long ``close()`` lets unsent messages wait for delivery; 0 drops them at once.
    public func setLinger(milliseconds: Int32) throws(ZeroMQError) {
        try self.setOption(ZMQ_LINGER, milliseconds, "ZMQ_LINGER")
    }

    /// How many messages may queue per peer before new ones are dropped (PUB) or not read (SUB).
    public func setHighWaterMark(send: Int32? = nil, receive: Int32? = nil) throws(ZeroMQError) {
        if let send { try self.setOption(ZMQ_SNDHWM, send, "ZMQ_SNDHWM") }
        if let receive { try self.setOption(ZMQ_RCVHWM, receive, "ZMQ_RCVHWM") }
    }

    /// The longest ``receive(into:)`` blocks waiting for a message; -1 waits for ever.
    public private(set) var receiveTimeoutMilliseconds: Int32 = -1

    public func setReceiveTimeout(milliseconds: Int32) throws(ZeroMQError) {
        try self.setOption(ZMQ_RCVTIMEO, milliseconds, "ZMQ_RCVTIMEO")
        self.receiveTimeoutMilliseconds = milliseconds
    }

    private func setOption(_ option: Int32, _ value: Int32, _ name: String) throws(ZeroMQError) {
        let handle = try self.open()
        var value = value
        guard zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size) == 0 else {
            throw ZeroMQError.lastError("zmq_setsockopt(\(name))")
        }
    }

    // MARK: Messages

    /// Sends one multipart message.
    public func send(_ frames: [[UInt8]]) throws(ZeroMQError) {
        let handle = try self.open()
        for (index, frame) in frames.enumerated() {
            let flags = index == frames.count - 1 ? 0 : ZMQ_SNDMORE
            let sent = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
            guard sent >= 0 else { throw ZeroMQError.lastError("zmq_send") }
        }
    }

    /// Sends one multipart message of UTF-8 text frames.
    public func send(_ frames: [String]) throws(ZeroMQError) {
        try self.send(frames.map { Array($0.utf8) })
    }

    /// Receives the next whole multipart message into `message`, reusing its buffers.
    ///
    /// - Parameter wait: block up to ``receiveTimeoutMilliseconds`` for a message; otherwise
    ///   return at once when none is queued.
    /// - Returns: `false` when no message arrived in time (or a signal interrupted the wait).
    public func receive(into message: inout ZeroMQMessage, wait: Bool = true) throws(ZeroMQError) -> Bool {
        let handle = try self.open()
        message.removeAllFrames()
        var part = zmq_msg_t()
        zmq_msg_init(&part)
        defer { zmq_msg_close(&part) }
        var flags = wait ? Int32(0) : ZMQ_DONTWAIT
        while true {
            guard zmq_msg_recv(&part, handle, flags) >= 0 else {
                let code = zmq_errno()
                if message.frameCount == 0 && (code == EAGAIN || code == EINTR) { return false }
                throw ZeroMQError.lastError("zmq_msg_recv")
            }
            message.append(UnsafeRawBufferPointer(start: zmq_msg_data(&part), count: zmq_msg_size(&part)))
            guard zmq_msg_more(&part) != 0 else { return true }
            // The rest of a multipart message is delivered atomically with its first frame.
            flags = 0
        }
    }
}

@available(*, unavailable)
extension ZeroMQSocket: Sendable {}

/// A received multipart message: its frames, in order. Reused from message to message, so a
/// receive loop allocates only when a frame is larger than any before it.
public struct ZeroMQMessage: Sendable {
    private var storage: [ByteBuffer] = []
    /// How many of ``storage``'s buffers hold frames of the current message.
    public private(set) var frameCount = 0

    public init() {}

    /// A message of the given frames, as a decoder under test would receive it.
    public init(frames: [ByteBuffer]) {
        self.storage = frames
        self.frameCount = frames.count
    }

    /// Frame `index` of the message (`0 ..< frameCount`).
    public subscript(index: Int) -> ByteBuffer {
        precondition(index < self.frameCount, "frame \(index) of a \(self.frameCount)-frame message")
        return self.storage[index]
    }

    mutating func removeAllFrames() {
        self.frameCount = 0
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if self.frameCount == self.storage.count {
            self.storage.append(ByteBuffer())
        }
        self.storage[self.frameCount].clear(minimumCapacity: bytes.count)
        self.storage[self.frameCount].writeBytes(bytes)
        self.frameCount += 1
    }
}
