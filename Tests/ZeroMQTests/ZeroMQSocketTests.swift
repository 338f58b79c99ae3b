import FakeBrokers
import NIOCore
import Testing
import ZeroMQ

#if canImport(Glibc)
import Glibc
#endif

/// The libzmq wrapper over real TCP sockets on 127.0.0.1. The bodies block on receives, so they
/// run on ``BlockingTestExecutor`` rather than the cooperative pool.
@Suite("ZeroMQ sockets")
struct ZeroMQSocketTests {
    @Test("a connecting PUB reaches a bound SUB with whole two-frame messages, once the connection is up")
    func publishToBoundSubscriber() async throws {
        try await withTaskExecutorPreference(BlockingTestExecutor.shared) {
            let context = try ZeroMQContext()
            let subscriber = try ZeroMQSocket(context: context, kind: .subscriber)
            try subscriber.setLinger(milliseconds: 0)
            try subscriber.setReceiveTimeout(milliseconds: 50)
            try subscriber.subscribe()
            try subscriber.bind("tcp://127.0.0.1:*")
            let endpoint = try subscriber.lastEndpoint()
            #expect(endpoint.hasPrefix("tcp://127.0.0.1:") && !endpoint.hasSuffix(":*"))

            let publisher = try ZeroMQSocket(context: context, kind: .publisher)
            try publisher.setLinger(milliseconds: 0)
            try publisher.connect(endpoint)
            var message = ZeroMQMessage()
            let first = try Self.publishUntilReceived(["NSE_SBIN_LTP", #"{"ltp": 1}"#], from: publisher, to: subscriber, into: &message)
            #expect(first == ["NSE_SBIN_LTP", #"{"ltp": 1}"#])

            let large = String(repeating: "x", count: 100_000)
            try publisher.send(["A_B_QUOTE", large])
            try publisher.send([[0x00, 0xFF], [], [0x31]])
            #expect(try Self.receive(from: subscriber, into: &message) == ["A_B_QUOTE", large])
            #expect(try subscriber.receive(into: &message))
            #expect(message.frameCount == 3)
            #expect(Array(message[0].readableBytesView) == [0x00, 0xFF] && message[1].readableBytes == 0 && message[2].readableBytes == 1)
            #expect(try !subscriber.receive(into: &message, wait: false), "nothing more is queued")
            publisher.close()
            subscriber.close()
        }
    }

    @Test("errors carry libzmq's text: a taken port, a malformed endpoint, a closed socket")
    func errors() throws {
        let context = try ZeroMQContext()
        let first = try ZeroMQSocket(context: context, kind: .subscriber)
        try first.setLinger(milliseconds: 0)
        try first.bind("tcp://127.0.0.1:*")
        let endpoint = try first.lastEndpoint()
        let second = try ZeroMQSocket(context: context, kind: .subscriber)
        try second.setLinger(milliseconds: 0)
        #expect {
            try second.bind(endpoint)
        } throws: { error in
            (error as? ZeroMQError)?.code == EADDRINUSE && "\(error)" == "cannot bind \(endpoint): Address already in use"
        }
        #expect {
            try second.connect("nowhere")
        } throws: { error in
            "\(error)" == "cannot connect to nowhere: Invalid argument"
        }
        second.close()
        #expect {
            try second.bind(endpoint)
        } throws: { error in
            "\(error)" == "the ZeroMQ socket is closed"
        }
        first.close()
    }

    /// Sends `frames` every 20 ms until the subscriber receives a message (a new connection
    /// drops what is published before it is up: ZeroMQ's slow joiner).
    static func publishUntilReceived(
        _ frames: [String],
        from publisher: ZeroMQSocket,
        to subscriber: ZeroMQSocket,
        into message: inout ZeroMQMessage
    ) throws -> [String] {
        for _ in 0..<500 {
            try publisher.send(frames)
            if try subscriber.receive(into: &message) { return Self.texts(message) }
        }
        throw ZeroMQTestTimeout()
    }

    static func receive(from subscriber: ZeroMQSocket, into message: inout ZeroMQMessage) throws -> [String] {
        for _ in 0..<200 where try subscriber.receive(into: &message) {
            return Self.texts(message)
        }
        throw ZeroMQTestTimeout()
    }

    static func texts(_ message: ZeroMQMessage) -> [String] {
        (0..<message.frameCount).map { String(buffer: message[$0]) }
    }

    struct ZeroMQTestTimeout: Error {}
}
