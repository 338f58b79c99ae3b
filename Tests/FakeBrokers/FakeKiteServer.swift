import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import WireJSON

/// One instrument's market as the fake Kite server streams it, in Kite's integer units (paise).
public struct KiteMarket: Sendable, Equatable {
    public struct Level: Sendable, Equatable {
        public var quantity: UInt32
        public var price: UInt32
        public var orders: UInt16

        public init(quantity: UInt32, price: UInt32, orders: UInt16) {
            self.quantity = quantity
            self.price = price
            self.orders = orders
        }
    }

    public var token: UInt32
    public var lastPrice: UInt32
    public var lastQuantity: UInt32 = 0
    public var averagePrice: UInt32 = 0
    public var volume: UInt32 = 0
    public var totalBuyQuantity: UInt32 = 0
    public var totalSellQuantity: UInt32 = 0
    public var open: UInt32 = 0
    public var high: UInt32 = 0
    public var low: UInt32 = 0
    public var close: UInt32 = 0
    /// Index packets: the change from `close`.
    public var change: Int32 = 0
    public var lastTradeTime: UInt32 = 0
    public var openInterest: UInt32 = 0
    public var openInterestDayHigh: UInt32 = 0
    public var openInterestDayLow: UInt32 = 0
    public var exchangeTimestamp: UInt32 = 0
    /// Five each, best first.
    public var bids: [Level] = []
    public var asks: [Level] = []

    public init(token: UInt32, lastPrice: UInt32) {
        self.token = token
        self.lastPrice = lastPrice
    }

    /// Kite's segment 9: indices, whose packets have no quantities or book.
    public var isIndex: Bool { self.token & 0xFF == 9 }

    /// The packet Kite sends for this instrument in `mode` (`ltp`, `quote` or `full`), built
    /// byte by byte from the documented layout (spec §1.3).
    public func packet(mode: String) -> [UInt8] {
        var packet = PacketBuilder(.big)
        packet.u32(self.token)
        packet.u32(self.lastPrice)
        guard mode != "ltp" else { return packet.bytes }
        if self.isIndex {
            packet.u32(self.high)
            packet.u32(self.low)
            packet.u32(self.open)
            packet.u32(self.close)
            packet.i32(self.change)
            if mode == "full" { packet.u32(self.exchangeTimestamp) }
            return packet.bytes
        }
        packet.u32(self.lastQuantity)
        packet.u32(self.averagePrice)
        packet.u32(self.volume)
        packet.u32(self.totalBuyQuantity)
        packet.u32(self.totalSellQuantity)
        packet.u32(self.open)
        packet.u32(self.high)
        packet.u32(self.low)
        packet.u32(self.close)
        guard mode == "full" else { return packet.bytes }
        packet.u32(self.lastTradeTime)
        packet.u32(self.openInterest)
        packet.u32(self.openInterestDayHigh)
        packet.u32(self.openInterestDayLow)
        packet.u32(self.exchangeTimestamp)
        for side in [self.bids, self.asks] {
            for index in 0..<5 {
                let level = index < side.count ? side[index] : Level(quantity: 0, price: 0, orders: 0)
                packet.u32(level.quantity)
                packet.u32(level.price)
                packet.u16(level.orders)
                packet.zeros(2)
            }
        }
        return packet.bytes
    }

    /// A Kite frame: `int16 N`, then N × (`int16 length`, packet).
    public static func frame(_ packets: [[UInt8]]) -> ByteBuffer {
        var frame = PacketBuilder(.big)
        frame.u16(UInt16(packets.count))
        for packet in packets {
            frame.u16(UInt16(packet.count))
            frame.bytes += packet
        }
        return frame.buffer
    }
}

/// A Kite Ticker stand-in on 127.0.0.1 speaking the real protocol:
/// - authentication by the `api_key` and `access_token` query parameters and the
///   `X-Kite-Version: 3` header; a bad pair is answered with HTTP 403 and Kite's JSON error
///   (`TokenException`), a missing version header with 400;
/// - `{"a": "subscribe" | "unsubscribe" | "mode", "v": …}` messages tracked per connection (a
///   new subscription streams `quote`, as Kite's default) and recorded in ``requests``;
/// - every ``tickInterval``, a 1-byte heartbeat and one frame with a packet per subscribed token
///   at its mode, built from its ``KiteMarket``;
/// - misbehaviour on demand: ``goSilent()`` (no heartbeats or ticks on the open connections),
///   ``dropConnections()``, ``refuseConnections(_:)``, ``sendTruncatedFrame()``, ``sendGarbageFrame()``.
public final class FakeKiteServer: Sendable {
    public static let forbiddenBody =
        #"{"status": "error", "message": "Incorrect `api_key` or `access_token`.", "data": null, "error_type": "TokenException"}"#

    /// One request a client sent.
    public struct Request: Sendable, Equatable {
        public var connection: Int
        /// `subscribe`, `unsubscribe` or `mode`.
        public var action: String
        /// `ltp`, `quote` or `full` for `mode`; `nil` otherwise.
        public var mode: String?
        public var tokens: [UInt32]
    }

    private struct State {
        var markets: [UInt32: KiteMarket] = [:]
        /// Token → Kite mode, per connection.
        var subscriptions: [Int: [UInt32: String]] = [:]
        var requests: [Request] = []
        var unparsedMessages: [String] = []
        var silentConnections: Set<Int> = []
        var ticksPaused = false
        var heartbeatsSent = 0
    }

    public let server: FakeBrokerServer
    public let apiKey: String
    public let tickInterval: TimeAmount
    private let acceptedToken: NIOLockedValueBox<String>
    private let state = NIOLockedValueBox(State())
    private let timer: NIOLockedValueBox<RepeatedTask?> = NIOLockedValueBox(nil)

    private init(server: FakeBrokerServer, apiKey: String, accessToken: String, tickInterval: TimeAmount) {
        self.server = server
        self.apiKey = apiKey
        self.acceptedToken = NIOLockedValueBox(accessToken)
        self.tickInterval = tickInterval
    }

    public static func start(
        apiKey: String = "kite-api-key",
        accessToken: String = "kite-access-token",
        markets: [KiteMarket],
        tickInterval: TimeAmount = .milliseconds(50)
    ) async throws -> FakeKiteServer {
        let kite = FakeKiteServer(server: try await FakeBrokerServer.start(), apiKey: apiKey, accessToken: accessToken, tickInterval: tickInterval)
        kite.state.withLockedValue { state in
            for market in markets { state.markets[market.token] = market }
        }
        kite.server.setUpgradePolicy { [apiKey, acceptedToken = kite.acceptedToken] handshake in
            guard handshake.headers["X-Kite-Version"] == ["3"] else {
                return .respond(
                    status: .badRequest,
                    contentType: "application/json",
                    body: #"{"status": "error", "message": "Missing or invalid X-Kite-Version header", "data": null, "error_type": "InputException"}"#
                )
            }
            let query = handshake.queryItems
            guard query["api_key"] == apiKey, query["access_token"] == acceptedToken.withLockedValue({ $0 }) else {
                return .respond(status: .forbidden, contentType: "application/json", body: Self.forbiddenBody)
            }
            return .accept
        }
        kite.server.setMessageObserver { [weak kite] received in kite?.handle(received) }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        kite.timer.withLockedValue {
            $0 = loop.scheduleRepeatedTask(initialDelay: tickInterval, delay: tickInterval) { [weak kite] _ in kite?.streamOnce() }
        }
        return kite
    }

    /// The access token Kite accepts now.
    public var accessToken: String { self.acceptedToken.withLockedValue { $0 } }

    /// Accepts only `token` from now on, as Kite does after the daily session rollover.
    public func setAccessToken(_ token: String) {
        self.acceptedToken.withLockedValue { $0 = token }
    }

    /// `ws://127.0.0.1:<port>`, the `ws_url` to configure.
    public var url: String { self.server.url("") }

    public var requests: [Request] { self.state.withLockedValue { $0.requests } }

    /// Text messages that were not Kite requests.
    public var unparsedMessages: [String] { self.state.withLockedValue { $0.unparsedMessages } }

    /// The tokens connection `index` streams, with their modes.
    public func subscriptions(onConnection index: Int) -> [UInt32: String] {
        self.state.withLockedValue { $0.subscriptions[index] ?? [:] }
    }

    /// Changes what an instrument's packets carry from the next tick on.
    public func setMarket(_ market: KiteMarket) {
        self.state.withLockedValue { $0.markets[market.token] = market }
    }

    /// Stops heartbeats and ticks on every connection open now, as a hung server would; new
    /// connections stream normally.
    public func goSilent() {
        let open = self.server.snapshot.connections.indices.filter { self.server.snapshot.connections[$0].isActive }
        self.state.withLockedValue { $0.silentConnections.formUnion(open) }
    }

    /// The 1-byte heartbeats sent so far, on every connection.
    public var heartbeatsSent: Int { self.state.withLockedValue { $0.heartbeatsSent } }

    /// Keeps sending heartbeats but no ticks (a closed market), or resumes ticks.
    public func pauseTicks(_ paused: Bool) {
        self.state.withLockedValue { $0.ticksPaused = paused }
    }

    public func dropConnections() {
        self.server.dropConnections()
    }

    /// Refuses new TCP connections (true) or accepts them again (false).
    public func refuseConnections(_ refuse: Bool) {
        self.server.setAdmission(refuse ? .refuse : .accept)
    }

    /// A frame whose header announces two packets but holds one and a half.
    public func sendTruncatedFrame() {
        var frame = PacketBuilder(.big)
        frame.u16(2)
        frame.u16(8)
        frame.u32(738_561)
        frame.u32(1)
        frame.u16(44)
        frame.u32(738_561)
        self.server.send(.binary(frame.buffer))
    }

    /// Bytes that are no Kite frame at all.
    public func sendGarbageFrame() {
        self.server.send(.binary(ByteBuffer(bytes: [0xFF, 0xFE, 0x00, 0x07, 0x42])))
    }

    public func shutdown() async {
        let task = self.timer.withLockedValue { timer in
            defer { timer = nil }
            return timer
        }
        task?.cancel()
        await self.server.shutdown()
    }

    private func handle(_ received: FakeBrokerServer.Received) {
        guard case .text(let text) = received.message else { return }
        guard let request = Self.parse(text, connection: received.connection) else {
            self.state.withLockedValue { $0.unparsedMessages.append(text) }
            return
        }
        self.state.withLockedValue { state in
            state.requests.append(request)
            var subscribed = state.subscriptions[received.connection] ?? [:]
            switch request.action {
            case "subscribe":
                for token in request.tokens where subscribed[token] == nil { subscribed[token] = "quote" }
            case "unsubscribe":
                for token in request.tokens { subscribed[token] = nil }
            default:
                for token in request.tokens where subscribed[token] != nil { subscribed[token] = request.mode }
            }
            state.subscriptions[received.connection] = subscribed
        }
    }

    private static func parse(_ text: String, connection: Int) -> Request? {
        guard let object = try? JSONParser.parse(text).objectValue, let action = object["a"]?.stringValue,
            let value = object["v"]?.arrayValue
        else { return nil }
        func tokens(_ values: [JSONValue]) -> [UInt32]? {
            let tokens = values.compactMap { $0.intValue.flatMap(UInt32.init(exactly:)) }
            return tokens.count == values.count ? tokens : nil
        }
        switch action {
        case "subscribe", "unsubscribe":
            return tokens(value).map { Request(connection: connection, action: action, mode: nil, tokens: $0) }
        case "mode":
            guard value.count == 2, let mode = value[0].stringValue, ["ltp", "quote", "full"].contains(mode),
                let list = value[1].arrayValue, let tokens = tokens(list)
            else { return nil }
            return Request(connection: connection, action: action, mode: mode, tokens: tokens)
        default:
            return nil
        }
    }

    private func streamOnce() {
        let connections = self.server.snapshot.connections
        let (frames, heartbeats) = self.state.withLockedValue { state -> ([(Int, ByteBuffer)], [Int]) in
            var frames: [(Int, ByteBuffer)] = []
            var heartbeats: [Int] = []
            for index in connections.indices where connections[index].isActive && !state.silentConnections.contains(index) {
                heartbeats.append(index)
                state.heartbeatsSent += 1
                guard !state.ticksPaused, let subscribed = state.subscriptions[index], !subscribed.isEmpty else { continue }
                let packets = subscribed.keys.sorted().compactMap { token in state.markets[token]?.packet(mode: subscribed[token] ?? "quote") }
                if !packets.isEmpty { frames.append((index, KiteMarket.frame(packets))) }
            }
            return (frames, heartbeats)
        }
        for index in heartbeats { self.server.send(.binary(ByteBuffer(bytes: [0])), toConnection: index) }
        for (index, frame) in frames { self.server.send(.binary(frame), toConnection: index) }
    }
}
