import DequeModule
import LocalIPC
import Logging
import MarketData
import NIOCore
import StreamingHub
import WireJSON

/// One local client: JSON-RPC requests in, replies in request order, events in between, and the
/// client's side of the fan-out (conflating while its socket is not writable).
///
/// Lives on the hub's event loop; the hub calls ``enqueue(_:instrument:mode:)`` directly.
final class IPCConnectionHandler: ChannelInboundHandler, MarketDataSubscriber, HubObserver {
    typealias InboundIn = JSONLineFrame
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case open
        /// Over its budget; closed on the next loop turn, market data no longer taken.
        case closingSlowConsumer
        case closing
    }

    /// A reply position: replies leave in request order even when a later request finishes first.
    private struct ReplySlot {
        let ticket: UInt64
        var lines: [ByteBuffer]?
        /// Work that must follow the reply on the wire (a subscribe's updates and snapshot).
        var followUps: [() -> Void] = []
    }

    let subscriberID: SubscriberID
    private let server: IPCServerContext
    private let peerProcess: Int32
    private var logger: Logger
    private var context: ChannelHandlerContext?
    private var phase = Phase.open
    private var outbox: ConflatingOutbox
    private var wroteMarketData = false
    private var unwritableSince: NIODeadline?
    private var controlBytesWhileUnwritable = 0
    private var droppedSinceLagged = 0
    private var droppedTotal = 0
    private var replySlots = Deque<ReplySlot>()
    private var nextTicket: UInt64 = 0
    private var inputClosed = false
    private var closeDeadline: Scheduled<Void>?
    private var clientName: String?
    /// Recordings this connection started without `keep`: they stop when it closes.
    private var ownedRecordings: [String] = []
    /// Set once the connection has gone: a recording whose start completes later is stopped at once.
    private var released = false
    /// Status events are on by default; agent-wide subscription updates only on request.
    private var enabledEvents: Set<IPCEvent> = [.connectionStatus]
    private let connectedAt = WallClock.epochMilliseconds()
    private let allocator = ByteBufferAllocator()

    init(server: IPCServerContext, peerProcess: Int32) {
        self.server = server
        self.peerProcess = peerProcess
        self.subscriberID = server.hub.makeSubscriberID()
        self.outbox = ConflatingOutbox(byteBudget: server.configuration.outboxBudgetBytes)
        self.logger = server.logger
        self.logger[metadataKey: "client"] = "\(self.subscriberID)"
    }

    private var hub: StreamingHub { self.server.hub }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.server.connectionOpened(self)
        self.hub.register(self)
        self.hub.addObserver(self)
        self.logger.debug("local client connected", metadata: ["pid": "\(self.peerProcess)"])
        self.writeControl(RPCReply.notification(.hello, .object(self.server.helloPayload)))
        context.flush()
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
        self.released = true
        self.stopOwnedRecordings()
        self.closeDeadline?.cancel()
        self.hub.removeObserver(self)
        self.hub.remove(self)
        self.server.connectionClosed(self)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            // `echo '{...}' | socat - UNIX-CONNECT:...`: answer what was asked, then close, unless
            // the client subscribed, in which case it streams until it goes away.
            self.inputClosed = true
            self.closeIfDone()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.logger.debug("local connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    /// Called about once a second: the unwritable deadline.
    func housekeeping(now: NIODeadline) {
        guard self.phase == .open, let since = self.unwritableSince else { return }
        let deadline = self.server.configuration.unwritableDeadline
        if now - since >= deadline {
            self.closeSlowConsumer("socket not writable for \(deadline.nanoseconds / 1_000_000_000) s")
        }
    }

    // MARK: Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard self.phase == .open else { return }
        switch self.unwrapInboundIn(data) {
        case .tooLong:
            let limit = self.server.configuration.maximumLineBytes
            let ticket = self.takeTicket()
            self.complete(
                ticket,
                [RPCReply.error(id: nil, .invalidRequest("The line is longer than \(limit) bytes; the connection will be closed."))]
            )
            self.phase = .closing
            self.closeAfterWrites()
        case .line(let line):
            self.handleLine(line)
        }
    }

    private func handleLine(_ line: ByteBuffer) {
        guard line.readableBytesView.contains(where: { !Self.isJSONWhitespace($0) }) else { return }
        let value: JSONValue
        do {
            value = try JSONParser.parse(line)
        } catch {
            self.complete(self.takeTicket(), [RPCReply.error(id: nil, .parseError(error.description))])
            return
        }
        let ticket = self.takeTicket()
        guard case .array(let elements) = value else {
            self.execute(value, ticket: ticket) { reply in self.complete(ticket, reply.map { [$0] } ?? []) }
            return
        }
        guard !elements.isEmpty else {
            self.complete(ticket, [RPCReply.error(id: nil, .invalidRequest("An empty batch is not a request."))])
            return
        }
        var replies = [JSONValue??](repeating: nil, count: elements.count)
        var remaining = elements.count
        for (position, element) in elements.enumerated() {
            self.execute(element, ticket: ticket) { reply in
                replies[position] = .some(reply)
                remaining -= 1
                guard remaining == 0 else { return }
                let answered = replies.compactMap { $0 ?? nil }
                self.complete(ticket, answered.isEmpty ? [] : [.array(answered)])
            }
        }
    }

    private static func isJSONWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")
    }

    /// Runs one request; `reply` gets the reply line's value, or `nil` for a notification.
    private func execute(_ value: JSONValue, ticket: UInt64, reply: @escaping (JSONValue?) -> Void) {
        let request: RPCRequest
        switch RPCRequest.decode(value) {
        case .failure(let failure):
            reply(RPCReply.error(id: failure.id, failure.error))
            return
        case .success(let decoded):
            request = decoded
        }
        let id = request.id
        self.perform(request, ticket: ticket) { result in
            guard id != nil else {
                reply(nil)
                return
            }
            switch result {
            case .success(let value): reply(RPCReply.result(id: id, value))
            case .failure(let error): reply(RPCReply.error(id: id, error))
            }
        }
    }

    private func perform(_ request: RPCRequest, ticket: UInt64, completion: @escaping (Result<JSONValue, RPCError>) -> Void) {
        guard let method = IPCMethod(rawValue: request.method) else {
            completion(.failure(.methodNotFound(request.method)))
            return
        }
        do throws(RPCError) {
            switch method {
            case .hello:
                completion(.success(try self.hello(request.params)))
            case .status:
                completion(.success(self.statusJSON()))
            case .wsConnect:
                let broker = try IPCParams.optionalString(request.params, "broker")
                let credentials = try IPCParams.credentials(request.params)
                let control = self.server.control
                self.runAsync(completion) {
                    await control.connectFeed(broker: broker, credentials: credentials)
                } then: { handler, result in
                    result.map { handler.statusJSON() }
                }
            case .wsDisconnect:
                let control = self.server.control
                self.runAsync(completion) {
                    await control.disconnectFeed()
                    return .success(())
                } then: { handler, result in
                    result.map { handler.statusJSON() }
                }
            case .wsSubscribe:
                try self.subscribe(request.params, ticket: ticket, completion: completion)
            case .wsUnsubscribe:
                completion(.success(try self.unsubscribe(request.params)))
            case .subscriptions:
                completion(.success(self.subscriptionsJSON()))
            case .clients:
                completion(.success(self.clientsJSON()))
            case .metrics:
                completion(.success(self.metricsJSON()))
            case .eventsSubscribe:
                self.enabledEvents.formUnion(try IPCParams.events(request.params))
                completion(.success(self.eventsJSON()))
            case .eventsUnsubscribe:
                self.enabledEvents.subtract(try IPCParams.events(request.params))
                completion(.success(self.eventsJSON()))
            case .apiKey:
                let rotate = try IPCParams.bool(request.params, "rotate")
                let control = self.server.control
                self.runAsync(completion) {
                    await control.apiKey(rotate: rotate)
                } then: { _, result in
                    result.map { .object(["api_key": .string($0)]) }
                }
            case .reload:
                let control = self.server.control
                self.runAsync(completion) {
                    await control.reload()
                } then: { _, result in
                    result
                }
            case .recordStart:
                try self.startRecording(request.params, completion: completion)
            case .recordStop:
                guard let id = try IPCParams.optionalString(request.params, "id") else {
                    throw .invalidParams(field: "id", "\"id\" is required: the recording to stop, as record_start returned it.")
                }
                let control = self.server.control
                self.runAsync(completion) {
                    await control.stopRecording(id: id)
                } then: { handler, result in
                    handler.ownedRecordings.removeAll { $0 == id }
                    return result
                }
            }
        } catch {
            completion(.failure(error))
        }
    }

    /// Runs `work` off the loop and hands its result back on the loop.
    private func runAsync<Value: Sendable>(
        _ completion: @escaping (Result<JSONValue, RPCError>) -> Void,
        _ work: @escaping @Sendable () async -> Result<Value, RPCError>,
        then finish: @escaping (IPCConnectionHandler, Result<Value, RPCError>) -> Result<JSONValue, RPCError>
    ) {
        let loop = self.hub.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        let completion = NIOLoopBound(completion, eventLoop: loop)
        let finish = NIOLoopBound(finish, eventLoop: loop)
        Task {
            let result = await work()
            loop.execute { completion.value(finish.value(handler.value, result)) }
        }
    }

    private func hello(_ params: JSONObject) throws(RPCError) -> JSONValue {
        if let asked = params["protocol"], asked != .null {
            guard let version = asked.intValue else {
                throw .invalidParams(field: "protocol", "\"protocol\" must be an integer.")
            }
            guard version == IPCProtocol.version else { throw .unsupportedVersion(version) }
        }
        self.clientName = try IPCParams.optionalString(params, "client")
        var payload = self.server.helloPayload
        if let clientName { payload["client"] = .string(clientName) }
        return .object(payload)
    }

    private func statusJSON() -> JSONValue {
        guard case .object(var object) = connectionStatusJSON(self.hub.status()) else { return .null }
        object["agent"] = self.server.helloPayload["agent"]
        object["pid"] = self.server.helloPayload["pid"]
        for entry in self.server.control.statusDetails().entries { object[entry.key] = entry.value }
        return .object(object)
    }

    /// `record_start`: the recording belongs to this connection (it stops when the connection
    /// closes, so an `oactl record` killed outright leaves nothing running) unless `keep` is true.
    private func startRecording(_ params: JSONObject, completion: @escaping (Result<JSONValue, RPCError>) -> Void) throws(RPCError) {
        guard let output = try IPCParams.optionalString(params, "output"), output.hasPrefix("/") else {
            throw .invalidParams(field: "output", "\"output\" is required: an absolute path such as /data/ticks.jsonl.")
        }
        let request = RecordingRequest(
            instruments: try IPCParams.instruments(params),
            mode: try IPCParams.mode(params) ?? .quote,
            depth: try IPCParams.depth(params),
            output: output
        )
        let keep = try IPCParams.bool(params, "keep")
        let control = self.server.control
        self.runAsync(completion) {
            await control.startRecording(request)
        } then: { handler, result in
            if !keep, case .success(let value) = result, let id = value.objectValue?["id"]?.stringValue {
                if handler.released {
                    Task { _ = await control.stopRecording(id: id) }
                } else {
                    handler.ownedRecordings.append(id)
                }
            }
            return result
        }
    }

    private func stopOwnedRecordings() {
        let owned = self.ownedRecordings
        self.ownedRecordings = []
        guard !owned.isEmpty else { return }
        let control = self.server.control
        Task {
            for id in owned { _ = await control.stopRecording(id: id) }
        }
    }

    private func subscribe(
        _ params: JSONObject,
        ticket: UInt64,
        completion: @escaping (Result<JSONValue, RPCError>) -> Void
    ) throws(RPCError) {
        let instruments = try IPCParams.instruments(params)
        let mode = try IPCParams.mode(params) ?? .quote
        let depth = try IPCParams.depth(params)
        if case .disconnected = self.hub.feedState {
            throw .notConnected("The broker feed is not connected; connect it with `oactl connect` (method ws_connect) first.")
        }
        self.hub.subscribe(self, to: instruments, mode: mode, depth: depth) { outcomes in
            var entries: [JSONValue] = []
            var subscribed: [Instrument] = []
            for (instrument, outcome) in zip(instruments, outcomes) {
                switch outcome {
                case .subscribed:
                    subscribed.append(instrument)
                    entries.append(instrument.json(["mode": .string(mode.label), "status": "success"]))
                case .refused(let message):
                    entries.append(instrument.json(["mode": .string(mode.label), "status": "error", "message": .string(message)]))
                }
            }
            self.followReply(ticket) {
                for instrument in subscribed {
                    self.sendSubscriptionUpdate(.subscribed, instrument, mode)
                }
                for instrument in subscribed {
                    if let frame = self.hub.latestFrame(for: instrument, mode: mode) {
                        _ = self.enqueue(frame, instrument: instrument, mode: mode)
                    }
                }
                self.flushEnqueued()
            }
            completion(.success(.object(["subscriptions": .array(entries)])))
        }
    }

    private func unsubscribe(_ params: JSONObject) throws(RPCError) -> JSONValue {
        let all = try IPCParams.bool(params, "all")
        let instruments = all ? [] : try IPCParams.instruments(params)
        let mode = try IPCParams.mode(params)
        let targets = try self.unsubscribeTargets(try IPCParams.optionalString(params, "client"))
        var successful: [JSONValue] = []
        var failed: [JSONValue] = []
        var matched = Set<Instrument>()
        for target in targets {
            let held = self.hub.requestedSubscriptions(of: target)
            let chosen = held.filter { entry in
                (all || instruments.contains(entry.instrument)) && (mode == nil || entry.mode == mode)
            }
            for (instrument, heldMode) in chosen {
                self.hub.unsubscribe(target, from: instrument, mode: heldMode)
                matched.insert(instrument)
                (target as? IPCConnectionHandler)?.sendSubscriptionUpdate(.unsubscribed, instrument, heldMode)
                var extra: JSONObject = ["mode": .string(heldMode.label)]
                if target !== self { extra["client"] = .string(target.subscriberID.description) }
                successful.append(instrument.json(extra))
            }
        }
        for instrument in instruments where !matched.contains(instrument) {
            let what = mode.map { "\(instrument) in \($0.label) mode" } ?? "\(instrument)"
            failed.append(instrument.json(["message": .string("Not subscribed to \(what).")]))
        }
        return .object(["successful": .array(successful), "failed": .array(failed)])
    }

    /// Whose subscriptions `ws_unsubscribe` changes: this connection's; with `client`, another
    /// client's (`client-7`) or every local client's (`ipc`), for `oactl unsubscribe`.
    private func unsubscribeTargets(_ client: String?) throws(RPCError) -> [any MarketDataSubscriber] {
        guard let client else { return [self] }
        if client == "ipc" {
            return self.server.connections.values.sorted { $0.subscriberID.rawValue < $1.subscriberID.rawValue }
        }
        guard client.hasPrefix("client-"), let number = UInt64(client.dropFirst("client-".count)),
            let target = self.hub.subscriber(withID: SubscriberID(rawValue: number))
        else {
            throw .invalidParams(
                field: "client",
                "No client '\(client)'; `oactl clients` lists them (e.g. client-7), or use \"ipc\" for every local client."
            )
        }
        return [target]
    }

    private func subscriptionsJSON() -> JSONValue {
        let mine = self.hub.subscriptions(of: self).map { $0.instrument.json(["mode": .string($0.mode.label)]) }
        let agent = self.hub.indexSummary().map { entry in
            entry.instrument.json([
                "mode": .string(entry.brokerMode.label),
                "subscribers": .object(["LTP": .int(entry.ltp), "Quote": .int(entry.quote), "Depth": .int(entry.depth)]),
            ])
        }
        return .object(["connection": .array(mine), "agent": .array(agent)])
    }

    private func clientsJSON() -> JSONValue {
        let clients = self.hub.clientList().map { entry -> JSONValue in
            var object: JSONObject = [
                "id": .string(entry.id.description),
                "kind": .string(entry.client.kind.rawValue),
                "peer": .string(entry.client.peer),
            ]
            if let name = entry.client.name { object["name"] = .string(name) }
            object["connected_at"] = .int(entry.client.connectedAt)
            object["subscriptions"] = .array(entry.subscriptions.map { $0.instrument.json(["mode": .string($0.mode.label)]) })
            object["queued_bytes"] = .int(entry.client.queuedBytes)
            object["dropped"] = .int(entry.client.droppedFrames)
            return .object(object)
        }
        return .object(["clients": .array(clients)])
    }

    private func metricsJSON() -> JSONValue {
        let metrics = self.hub.metrics
        let status = self.hub.status()
        let latency = metrics.feedLatency
        return .object([
            "ticks_in": .int(metrics.ticksReceived),
            "frames_out": .int(metrics.framesDelivered),
            "ltp_frames_coalesced": .int(metrics.ltpFramesCoalesced),
            "frames_conflated": .int(metrics.framesConflated),
            "slow_consumers_closed": .int(metrics.slowConsumersClosed),
            "feed_reconnects": .int(metrics.feedReconnects),
            "instruments": .int(metrics.instruments),
            "clients": .object(["websocket": .int(status.webSocketClients), "ipc": .int(status.ipcClients)]),
            "ipc_peers_refused": .int(self.server.refusedPeers),
            "feed_latency_ms": .object([
                "count": .int(latency.count),
                "p50": latency.upperBound(quantile: 0.5).map { .int($0) } ?? .null,
                "p99": latency.upperBound(quantile: 0.99).map { .int($0) } ?? .null,
                "max": .int(latency.maximumMilliseconds),
            ]),
        ])
    }

    private func eventsJSON() -> JSONValue {
        .object(["events": .array(IPCEvent.optional.filter { self.enabledEvents.contains($0) }.map { .string($0.rawValue) })])
    }

    // MARK: Events from the hub

    func feedStateChanged(_ status: HubStatus) {
        guard self.enabledEvents.contains(.connectionStatus), self.phase == .open else { return }
        self.writeControl(RPCReply.notification(.connectionStatus, connectionStatusJSON(status)))
        self.context?.flush()
    }

    func brokerSubscriptionChanged(_ update: BrokerSubscriptionUpdate) {
        guard self.enabledEvents.contains(.subscriptionUpdate), self.phase == .open else { return }
        self.writeControl(RPCReply.notification(.subscriptionUpdate, Self.subscriptionUpdateJSON(update, scope: "agent")))
        self.context?.flush()
    }

    /// Passes an order update on as an `order_update` event, to connections that asked for it.
    func orderUpdateReceived(_ message: ByteBuffer) {
        guard self.enabledEvents.contains(.orderUpdate), self.phase == .open, let update = try? JSONParser.parse(message) else { return }
        self.writeControl(RPCReply.notification(.orderUpdate, update))
        self.context?.flush()
    }

    func sendSubscriptionUpdate(_ action: BrokerSubscriptionUpdate.Action, _ instrument: Instrument, _ mode: SubscriptionMode) {
        let update = BrokerSubscriptionUpdate(action: action, instrument: instrument, mode: mode)
        self.writeControl(RPCReply.notification(.subscriptionUpdate, Self.subscriptionUpdateJSON(update, scope: "connection")))
        self.context?.flush()
    }

    private static func subscriptionUpdateJSON(_ update: BrokerSubscriptionUpdate, scope: String) -> JSONValue {
        update.instrument.json(["action": .string(update.action.rawValue), "mode": .string(update.mode.label), "scope": .string(scope)])
    }

    // MARK: Replies in order

    private func takeTicket() -> UInt64 {
        self.nextTicket += 1
        self.replySlots.append(ReplySlot(ticket: self.nextTicket, lines: nil))
        return self.nextTicket
    }

    private func complete(_ ticket: UInt64, _ values: [JSONValue]) {
        guard let position = self.replySlots.firstIndex(where: { $0.ticket == ticket }) else { return }
        self.replySlots[position].lines = values.map { self.line($0) }
        var wrote = false
        while let first = self.replySlots.first, let lines = first.lines {
            self.replySlots.removeFirst()
            for line in lines { self.writeControlLine(line) }
            wrote = true
            for followUp in first.followUps { followUp() }
        }
        if wrote { self.context?.flush() }
        self.closeIfDone()
    }

    /// Runs `action` right after the reply of `ticket` is written.
    private func followReply(_ ticket: UInt64, _ action: @escaping () -> Void) {
        guard let position = self.replySlots.firstIndex(where: { $0.ticket == ticket }) else {
            action()
            return
        }
        self.replySlots[position].followUps.append(action)
    }

    // MARK: Outbound

    private func line(_ value: JSONValue) -> ByteBuffer {
        var buffer = self.allocator.buffer(capacity: 256)
        buffer.writeJSONValue(value, compact: true)
        buffer.writeInteger(UInt8(ascii: "\n"))
        return buffer
    }

    private func writeControl(_ value: JSONValue) {
        self.writeControlLine(self.line(value))
    }

    /// Replies and status events are never dropped; if they alone pile up past the budget on a
    /// socket that does not drain, the reader is beyond help.
    private func writeControlLine(_ line: ByteBuffer) {
        guard let context, self.phase != .closing else { return }
        if !context.channel.isWritable || self.unwritableSince != nil {
            self.controlBytesWhileUnwritable += line.readableBytes
            if self.controlBytesWhileUnwritable + self.outbox.pendingBytes > self.server.configuration.outboxBudgetBytes {
                self.scheduleSlowConsumerClose("more than \(self.outbox.byteBudget) bytes of replies and events pending")
            }
        }
        context.write(self.wrapOutboundOut(line), promise: nil)
    }

    private func marketDataLine(_ frame: ByteBuffer) -> ByteBuffer {
        self.server.marketDataLines.line(for: frame, allocator: self.allocator)
    }

    @discardableResult
    func enqueue(_ frame: ByteBuffer, instrument: Instrument, mode: SubscriptionMode) -> Bool {
        guard let context, self.phase == .open else { return false }
        if self.outbox.isEmpty && self.droppedSinceLagged == 0 && context.channel.isWritable {
            context.write(self.wrapOutboundOut(self.marketDataLine(frame)), promise: nil)
            defer { self.wroteMarketData = true }
            return !self.wroteMarketData
        }
        if self.unwritableSince == nil { self.unwritableSince = .now() }
        switch self.outbox.hold(frame, for: ConflatingOutbox.Key(instrument: instrument, mode: mode)) {
        case .held:
            break
        case .conflated:
            self.droppedSinceLagged += 1
            self.droppedTotal += 1
            self.hub.recordConflated(1)
        case .overBudget:
            self.scheduleSlowConsumerClose("more than \(self.outbox.byteBudget) bytes of market data pending")
        }
        return false
    }

    func flushEnqueued() {
        guard self.wroteMarketData, let context else { return }
        self.wroteMarketData = false
        context.flush()
    }

    func describe() -> SubscriberDescription {
        SubscriberDescription(
            kind: .ipc,
            peer: "pid \(self.peerProcess)",
            connectedAt: self.connectedAt,
            name: self.clientName,
            queuedBytes: self.outbox.pendingBytes,
            droppedFrames: self.droppedTotal
        )
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.drainOutbox()
        } else if self.unwritableSince == nil {
            self.unwritableSince = .now()
        }
        context.fireChannelWritabilityChanged()
    }

    private func drainOutbox() {
        guard let context, self.phase == .open else { return }
        if self.droppedSinceLagged > 0 {
            context.write(
                self.wrapOutboundOut(self.line(RPCReply.notification(.lagged, .object(["dropped": .int(self.droppedSinceLagged)])))),
                promise: nil
            )
            self.droppedSinceLagged = 0
        }
        while context.channel.isWritable, let frame = self.outbox.popFirst() {
            context.write(self.wrapOutboundOut(self.marketDataLine(frame)), promise: nil)
        }
        context.flush()
        if self.outbox.isEmpty && context.channel.isWritable {
            self.unwritableSince = nil
            self.controlBytesWhileUnwritable = 0
        }
    }

    // MARK: Closing

    /// Closes once every reply is out, when the client has finished sending and holds no subscriptions.
    private func closeIfDone() {
        guard self.inputClosed, self.replySlots.isEmpty, self.phase == .open else { return }
        guard self.hub.subscriptions(of: self).isEmpty else { return }
        self.phase = .closing
        self.closeAfterWrites()
    }

    /// The hub may be in the middle of its fan-out; close on the next loop turn, not from inside it.
    private func scheduleSlowConsumerClose(_ detail: String) {
        guard self.phase == .open, let context else { return }
        self.phase = .closingSlowConsumer
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute { handler.value.closeSlowConsumer(detail) }
    }

    private func closeSlowConsumer(_ detail: String) {
        guard self.phase != .closing else { return }
        self.logger.warning("closing slow local client", metadata: ["reason": "\(detail)", "pid": "\(self.peerProcess)"])
        self.hub.recordSlowConsumerClosed()
        self.writeClosing([
            "code": .int(RPCErrorCode.slowConsumer), "reason": "oa.ipc.SlowConsumer",
            "message": .string("This reader fell too far behind (\(detail)); the agent closes the connection."),
        ])
    }

    /// Tells the client the agent is stopping, then closes.
    func closeForShutdown() {
        self.writeClosing(["reason": "oa.agent.ShuttingDown", "message": "The agent is shutting down."])
    }

    private func writeClosing(_ params: JSONObject) {
        guard let context, self.phase != .closing else { return }
        self.phase = .closing
        self.hub.removeObserver(self)
        self.hub.remove(self)
        context.writeAndFlush(self.wrapOutboundOut(self.line(RPCReply.notification(.closing, .object(params)))), promise: nil)
        // A reader that resumes within the grace period still learns why it is being dropped; no
        // market data is taken meanwhile, so the wait costs no memory.
        self.closeAfterWrites(grace: .seconds(5))
    }

    /// Closes once what is written has left, or after `grace` when a reader that takes nothing
    /// keeps it from leaving.
    private func closeAfterWrites(grace: TimeAmount = .milliseconds(250)) {
        guard let context else { return }
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(self.wrapOutboundOut(self.allocator.buffer(capacity: 0))).whenComplete { _ in
            loopContext.value.close(promise: nil)
        }
        self.closeDeadline = context.eventLoop.scheduleTask(in: grace) {
            loopContext.value.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension IPCConnectionHandler: Sendable {}
