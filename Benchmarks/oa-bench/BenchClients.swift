import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// Why a client did not get ready.
struct ClientFailure: Error, CustomStringConvertible {
    let description: String
}

/// Where a set of clients connects and how it identifies itself.
struct ServerEndpoint: Sendable {
    enum Transport: Sendable {
        case webSocket(host: String, port: Int, apiKey: String)
        /// The agent's local JSON-RPC socket: no authentication (the socket's permissions are).
        case localSocket(path: String)
    }

    /// `primary`, `compare`, or the label given on the command line.
    let label: String
    let transport: Transport
    /// The server's process, for its CPU time and RSS.
    let pid: Int32?
}

/// Opens benchmark clients and waits until each is authenticated and, if asked, subscribed.
struct ClientConnector: Sendable {
    let endpoint: ServerEndpoint
    /// How long one client may take to get ready before the run fails.
    var readyTimeout = TimeAmount.seconds(30)

    /// Opens client `index` on `loop`, records it in `recorder`, and returns once it is ready.
    /// - Parameter subscribe: the request to send after authenticating; `nil` leaves the client idle.
    func open(
        index: Int,
        stalled: Bool,
        subscribe: String?,
        loop: any EventLoop,
        recorder: NIOLoopBound<LoopRecorder>
    ) async throws -> any Channel {
        let ready = loop.makePromise(of: Void.self)
        let timeout = loop.scheduleTask(in: self.readyTimeout) {
            ready.fail(ClientFailure(description: "client \(index) not ready after \(self.readyTimeout.nanoseconds / 1_000_000_000) s"))
        }
        defer { timeout.cancel() }
        let channel: any Channel
        do {
            channel = try await self.connect(index: index, stalled: stalled, subscribe: subscribe, loop: loop, recorder: recorder, ready: ready)
        } catch {
            ready.fail(error)
            throw error
        }
        channel.closeFuture.whenComplete { _ in
            ready.fail(ClientFailure(description: "client \(index): the server closed the connection before it was ready"))
        }
        do {
            try await ready.futureResult.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
        return channel
    }

    /// Connects client `index` and sets up its pipeline; `ready` is completed by its handler.
    private func connect(
        index: Int,
        stalled: Bool,
        subscribe: String?,
        loop: any EventLoop,
        recorder: NIOLoopBound<LoopRecorder>,
        ready: EventLoopPromise<Void>
    ) async throws -> any Channel {
        switch self.endpoint.transport {
        case .webSocket(let host, let port, let apiKey):
            let bootstrap = ClientBootstrap(group: loop)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let record = ClientRecord(index: index, stalled: stalled)
                        recorder.value.add(record)
                        let request = UpgradeRequestHandler(host: host, port: port)
                        let boundRequest = NIOLoopBound(request, eventLoop: channel.eventLoop)
                        let boundRecord = NIOLoopBound(record, eventLoop: channel.eventLoop)
                        let upgrader = NIOWebSocketClientUpgrader(
                            maxFrameSize: 1 << 24,
                            upgradePipelineHandler: { channel, _ in
                                channel.eventLoop.makeCompletedFuture {
                                    try channel.pipeline.syncOperations.addHandler(
                                        WebSocketBenchClient(
                                            apiKey: apiKey,
                                            subscribe: subscribe,
                                            record: boundRecord.value,
                                            recorder: recorder.value,
                                            ready: ready
                                        )
                                    )
                                }
                            }
                        )
                        try channel.pipeline.syncOperations.addHTTPClientHandlers(
                            withClientUpgrade: (
                                upgraders: [upgrader],
                                completionHandler: { context in context.pipeline.syncOperations.removeHandler(boundRequest.value, promise: nil) }
                            )
                        )
                        try channel.pipeline.syncOperations.addHandler(request)
                    }
                }
            return try await bootstrap.connect(host: host, port: port).get()
        case .localSocket(let path):
            let bootstrap = ClientBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let record = ClientRecord(index: index, stalled: stalled)
                        recorder.value.add(record)
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineSplitter()))
                        try channel.pipeline.syncOperations.addHandler(
                            LocalBenchClient(subscribe: subscribe, record: record, recorder: recorder.value, ready: ready)
                        )
                    }
                }
            return try await bootstrap.connect(unixDomainSocketPath: path).get()
        }
    }
}

/// Sends the HTTP upgrade request once connected.
final class UpgradeRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let host: String
    let port: Int

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        // No Content-Length: a GET upgrade has no body, and some servers (Python websockets
        // before 16, which OpenAlgo pins) refuse an upgrade request that carries the header.
        headers.add(name: "Host", value: "\(self.host):\(self.port)")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: headers)
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Finds the `data.timestamp` of a `market_data` frame without parsing the JSON: the integer after
/// the first `"timestamp": ` (the envelope's `data` has one; depth levels have none, and keys such
/// as `"exchange_timestamp"` do not match because of the leading quote).
enum MarketDataFrame {
    private static let timestampKey = Array(#""timestamp": "#.utf8)

    static func timestamp(in bytes: UnsafeRawBufferPointer) -> Int64? {
        let key = self.timestampKey
        var index = 0
        while index + key.count < bytes.count {
            if bytes[index] == key[0] && bytes[index + 1] == key[1] && (2..<key.count).allSatisfy({ bytes[index + $0] == key[$0] }) {
                var value: Int64 = 0
                var position = index + key.count
                while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
                    value = value &* 10 &+ Int64(bytes[position] - UInt8(ascii: "0"))
                    position += 1
                }
                return position > index + key.count ? value : nil
            }
            index += 1
        }
        return nil
    }

    /// Whether a reply to `authenticate` or `subscribe` reports success (OpenAlgo writes
    /// `"status": "success"`, or `"partial"`/`"error"` when something was refused).
    static func isSuccess(_ bytes: ByteBuffer) -> Bool {
        bytes.readableBytesView.firstRange(of: Array(#""status": "success""#.utf8)) != nil
    }
}

/// One WebSocket client: authenticates, optionally subscribes, answers pings, and counts market
/// data. A stalled client stops reading once subscribed, like a program that hangs; it then sends
/// an unsolicited pong (RFC 6455 §5.5.3: allowed, and ignored by servers) every half second so
/// that it notices when the server closes the connection: the server's kernel answers data for a
/// closed socket with a reset, and the next probe's write fails. Without the probes it would never
/// know, since the close frame and FIN wait behind the data it does not read.
final class WebSocketBenchClient: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private enum Phase {
        case authenticating
        case subscribing
        case ready
    }

    private static let marketDataPrefix = Array(#"{"type": "market_data""#.utf8)

    let apiKey: String
    let subscribe: String?
    let record: ClientRecord
    let recorder: LoopRecorder
    let ready: EventLoopPromise<Void>
    private var phase = Phase.authenticating
    private var probe: RepeatedTask?

    init(apiKey: String, subscribe: String?, record: ClientRecord, recorder: LoopRecorder, ready: EventLoopPromise<Void>) {
        self.apiKey = apiKey
        self.subscribe = subscribe
        self.record = record
        self.recorder = recorder
        self.ready = ready
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.send(#"{"action": "authenticate", "api_key": "\#(self.apiKey)"}"#, context: context)
    }

    private func send(_ text: String, context: ChannelHandlerContext) {
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: context.channel.allocator.buffer(string: text))
        context.writeAndFlush(self.wrapOutboundOut(frame), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            let payload = frame.unmaskedData
            let timestamp: Int64? = payload.withUnsafeReadableBytes { bytes in
                guard bytes.starts(with: Self.marketDataPrefix) else { return nil }
                return MarketDataFrame.timestamp(in: bytes)
            }
            if let timestamp {
                if !self.record.stalled { self.recorder.record(timestamp: timestamp, bytes: payload.readableBytes, client: self.record) }
                return
            }
            self.reply(payload, context: context)
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(self.wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            var data = frame.unmaskedData
            self.record.closeCode = data.readInteger(as: UInt16.self).map(Int.init)
            context.close(promise: nil)
        default:
            break
        }
    }

    /// A message other than market data: the answer to `authenticate` or `subscribe`, or something to ignore.
    private func reply(_ payload: ByteBuffer, context: ChannelHandlerContext) {
        switch self.phase {
        case .authenticating:
            guard MarketDataFrame.isSuccess(payload) else {
                self.refuse("authentication refused: \(String(buffer: payload))", context: context)
                return
            }
            if let subscribe = self.subscribe {
                self.phase = .subscribing
                self.send(subscribe, context: context)
            } else {
                self.phase = .ready
                self.ready.succeed()
            }
        case .subscribing:
            guard MarketDataFrame.isSuccess(payload) else {
                self.refuse("subscription refused: \(String(buffer: payload))", context: context)
                return
            }
            self.phase = .ready
            if self.record.stalled { self.stopReading(context: context) }
            self.ready.succeed()
        case .ready:
            break
        }
    }

    private func refuse(_ reason: String, context: ChannelHandlerContext) {
        self.ready.fail(ClientFailure(description: "client \(self.record.index): \(reason)"))
        context.close(promise: nil)
    }

    private func stopReading(context: ChannelHandlerContext) {
        self.record.stalledAt = MonotonicClock.nanoseconds()
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.probe = context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(500), delay: .milliseconds(500)) { _ in
            let context = bound.value
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: context.channel.allocator.buffer(capacity: 0))
            context.writeAndFlush(NIOAny(pong), promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.probe?.cancel()
        self.record.closedAt = MonotonicClock.nanoseconds()
        let code = self.record.closeCode.map { " (close code \($0))" } ?? ""
        self.ready.fail(ClientFailure(description: "client \(self.record.index): the server closed the connection\(code)"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Splits the local socket's stream into lines.
struct LineSplitter: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else { return .needMoreData }
        let line = buffer.readSlice(length: newline - buffer.readerIndex)!
        buffer.moveReaderIndex(forwardBy: 1)
        context.fireChannelRead(Self.wrapInboundOut(line))
        return .continue
    }
}

/// A client of the agent's local JSON-RPC socket: subscribes after the greeting, then times every
/// `market_data` event. A stalled one stops reading once subscribed.
final class LocalBenchClient: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let marketDataPrefix = Array(#"{"jsonrpc":"2.0","method":"market_data""#.utf8)
    private static let replyPrefix = Array(#"{"jsonrpc":"2.0","id":1,"#.utf8)

    let subscribe: String?
    let record: ClientRecord
    let recorder: LoopRecorder
    let ready: EventLoopPromise<Void>
    private var greeted = false

    init(subscribe: String?, record: ClientRecord, recorder: LoopRecorder, ready: EventLoopPromise<Void>) {
        self.subscribe = subscribe
        self.record = record
        self.recorder = recorder
        self.ready = ready
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = self.unwrapInboundIn(data)
        let timestamp: Int64? = line.withUnsafeReadableBytes { bytes in
            guard bytes.starts(with: Self.marketDataPrefix) else { return nil }
            return MarketDataFrame.timestamp(in: bytes)
        }
        if let timestamp {
            if !self.record.stalled { self.recorder.record(timestamp: timestamp, bytes: line.readableBytes + 1, client: self.record) }
        } else if !self.greeted {
            self.greeted = true
            guard let subscribe = self.subscribe else {
                self.ready.succeed()
                return
            }
            context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(string: subscribe + "\n")), promise: nil)
        } else if line.readableBytesView.starts(with: Self.replyPrefix) {
            if self.record.stalled {
                self.record.stalledAt = MonotonicClock.nanoseconds()
                context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
            }
            self.ready.succeed()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.record.closedAt = MonotonicClock.nanoseconds()
        self.ready.fail(ClientFailure(description: "client \(self.record.index): the local socket closed"))
        context.fireChannelInactive()
    }
}
