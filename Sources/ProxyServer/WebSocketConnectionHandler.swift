import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket
import OpenAlgoWire
import StreamingHub
import WireJSON

/// One client's WebSocket, after the upgrade: the OpenAlgo protocol, keepalive, deadlines, and the
/// client's side of the fan-out (a conflating outbox, so one slow reader never slows anyone else).
///
/// Lives on one of the server's client loops; the hub hands it frames on that loop, and it reaches
/// the hub through a ``HubConnector``.
final class WebSocketConnectionHandler: ChannelInboundHandler, MarketDataSubscriber {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private enum Phase {
        case awaitingAuthentication
        case authenticated
        /// Over its budget; closed on the next loop turn, market data no longer taken.
        case closingSlowConsumer
        case closing
    }

    /// At most this many client messages wait while failed authentications are being slowed down.
    private static let maximumDeferredMessages = 64

    let subscriberID: SubscriberID
    let deliveryEventLoop: (any EventLoop)?
    private let proxy: ProxyContext
    /// Where frames that carry their own header are written, past NIO's frame encoder.
    private let gateway: PreframedWriteGateway?
    /// What ``describe()`` reports, readable from the hub's loop.
    private let gauge = OutboxGauge()
    private var logger: Logger
    private var context: ChannelHandlerContext?
    private var phase = Phase.awaitingAuthentication
    private var outbox: ConflatingOutbox
    private var wroteMarketData = false
    /// The channel's writability, kept from `channelWritabilityChanged` (NIO reports a change
    /// during the write that causes it), so the fan-out does not ask the channel for every frame.
    private var isChannelWritable = true
    private var unwritableSince: NIODeadline?
    private var lastPingSent = NIODeadline.now()
    private var pingOutstandingSince: NIODeadline?
    private var authDeadline: Scheduled<Void>?
    private var closeDeadline: Scheduled<Void>?
    private var failedAuthentications = 0
    private var penaltyUntil: NIODeadline?
    private var deferredMessages: [ByteBuffer] = []
    private let connectedAt = WallClock.epochMilliseconds()
    /// Set once, before the hub learns of the connection; ``describe()`` reads it from the hub's loop.
    private var peer = "?"
    /// Set by `subscribe_orders`, cleared by `unsubscribe_orders`.
    private var receivesOrderUpdates = false

    /// - Parameter gateway: the handler at the front of the pipeline, for writes of shared frames
    ///   that already carry their header; without it every frame goes through the encoder.
    init(proxy: ProxyContext, gateway: PreframedWriteGateway? = nil) {
        self.proxy = proxy
        self.gateway = gateway
        self.deliveryEventLoop = proxy.eventLoop
        self.subscriberID = proxy.makeSubscriberID()
        self.outbox = ConflatingOutbox(byteBudget: proxy.configuration.outboxBudgetBytes)
        self.logger = proxy.logger
        self.logger[metadataKey: "client"] = "\(self.subscriberID)"
    }

    private var hub: HubConnector { self.proxy.hub }
    private var brokerName: String { self.hub.published.brokerName }

    /// Whether the client authenticated (so it is affected by a key rotation).
    var isAuthenticated: Bool { self.phase == .authenticated }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.isChannelWritable = context.channel.isWritable
        self.peer = context.channel.remoteAddress.map { "\($0)" } ?? "?"
        self.proxy.connectionOpened(self)
        self.hub.register(self)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.authDeadline = context.eventLoop.scheduleTask(in: self.proxy.configuration.authTimeout) {
            handler.value.authenticationTimedOut()
        }
        self.logger.debug("client connected", metadata: ["peer": "\(self.peer)"])
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.release()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.release()
        context.fireChannelInactive()
    }

    private func release() {
        self.authDeadline?.cancel()
        self.closeDeadline?.cancel()
        self.hub.remove(self)
        self.proxy.connectionClosed(self)
    }

    private func authenticationTimedOut() {
        guard self.phase == .awaitingAuthentication else { return }
        self.logger.info("closing unauthenticated client", metadata: ["reason": "auth timeout"])
        self.close(.authTimeout, graceful: true)
    }

    /// Called about once a second: keepalive pings, the pong deadline, the unwritable deadline.
    func housekeeping(now: NIODeadline) {
        guard self.phase != .closing, self.phase != .closingSlowConsumer, let context else { return }
        let configuration = self.proxy.configuration
        if let since = self.unwritableSince, now - since >= configuration.unwritableDeadline {
            self.closeSlowConsumer("socket not writable for \(configuration.unwritableDeadline.nanoseconds / 1_000_000_000) s")
            return
        }
        if let since = self.pingOutstandingSince {
            if now - since >= configuration.pingTimeout {
                self.logger.info("closing client", metadata: ["reason": "keepalive ping timeout"])
                self.close(.keepaliveTimeout, graceful: false)
            }
        } else if now - self.lastPingSent >= configuration.pingInterval {
            self.lastPingSent = now
            self.pingOutstandingSince = now
            var payload = context.channel.allocator.buffer(capacity: 8)
            payload.writeInteger(UInt64(truncatingIfNeeded: now.uptimeNanoseconds))
            context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: payload)), promise: nil)
        }
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            guard self.phase != .closing else { return }
            self.handleMessage(frame.unmaskedData)
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.writeAndFlush(self.wrapOutboundOut(pong), promise: nil)
        case .pong:
            self.pingOutstandingSince = nil
        case .connectionClose:
            self.peerClosed(frame)
        default:
            break
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.isChannelWritable = context.channel.isWritable
        if self.isChannelWritable {
            self.drainOutbox()
        } else if self.unwritableSince == nil {
            self.unwritableSince = .now()
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case NIOWebSocketError.invalidFrameLength, NIOWebSocketFrameAggregator.Error.accumulatedFrameSizeIsTooLarge:
            self.logger.info("closing client", metadata: ["reason": "message too large"])
            self.close(.tooBig(limit: self.proxy.configuration.maxMessageBytes), graceful: false)
        case is NIOWebSocketError, is NIOWebSocketFrameAggregator.Error:
            self.logger.info("closing client", metadata: ["reason": "protocol error", "error": "\(error)"])
            self.close(.protocolError, graceful: false)
        default:
            self.logger.debug("connection error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    private func peerClosed(_ frame: WebSocketFrame) {
        guard let context else { return }
        if self.phase == .closing {
            context.close(promise: nil)
            return
        }
        self.phase = .closing
        self.hub.remove(self)
        var data = frame.unmaskedData
        let echo = CloseReason(code: data.readWebSocketErrorCode() ?? .normalClosure, text: "")
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(self.wrapOutboundOut(echo.frame(allocator: context.channel.allocator)))
            .whenComplete { _ in loopContext.value.close(promise: nil) }
    }

    private func handleMessage(_ payload: ByteBuffer) {
        if let penaltyUntil, penaltyUntil > .now() {
            self.deferMessage(payload)
            return
        }
        switch ClientMessage.decode(payload) {
        case .failure(let error):
            self.sendError(error)
        case .success(let message):
            if message.action.requiresAuthentication && self.phase != .authenticated {
                self.sendError(.notAuthenticated)
                return
            }
            self.dispatch(message)
        }
    }

    private func dispatch(_ message: ClientMessage) {
        switch message.action {
        case .authenticate:
            self.authenticate(message)
        case .subscribe:
            self.subscribe(message)
        case .unsubscribe:
            self.unsubscribe(message)
        case .subscribeOrders:
            self.receivesOrderUpdates = true
            self.send(ServerMessage.ordersAck(subscribed: true, requestID: message.requestID))
        case .unsubscribeOrders:
            self.receivesOrderUpdates = false
            self.send(ServerMessage.ordersAck(subscribed: false, requestID: message.requestID))
        case .getBrokerInfo:
            self.send(
                ServerMessage.brokerInfo(
                    broker: self.brokerName,
                    adapterStatus: self.hub.published.feedState.description,
                    userID: self.proxy.configuration.userID
                )
            )
        case .getSupportedBrokers:
            self.send(ServerMessage.supportedBrokers(self.proxy.configuration.supportedBrokers))
        case .ping:
            self.send(ServerMessage.pong(serverTimestamp: WallClock.epochMilliseconds(), request: PingRequest(message)))
        }
    }

    // MARK: Actions

    private func authenticate(_ message: ClientMessage) {
        switch AuthenticateRequest.apiKey(from: message) {
        case .failure(let error):
            self.sendError(error)
        case .success(let key) where self.proxy.verifier.verify(key):
            if self.phase == .awaitingAuthentication {
                self.phase = .authenticated
                self.authDeadline?.cancel()
                self.authDeadline = nil
                self.logger.debug("client authenticated")
            }
            self.send(ServerMessage.authSuccess(broker: self.brokerName, userID: self.proxy.configuration.userID))
        case .success:
            self.failedAuthentications += 1
            self.logger.notice("client sent an invalid API key", metadata: ["attempt": "\(self.failedAuthentications)"])
            self.sendError(.invalidAPIKey)
            self.imposeAuthenticationPenalty()
        }
    }

    /// After the first failure, each further one holds back this connection's next messages for
    /// a doubling delay (250 ms up to 8 s), so a key cannot be guessed at wire speed.
    private func imposeAuthenticationPenalty() {
        guard self.failedAuthentications >= 2, let context else { return }
        let exponent = min(self.failedAuthentications - 2, 5)
        let delay = TimeAmount.milliseconds(250 << Int64(exponent))
        self.penaltyUntil = .now() + delay
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: delay) { handler.value.penaltyEnded() }
    }

    private func penaltyEnded() {
        guard let context, self.phase != .closing else { return }
        self.penaltyUntil = nil
        context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        while !self.deferredMessages.isEmpty && self.penaltyUntil == nil && self.phase != .closing {
            self.handleMessage(self.deferredMessages.removeFirst())
        }
    }

    private func deferMessage(_ payload: ByteBuffer) {
        guard self.deferredMessages.count < Self.maximumDeferredMessages else {
            self.close(CloseReason(code: .policyViolation, text: "too many messages after failed authentication"), graceful: false)
            return
        }
        self.deferredMessages.append(payload)
    }

    private func subscribe(_ message: ClientMessage) {
        let request: SubscribeRequest
        do {
            request = try SubscribeRequest(message)
        } catch {
            self.sendError(error)
            return
        }
        self.hub.subscribe(self, to: request.instruments, mode: request.mode, depth: request.depthLevel) { outcomes in
            let results = zip(request.instruments, outcomes).map { instrument, outcome -> ServerMessage.SubscribeResult in
                switch outcome {
                case .subscribed(let actualDepth):
                    return .success(instrument, mode: request.mode, depth: actualDepth.map { .int($0) } ?? request.depthValue)
                case .refused(let text):
                    return .failure(instrument, message: text)
                }
            }
            self.send(ServerMessage.subscribeAck(results: results, broker: self.brokerName, requestID: request.requestID))
        }
    }

    private func unsubscribe(_ message: ClientMessage) {
        let request: UnsubscribeRequest
        do {
            request = try UnsubscribeRequest(message)
        } catch {
            self.sendError(error)
            return
        }
        let broker = self.brokerName
        let acknowledge: ([ServerMessage.UnsubscribeResult]) -> Void = { results in
            self.send(ServerMessage.unsubscribeAck(results: results, broker: broker, requestID: request.requestID))
        }
        switch request.target {
        case .all:
            self.hub.unsubscribeAll(self) { removed in acknowledge(removed.map { .success($0.instrument) }) }
        case .entries(let entries):
            var subscriptions: [(instrument: Instrument, mode: SubscriptionMode)] = []
            let results = entries.map { entry -> ServerMessage.UnsubscribeResult in
                switch entry {
                case .instrument(let instrument, let mode):
                    subscriptions.append((instrument, mode))
                    return .success(instrument)
                case .invalidMode(let symbol, let exchange, let text):
                    return .failure(symbol: symbol, exchange: exchange, message: text)
                }
            }
            self.hub.unsubscribe(self, from: subscriptions) { _ in acknowledge(results) }
        }
    }

    // MARK: Outbound

    private func send(_ value: JSONValue) {
        guard let context, self.phase != .closing else { return }
        var buffer = context.channel.allocator.buffer(capacity: 256)
        buffer.writeJSONValue(value)
        context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: buffer)), promise: nil)
    }

    private func sendError(_ error: WireError) {
        self.send(ServerMessage.error(error))
    }

    @discardableResult
    func enqueue(_ frame: ByteBuffer, instrument: Instrument, mode: SubscriptionMode) -> Bool {
        guard let context, self.phase == .authenticated else { return false }
        if self.outbox.isEmpty && self.isChannelWritable {
            self.writeMarketData(frame, context: context)
            defer { self.wroteMarketData = true }
            return !self.wroteMarketData
        }
        if self.unwritableSince == nil { self.unwritableSince = .now() }
        defer { self.gauge.update(from: self.outbox) }
        switch self.outbox.hold(frame, for: ConflatingOutbox.Key(instrument: instrument, mode: mode)) {
        case .held:
            break
        case .conflated:
            self.hub.recordConflated(1)
        case .overBudget:
            // The hub is in the middle of its fan-out; close on the next loop turn, not from inside it.
            self.phase = .closingSlowConsumer
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            let detail = "more than \(self.outbox.byteBudget) bytes of market data pending"
            context.eventLoop.execute { handler.value.closeSlowConsumer(detail) }
        }
        return false
    }

    /// Writes one market-data frame without flushing: the shared bytes as they are when they carry
    /// their header, otherwise through the frame encoder.
    private func writeMarketData(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        if let gatewayContext = self.gateway?.context, let framed = PreframedText.frame(of: frame) {
            gatewayContext.write(NIOAny(framed), promise: nil)
        } else {
            context.write(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: frame)), promise: nil)
        }
    }

    func describe() -> SubscriberDescription {
        let (queuedBytes, droppedFrames) = self.gauge.values
        return SubscriberDescription(
            kind: .webSocket,
            peer: self.peer,
            connectedAt: self.connectedAt,
            queuedBytes: queuedBytes,
            droppedFrames: droppedFrames
        )
    }

    /// Tells the client the feed changed state, in a frame of its own (`broker_status`).
    func sendBrokerStatus(_ frame: JSONValue) {
        guard self.phase == .authenticated else { return }
        self.send(frame)
    }

    /// Sends an `order_update` frame (the feed's bytes, unchanged) if the client asked for them.
    func sendOrderUpdate(_ message: ByteBuffer) {
        guard self.receivesOrderUpdates, self.phase == .authenticated, let context else { return }
        context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: message)), promise: nil)
    }

    func flushEnqueued() {
        guard self.wroteMarketData, let context else { return }
        self.wroteMarketData = false
        context.flush()
    }

    private func drainOutbox() {
        guard let context else { return }
        var wrote = false
        while context.channel.isWritable, let frame = self.outbox.popFirst() {
            self.writeMarketData(frame, context: context)
            wrote = true
        }
        if wrote { self.gauge.update(from: self.outbox) }
        if wrote { context.flush() }
        if self.outbox.isEmpty && context.channel.isWritable {
            self.unwritableSince = nil
        }
    }

    private func closeSlowConsumer(_ detail: String) {
        self.logger.warning("closing slow client", metadata: ["reason": "\(detail)"])
        self.hub.recordSlowConsumerClosed()
        self.close(.slowConsumer(detail), graceful: false)
    }

    /// Sends a close frame and closes the connection. `graceful` waits for the client's answering
    /// close (up to two seconds); otherwise the connection closes once the frame is written, or
    /// after 250 ms when a client that reads nothing keeps it from being written.
    func close(_ reason: CloseReason, graceful: Bool) {
        guard self.phase != .closing, let context else { return }
        self.phase = .closing
        self.hub.remove(self)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let written = context.writeAndFlush(self.wrapOutboundOut(reason.frame(allocator: context.channel.allocator)))
        if !graceful {
            written.whenComplete { _ in loopContext.value.close(promise: nil) }
        }
        self.closeDeadline = context.eventLoop.scheduleTask(in: graceful ? .seconds(2) : .milliseconds(250)) {
            loopContext.value.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension WebSocketConnectionHandler: Sendable {}

/// Sits at the front of a WebSocket connection's pipeline, before NIO's frame encoder, so that
/// market-data frames that already carry their header (``PreframedText``) go to the socket as
/// they are. Other writes pass through it unchanged.
final class PreframedWriteGateway: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer

    private(set) var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }
}

@available(*, unavailable)
extension PreframedWriteGateway: Sendable {}

/// A connection's held market data, as `clients` listings show it: written on the connection's
/// loop when its outbox changes (only while it is behind), read on the hub's.
private final class OutboxGauge: Sendable {
    private let state = NIOLockedValueBox((queuedBytes: 0, droppedFrames: 0))

    var values: (queuedBytes: Int, droppedFrames: Int) { self.state.withLockedValue { $0 } }

    func update(from outbox: ConflatingOutbox) {
        self.state.withLockedValue { $0 = (outbox.pendingBytes, outbox.conflatedCount) }
    }
}
