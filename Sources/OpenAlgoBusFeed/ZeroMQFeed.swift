import BrokerKit
import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A feed from OpenAlgo's ZeroMQ bus, so the agent can stand in for OpenAlgo's Python WebSocket
/// proxy: its broker adapters (about thirty brokers) keep publishing normalised ticks, and the
/// agent serves them to WebSocket and local clients.
///
/// The bus takes no requests: OpenAlgo's own server drives the adapters, so ``subscribe(_:mode:depth:)``
/// accepts every instrument and the hub delivers whatever the bus publishes for it. Order updates
/// on the bus go to clients that sent `subscribe_orders`.
///
/// libzmq calls block, so the socket lives on a thread of its own (never an event loop or the
/// cooperative pool), which waits at most ``receiveTimeoutMilliseconds`` per call so that
/// ``disconnect()`` is prompt.
package final class ZeroMQFeed: BrokerAdapter {
    /// How long one receive call blocks before the thread checks whether to stop.
    static let receiveTimeoutMilliseconds: Int32 = 100
    /// How many messages in a row the thread takes before it checks again whether to stop: the
    /// check takes a lock, and a busy bus brings a message every microsecond or so.
    static let messagesBetweenStopChecks = 64

    private struct State {
        var connectionState = FeedConnectionState.disconnected
        var thread: NIOThreadPool?
        var stopRequested = false
    }

    package let configuration: ZeroMQFeedConfiguration
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    package init(configuration: ZeroMQFeedConfiguration, eventLoop: any EventLoop, logger: Logger) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        var logger = logger
        logger[metadataKey: "endpoint"] = "\(configuration.endpoint)"
        self.logger = logger
    }

    /// The `broker_name` setting: the bus itself names no broker.
    package var brokerName: String { self.configuration.brokerName }

    /// `connected` from the moment the socket is bound (or connecting): ZeroMQ reports nothing
    /// about the publishers on the other side. `oactl status` shows how long ago the last tick came.
    package var connectionState: FeedConnectionState {
        self.state.withLockedValue { $0.connectionState }
    }

    package func connect(sink: any FeedEventSink) async throws {
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        self.state.withLockedValue {
            $0.thread = thread
            $0.stopRequested = false
        }
        if self.configuration.isReachableBeyondThisMachine {
            self.logger.warning(
                "the ZeroMQ endpoint is reachable from other machines and the bus has no authentication: anyone who reaches it can publish prices; keep it on 127.0.0.1"
            )
        }
        let ready = self.eventLoop.makePromise(of: Void.self)
        let receiver = Receiver(configuration: self.configuration, sink: sink, state: self.state, logger: self.logger)
        _ = thread.runIfActive(eventLoop: self.eventLoop) { receiver.run(ready: ready) }
        do {
            try await ready.futureResult.get()
        } catch {
            self.state.withLockedValue { $0.thread = nil }
            try? await thread.shutdownGracefully()
            if let error = error as? ZeroMQError, error.code == EADDRINUSE {
                self.logger.error("the ZeroMQ endpoint is taken: stop OpenAlgo's Python WebSocket proxy (or set [brokers.zmq] endpoint)")
            }
            throw error
        }
        self.state.withLockedValue { $0.connectionState = .connected }
        sink.feedStateChanged(.connected)
    }

    /// Accepts every instrument: the bus cannot be asked for anything, and what it publishes for
    /// the instrument reaches the subscriber. Depth levels are whatever the adapter publishes.
    package func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) async -> [SubscribeOutcome] {
        instruments.map { _ in .subscribed(actualDepth: nil) }
    }

    /// Nothing to tell the bus; the hub stops delivering.
    package func unsubscribe(_ instruments: [Instrument]) async {}

    package func disconnect() async {
        let thread = self.state.withLockedValue { state in
            state.stopRequested = true
            defer { state.thread = nil }
            return state.thread
        }
        try? await thread?.shutdownGracefully()
        self.state.withLockedValue { $0.connectionState = .disconnected }
    }

    /// The receiving thread's work: open the socket, then receive until asked to stop.
    private struct Receiver: Sendable {
        let configuration: ZeroMQFeedConfiguration
        let sink: any FeedEventSink
        let state: NIOLockedValueBox<State>
        let logger: Logger

        func run(ready: EventLoopPromise<Void>) {
            let socket: ZeroMQSocket
            do {
                socket = try self.open()
            } catch {
                ready.fail(error)
                return
            }
            defer { socket.close() }
            ready.succeed()
            self.receive(from: socket)
        }

        private func open() throws(ZeroMQError) -> ZeroMQSocket {
            let socket = try ZeroMQSocket(context: try ZeroMQContext(), kind: .subscriber)
            try socket.setLinger(milliseconds: 0)
            try socket.setReceiveTimeout(milliseconds: ZeroMQFeed.receiveTimeoutMilliseconds)
            try socket.subscribe()
            switch self.configuration.socketMode {
            case .bind: try socket.bind(self.configuration.endpoint)
            case .connect: try socket.connect(self.configuration.endpoint)
            }
            self.logger.info(
                "ZeroMQ feed listening",
                metadata: ["socket_mode": "\(self.configuration.socketMode.rawValue)", "last_endpoint": "\((try? socket.lastEndpoint()) ?? "?")"]
            )
            return socket
        }

        private func receive(from socket: ZeroMQSocket) {
            var decoder = ZeroMQBusDecoder()
            var message = ZeroMQMessage()
            var reported = Set<ZeroMQSkipReason>()
            var messagesUntilStopCheck = 0
            while true {
                if messagesUntilStopCheck == 0 {
                    if self.state.withLockedValue({ $0.stopRequested }) { break }
                    messagesUntilStopCheck = ZeroMQFeed.messagesBetweenStopChecks
                }
                let received: Bool
                do {
                    received = try socket.receive(into: &message)
                } catch {
                    self.logger.error("ZeroMQ receive failed", metadata: ["error": "\(error)"])
                    self.state.withLockedValue { $0.connectionState = .failed(reason: "ZeroMQ receive failed: \(error)") }
                    self.sink.feedStateChanged(.failed(reason: "ZeroMQ receive failed: \(error)"))
                    break
                }
                guard received else {
                    messagesUntilStopCheck = 0
                    continue
                }
                messagesUntilStopCheck -= 1
                switch decoder.decode(message) {
                case .tick(let tick):
                    self.sink.receive(tick)
                case .orderUpdate(let body):
                    self.sink.receiveOrderUpdate(body)
                case .ignored:
                    break
                case .skipped(let reason):
                    let topic = message.frameCount > 0 ? String(decoding: message[0].readableBytesView, as: UTF8.self) : ""
                    let level: Logger.Level = reported.insert(reason).inserted ? .warning : .debug
                    self.logger.log(level: level, "skipped a ZeroMQ message", metadata: ["reason": "\(reason)", "topic": "\(topic)"])
                }
            }
            let statistics = decoder.statistics
            self.logger.info(
                "ZeroMQ feed stopped",
                metadata: [
                    "messages": "\(statistics.messages)", "ticks": "\(statistics.ticks)", "order_updates": "\(statistics.orderUpdates)",
                    "ignored": "\(statistics.ignored)",
                    "skipped": "\(statistics.skipped.map { "\($0.key): \($0.value)" }.sorted().joined(separator: ", "))",
                ]
            )
        }
    }
}
