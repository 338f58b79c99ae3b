import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import WireJSON

/// One instrument's market as the fake SmartAPI server streams it, in SmartAPI's integer units
/// (paise).
public struct AngelMarket: Sendable, Equatable {
    public struct Level: Sendable, Equatable {
        public var quantity: Int64
        public var price: Int64
        public var orders: Int16

        public init(quantity: Int64, price: Int64, orders: Int16) {
            self.quantity = quantity
            self.price = price
            self.orders = orders
        }
    }

    public var exchangeType: UInt8
    public var token: String
    public var sequence: Int64 = 1
    /// Epoch milliseconds.
    public var exchangeTimestamp: Int64 = 0
    public var lastPrice: Int64
    public var lastQuantity: Int64 = 0
    public var averagePrice: Int64 = 0
    public var volume: Int64 = 0
    public var totalBuyQuantity: Double = 0
    public var totalSellQuantity: Double = 0
    public var open: Int64 = 0
    public var high: Int64 = 0
    public var low: Int64 = 0
    public var close: Int64 = 0
    public var lastTradeTime: Int64 = 0
    public var openInterest: Int64 = 0
    public var openInterestChangePercent: Double = 0
    /// Five each, best first.
    public var bids: [Level] = []
    public var asks: [Level] = []
    public var upperCircuit: Int64 = 0
    public var lowerCircuit: Int64 = 0
    public var high52Week: Int64 = 0
    public var low52Week: Int64 = 0
    /// Twenty each, for Depth-20 (mode 4); quantities and prices must fit in 32 bits.
    public var bids20: [Level] = []
    public var asks20: [Level] = []

    public init(exchangeType: UInt8, token: String, lastPrice: Int64) {
        self.exchangeType = exchangeType
        self.token = token
        self.lastPrice = lastPrice
    }

    /// The packet SmartAPI sends for this instrument in `mode` (1 LTP, 2 Quote, 3 SnapQuote,
    /// 4 Depth-20), built byte by byte from the documented layout (spec §2.3).
    public func packet(mode: UInt8) -> [UInt8] {
        var packet = PacketBuilder(.little)
        packet.u8(mode)
        packet.u8(self.exchangeType)
        packet.ascii(self.token, width: 25)
        packet.i64(self.sequence)
        packet.i64(self.exchangeTimestamp)
        if mode == 4 {
            for side in [self.bids20, self.asks20] {
                for index in 0..<20 {
                    let level = index < side.count ? side[index] : Level(quantity: 0, price: 0, orders: 0)
                    packet.i32(Int32(level.quantity))
                    packet.i32(Int32(level.price))
                    packet.i16(level.orders)
                }
            }
            return packet.bytes
        }
        packet.i64(self.lastPrice)
        guard mode >= 2 else { return packet.bytes }
        packet.i64(self.lastQuantity)
        packet.i64(self.averagePrice)
        packet.i64(self.volume)
        packet.f64(self.totalBuyQuantity)
        packet.f64(self.totalSellQuantity)
        packet.i64(self.open)
        packet.i64(self.high)
        packet.i64(self.low)
        packet.i64(self.close)
        guard mode >= 3 else { return packet.bytes }
        packet.i64(self.lastTradeTime)
        packet.i64(self.openInterest)
        packet.f64(self.openInterestChangePercent)
        // Best five: the bids (flag 1) then the asks (flag 0), 20 bytes a row.
        for (flag, side) in [(Int16(1), self.bids), (Int16(0), self.asks)] {
            for index in 0..<5 {
                let level = index < side.count ? side[index] : Level(quantity: 0, price: 0, orders: 0)
                packet.i16(flag)
                packet.i64(level.quantity)
                packet.i64(level.price)
                packet.i16(level.orders)
            }
        }
        packet.i64(self.upperCircuit)
        packet.i64(self.lowerCircuit)
        packet.i64(self.high52Week)
        packet.i64(self.low52Week)
        return packet.bytes
    }
}

/// A SmartAPI WebSocket 2.0 stand-in on 127.0.0.1 speaking the real protocol:
/// - authentication by upgrade headers: `Authorization` (the JWT, with or without `Bearer `),
///   `x-client-code` and `x-feed-token` must match; `x-api-key` must be present but is not
///   checked (the reference sends a placeholder). A mismatch is answered with HTTP 401 and
///   SmartAPI's `x-error-message`;
/// - `{"correlationID", "action": 1|0, "params": {"mode", "tokenList"}}` requests, recorded in
///   ``requests`` and tracked per connection as SmartAPI does: per token *and* mode; a request
///   it cannot read gets SmartAPI's E1001 error reply;
/// - the text `ping` answered with `pong`;
/// - every ``tickInterval``, one binary frame per subscribed (token, mode), built from its
///   ``AngelMarket``;
/// - misbehaviour on demand: ``goSilent()`` (no ticks and no pongs on the open connections),
///   ``pauseTicks(_:)`` (pongs only), ``dropConnections()``, ``refuseConnections(_:)``, ``sendTruncatedFrame()``, ``sendGarbageFrame()``.
public final class FakeAngelOneServer: Sendable {
    /// One request a client sent.
    public struct Request: Sendable, Equatable, CustomStringConvertible {
        public var connection: Int
        /// 1 subscribe, 0 unsubscribe.
        public var action: Int
        public var mode: Int
        public var correlationID: String
        /// `exchangeType:token`, in request order.
        public var tokens: [String]

        /// `subscribe 2 [1:2885]`, for comparisons in tests.
        public var description: String {
            "\(self.action == 1 ? "subscribe" : "unsubscribe") \(self.mode) [\(self.tokens.joined(separator: ","))]"
        }
    }

    private struct Subscription: Hashable, Comparable {
        var exchangeType: UInt8
        var token: String
        var mode: UInt8

        static func < (lhs: Subscription, rhs: Subscription) -> Bool {
            (lhs.token, lhs.mode) < (rhs.token, rhs.mode)
        }
    }

    private struct State {
        var markets: [String: AngelMarket] = [:]
        var subscriptions: [Int: Set<Subscription>] = [:]
        var requests: [Request] = []
        var unparsedMessages: [String] = []
        var pings = 0
        var silentConnections: Set<Int> = []
        var ticksPaused = false
    }

    public let server: FakeBrokerServer
    public let apiKey: String
    public let clientCode: String
    public let jwtToken: String
    public let feedToken: String
    public let tickInterval: TimeAmount
    private let state = NIOLockedValueBox(State())
    private let timer: NIOLockedValueBox<RepeatedTask?> = NIOLockedValueBox(nil)

    private init(server: FakeBrokerServer, apiKey: String, clientCode: String, jwtToken: String, feedToken: String, tickInterval: TimeAmount) {
        self.server = server
        self.apiKey = apiKey
        self.clientCode = clientCode
        self.jwtToken = jwtToken
        self.feedToken = feedToken
        self.tickInterval = tickInterval
    }

    public static func start(
        apiKey: String = "smartapi-key",
        clientCode: String = "A123456",
        jwtToken: String = "eyJhbGciOiJIUzUxMiJ9.session.signature",
        feedToken: String = "feed-token-0123",
        markets: [AngelMarket],
        tickInterval: TimeAmount = .milliseconds(50)
    ) async throws -> FakeAngelOneServer {
        let angel = FakeAngelOneServer(
            server: try await FakeBrokerServer.start(),
            apiKey: apiKey,
            clientCode: clientCode,
            jwtToken: jwtToken,
            feedToken: feedToken,
            tickInterval: tickInterval
        )
        angel.state.withLockedValue { state in
            for market in markets { state.markets["\(market.exchangeType):\(market.token)"] = market }
        }
        angel.server.setUpgradePolicy { [clientCode, jwtToken, feedToken] handshake in
            let authorization = handshake.headers.first(name: "Authorization") ?? ""
            guard authorization == jwtToken || authorization == "Bearer \(jwtToken)" else {
                return .reject(status: .unauthorized, message: "Invalid Header - Invalid JWT Token")
            }
            guard handshake.headers.first(name: "x-api-key") != nil else {
                return .reject(status: .unauthorized, message: "Invalid Header - Missing API Key")
            }
            guard handshake.headers.first(name: "x-client-code") == clientCode else {
                return .reject(status: .unauthorized, message: "Invalid Header - Invalid Client Code")
            }
            guard handshake.headers.first(name: "x-feed-token") == feedToken else {
                return .reject(status: .unauthorized, message: "Invalid Header - Invalid Feed Token")
            }
            return .accept
        }
        angel.server.setMessageObserver { [weak angel] received in angel?.handle(received) }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        angel.timer.withLockedValue {
            $0 = loop.scheduleRepeatedTask(initialDelay: tickInterval, delay: tickInterval) { [weak angel] _ in angel?.streamOnce() }
        }
        return angel
    }

    /// `ws://127.0.0.1:<port>/smart-stream`, the `ws_url` to configure.
    public var url: String { self.server.url("/smart-stream") }

    public var requests: [Request] { self.state.withLockedValue { $0.requests } }

    /// Text messages that were neither requests nor pings.
    public var unparsedMessages: [String] { self.state.withLockedValue { $0.unparsedMessages } }

    /// Text pings received.
    public var pings: Int { self.state.withLockedValue { $0.pings } }

    /// What connection `index` streams, as `exchangeType:token@mode`, sorted.
    public func subscriptions(onConnection index: Int) -> [String] {
        self.state.withLockedValue { ($0.subscriptions[index] ?? []).sorted().map { "\($0.exchangeType):\($0.token)@\($0.mode)" } }
    }

    /// Stops ticks and pongs on every connection open now, as a hung server would; new
    /// connections stream normally.
    public func goSilent() {
        let connections = self.server.snapshot.connections
        let open = connections.indices.filter { connections[$0].isActive }
        self.state.withLockedValue { $0.silentConnections.formUnion(open) }
    }

    /// Keeps answering pings but sends no ticks (a closed market), or resumes ticks.
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

    /// A Quote packet cut off after its LTP.
    public func sendTruncatedFrame() {
        guard let market = self.state.withLockedValue({ $0.markets.values.first }) else { return }
        self.server.send(.binary(ByteBuffer(bytes: market.packet(mode: 2).prefix(60))))
    }

    /// Bytes that are no SmartAPI packet at all (mode byte 9).
    public func sendGarbageFrame() {
        self.server.send(.binary(ByteBuffer(bytes: [0x09, 0x01, 0xFF, 0x00, 0x42])))
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
        if text == "ping" {
            let silent = self.state.withLockedValue { state in
                state.pings += 1
                return state.silentConnections.contains(received.connection)
            }
            if !silent { self.server.send(.text("pong"), toConnection: received.connection) }
            return
        }
        guard let request = Self.parse(text, connection: received.connection) else {
            self.state.withLockedValue { $0.unparsedMessages.append(text) }
            let id = (try? JSONParser.parse(text).objectValue?["correlationID"]?.stringValue) ?? ""
            self.server.send(
                .text(#"{"correlationID":"\#(id)","errorCode":"E1001","errorMessage":"Invalid Request Payload."}"#),
                toConnection: received.connection
            )
            return
        }
        self.state.withLockedValue { state in
            state.requests.append(request)
            var subscribed = state.subscriptions[received.connection] ?? []
            for token in request.tokens {
                let parts = token.split(separator: ":", maxSplits: 1)
                let subscription = Subscription(exchangeType: UInt8(parts[0]) ?? 0, token: String(parts[1]), mode: UInt8(request.mode))
                if request.action == 1 { subscribed.insert(subscription) } else { subscribed.remove(subscription) }
            }
            state.subscriptions[received.connection] = subscribed
        }
    }

    private static func parse(_ text: String, connection: Int) -> Request? {
        guard let object = try? JSONParser.parse(text).objectValue, let action = object["action"]?.intValue, action == 0 || action == 1,
            let params = object["params"]?.objectValue, let mode = params["mode"]?.intValue, (1...4).contains(mode),
            let list = params["tokenList"]?.arrayValue
        else { return nil }
        var tokens: [String] = []
        for group in list {
            guard let group = group.objectValue, let exchangeType = group["exchangeType"]?.intValue,
                let values = group["tokens"]?.arrayValue
            else { return nil }
            for value in values {
                guard let token = value.stringValue else { return nil }
                tokens.append("\(exchangeType):\(token)")
            }
        }
        return Request(connection: connection, action: action, mode: mode, correlationID: object["correlationID"]?.stringValue ?? "", tokens: tokens)
    }

    private func streamOnce() {
        let connections = self.server.snapshot.connections
        let frames = self.state.withLockedValue { state -> [(Int, [UInt8])] in
            var frames: [(Int, [UInt8])] = []
            guard !state.ticksPaused else { return frames }
            for index in connections.indices where connections[index].isActive && !state.silentConnections.contains(index) {
                for subscription in (state.subscriptions[index] ?? []).sorted() {
                    guard let market = state.markets["\(subscription.exchangeType):\(subscription.token)"] else { continue }
                    frames.append((index, market.packet(mode: subscription.mode)))
                }
            }
            return frames
        }
        for (index, packet) in frames { self.server.send(.binary(ByteBuffer(bytes: packet)), toConnection: index) }
    }
}
