import DhanFeed
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import WireJSON

/// One instrument's market as the fake Dhan server streams it. Prices are float32 rupees, as
/// Dhan sends them: use values a float32 holds exactly (multiples of 1/4) or tests see
/// `2500.300048828125`.
public struct DhanMarket: Sendable, Equatable {
    /// One row of the Full packet's five-level book.
    public struct Row: Sendable, Equatable {
        public var bidQuantity: UInt32
        public var askQuantity: UInt32
        public var bidOrders: UInt16
        public var askOrders: UInt16
        public var bidPrice: Float
        public var askPrice: Float

        public init(bidQuantity: UInt32, askQuantity: UInt32, bidOrders: UInt16, askOrders: UInt16, bidPrice: Float, askPrice: Float) {
            self.bidQuantity = bidQuantity
            self.askQuantity = askQuantity
            self.bidOrders = bidOrders
            self.askOrders = askOrders
            self.bidPrice = bidPrice
            self.askPrice = askPrice
        }
    }

    /// One level of the 20-level socket's book.
    public struct Level: Sendable, Equatable {
        public var price: Double
        public var quantity: UInt32
        public var orders: UInt32

        public init(price: Double, quantity: UInt32, orders: UInt32) {
            self.price = price
            self.quantity = quantity
            self.orders = orders
        }
    }

    /// The header's segment byte (0 IDX_I, 1 NSE_EQ, 2 NSE_FNO, 4 BSE_EQ, …).
    public var segment: UInt8
    public var securityID: UInt32
    public var lastPrice: Float
    public var lastQuantity: UInt16 = 0
    /// Epoch seconds.
    public var lastTradeTime: UInt32 = 0
    public var averagePrice: Float = 0
    public var volume: UInt32 = 0
    public var totalSellQuantity: UInt32 = 0
    public var totalBuyQuantity: UInt32 = 0
    public var open: Float = 0
    public var close: Float = 0
    public var high: Float = 0
    public var low: Float = 0
    public var openInterest: UInt32 = 0
    public var openInterestHigh: UInt32 = 0
    public var openInterestLow: UInt32 = 0
    public var previousClose: Float = 0
    public var rows: [Row] = []
    public var bids20: [Level] = []
    public var asks20: [Level] = []

    public init(segment: UInt8, securityID: UInt32, lastPrice: Float) {
        self.segment = segment
        self.securityID = securityID
        self.lastPrice = lastPrice
    }

    /// The 5-level feed's packet with response `code` (2 Ticker, 4 Quote, 5 OI, 6 previous
    /// close, 8 Full), built byte by byte from the documented layout (spec §3.3).
    public func packet(code: UInt8) -> [UInt8] {
        var packet = PacketBuilder(.little)
        packet.u8(code)
        packet.u16(0)
        packet.u8(self.segment)
        packet.u32(self.securityID)
        switch code {
        case 2:
            packet.f32(self.lastPrice)
            packet.u32(self.lastTradeTime)
        case 5:
            packet.u32(self.openInterest)
        case 6:
            packet.f32(self.previousClose)
            packet.u32(self.openInterest)
        default:
            packet.f32(self.lastPrice)
            packet.u16(self.lastQuantity)
            packet.u32(self.lastTradeTime)
            packet.f32(self.averagePrice)
            packet.u32(self.volume)
            packet.u32(self.totalSellQuantity)
            packet.u32(self.totalBuyQuantity)
            if code == 8 {
                packet.u32(self.openInterest)
                packet.u32(self.openInterestHigh)
                packet.u32(self.openInterestLow)
            }
            packet.f32(self.open)
            packet.f32(self.close)
            packet.f32(self.high)
            packet.f32(self.low)
            if code == 8 {
                for index in 0..<5 {
                    let row =
                        index < self.rows.count
                        ? self.rows[index] : Row(bidQuantity: 0, askQuantity: 0, bidOrders: 0, askOrders: 0, bidPrice: 0, askPrice: 0)
                    packet.u32(row.bidQuantity)
                    packet.u32(row.askQuantity)
                    packet.u16(row.bidOrders)
                    packet.u16(row.askOrders)
                    packet.f32(row.bidPrice)
                    packet.f32(row.askPrice)
                }
            }
        }
        packet.patchU16(UInt16(packet.count), at: 1)
        return packet.bytes
    }

    /// One side of the 20-level socket's book: code 41 bids, 51 asks (spec §3.3).
    public func depthPacket(code: UInt8, sequence: UInt32 = 1) -> [UInt8] {
        var packet = PacketBuilder(.little)
        packet.u16(0)
        packet.u8(code)
        packet.u8(self.segment)
        packet.u32(self.securityID)
        packet.u32(sequence)
        let side = code == 41 ? self.bids20 : self.asks20
        for index in 0..<20 {
            let level = index < side.count ? side[index] : Level(price: 0, quantity: 0, orders: 0)
            packet.f64(level.price)
            packet.u32(level.quantity)
            packet.u32(level.orders)
        }
        packet.patchU16(UInt16(packet.count), at: 0)
        return packet.bytes
    }

    /// The 5-level feed's disconnect packet (code 50) with `reason` (805–809).
    public static func disconnectPacket(reason: UInt16) -> [UInt8] {
        var packet = PacketBuilder(.little)
        packet.u8(50)
        packet.u16(10)
        packet.u8(0)
        packet.u32(0)
        packet.u16(reason)
        return packet.bytes
    }
}

/// Dhan's Live Market Feed v2 stand-in on 127.0.0.1 speaking the real protocol, on two sockets
/// as Dhan has them: the 5-level feed (``url``) and the 20-level depth socket (``depthURL``).
/// - authentication in the query (`token`, `clientId`, `authType=2`, and `version=2` on the
///   5-level feed); a mismatch is answered with HTTP 401 and Dhan's JSON error (`DH-901`);
/// - `{"RequestCode", "InstrumentCount", "InstrumentList"}` requests (15/17/21 subscribe,
///   16/18/22 unsubscribe, 12 disconnect; 23/25 on the depth socket), recorded in ``requests``
///   and tracked per connection; a count that does not match the list, or over 100 instruments
///   (50 on the depth socket), is recorded in ``invalidMessages`` instead;
/// - every ``tickInterval``: on the 5-level feed one frame per connection with a packet per
///   subscribed instrument at its code (Quote and Full followed by a previous-close packet, as
///   Dhan sends extra packets the reference does not publish); on the depth socket a bid frame
///   and an ask frame per instrument;
/// - misbehaviour on demand: ``goSilent()``, ``dropConnections()``, ``refuseConnections(_:)``,
///   ``sendDisconnect(reason:)``, ``sendTruncatedFrame()``, ``sendGarbageFrame()``.
public final class FakeDhanServer: Sendable {
    /// Which of Dhan's two sockets.
    public enum Socket: String, Sendable {
        case feed
        case depth
    }

    /// One request a client sent.
    public struct Request: Sendable, Equatable, CustomStringConvertible {
        public var socket: Socket
        public var connection: Int
        public var code: Int
        /// `SEGMENT:securityId`, in request order.
        public var instruments: [String]

        /// `17 [NSE_EQ:2885]`, for comparisons in tests.
        public var description: String { "\(self.code) [\(self.instruments.joined(separator: ","))]" }
    }

    private struct Key: Hashable {
        var socket: Socket
        var connection: Int
    }

    private struct State {
        var markets: [String: DhanMarket] = [:]
        /// `SEGMENT:securityId` → subscribe code, per socket and connection.
        var subscriptions: [Key: [String: Int]] = [:]
        var requests: [Request] = []
        var invalidMessages: [String] = []
        var silent: Set<Key> = []
        var sequence: UInt32 = 0
    }

    public let feed: FakeBrokerServer
    public let depth: FakeBrokerServer
    public let clientID: String
    public let accessToken: String
    public let tickInterval: TimeAmount
    private let state = NIOLockedValueBox(State())
    private let timer: NIOLockedValueBox<RepeatedTask?> = NIOLockedValueBox(nil)

    public static let unauthorizedBody =
        #"{"errorType":"Invalid_Authentication","errorCode":"DH-901","errorMessage":"Client ID or user generated access token is invalid or expired."}"#

    private init(feed: FakeBrokerServer, depth: FakeBrokerServer, clientID: String, accessToken: String, tickInterval: TimeAmount) {
        self.feed = feed
        self.depth = depth
        self.clientID = clientID
        self.accessToken = accessToken
        self.tickInterval = tickInterval
    }

    public static func start(
        clientID: String = "1100012345",
        accessToken: String = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.dhan.token",
        markets: [DhanMarket],
        tickInterval: TimeAmount = .milliseconds(50)
    ) async throws -> FakeDhanServer {
        let dhan = FakeDhanServer(
            feed: try await FakeBrokerServer.start(),
            depth: try await FakeBrokerServer.start(),
            clientID: clientID,
            accessToken: accessToken,
            tickInterval: tickInterval
        )
        dhan.state.withLockedValue { state in
            for market in markets { state.markets[Self.name(market.segment, market.securityID)] = market }
        }
        for socket in [Socket.feed, .depth] {
            let server = dhan.server(socket)
            server.setUpgradePolicy { [clientID, accessToken] handshake in
                let query = handshake.queryItems
                guard query["token"] == accessToken, query["clientId"] == clientID, query["authType"] == "2",
                    socket == .depth || query["version"] == "2"
                else {
                    return .respond(status: .unauthorized, contentType: "application/json", body: Self.unauthorizedBody)
                }
                return .accept
            }
            server.setMessageObserver { [weak dhan] received in dhan?.handle(received, on: socket) }
        }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        dhan.timer.withLockedValue {
            $0 = loop.scheduleRepeatedTask(initialDelay: tickInterval, delay: tickInterval) { [weak dhan] _ in dhan?.streamOnce() }
        }
        return dhan
    }

    /// The 5-level feed's `ws_url` (`ws://127.0.0.1:<port>`).
    public var url: String { self.feed.url("") }

    /// The 20-level socket's `depth_ws_url` (`ws://127.0.0.1:<port>/twentydepth`).
    public var depthURL: String { self.depth.url("/twentydepth") }

    public func server(_ socket: Socket) -> FakeBrokerServer {
        socket == .feed ? self.feed : self.depth
    }

    public var requests: [Request] { self.state.withLockedValue { $0.requests } }

    public var invalidMessages: [String] { self.state.withLockedValue { $0.invalidMessages } }

    /// What connection `index` of `socket` streams, as `SEGMENT:securityId@code`, sorted.
    public func subscriptions(_ socket: Socket, onConnection index: Int) -> [String] {
        self.state.withLockedValue { state in
            (state.subscriptions[Key(socket: socket, connection: index)] ?? [:]).map { "\($0.key)@\($0.value)" }.sorted()
        }
    }

    /// Stops ticks on every connection of `socket` open now; new connections stream normally.
    public func goSilent(_ socket: Socket = .feed) {
        let connections = self.server(socket).snapshot.connections
        let open = connections.indices.filter { connections[$0].isActive }.map { Key(socket: socket, connection: $0) }
        self.state.withLockedValue { $0.silent.formUnion(open) }
    }

    public func dropConnections(_ socket: Socket = .feed) {
        self.server(socket).dropConnections()
    }

    /// Refuses new TCP connections on `socket` (true) or accepts them again (false).
    public func refuseConnections(_ refuse: Bool, _ socket: Socket = .feed) {
        self.server(socket).setAdmission(refuse ? .refuse : .accept)
    }

    /// Sends the disconnect packet with `reason` on the latest connection of `socket`; the
    /// client is expected to close.
    public func sendDisconnect(reason: UInt16, _ socket: Socket = .feed) {
        let server = self.server(socket)
        var packet = DhanMarket.disconnectPacket(reason: reason)
        if socket == .depth {
            // The depth socket's header: u16 length, u8 code, u8 segment, u32 id, u32 sequence.
            var depthPacket = PacketBuilder(.little)
            depthPacket.u16(14)
            depthPacket.u8(50)
            depthPacket.u8(0)
            depthPacket.u32(0)
            depthPacket.u32(0)
            depthPacket.u16(reason)
            packet = depthPacket.bytes
        }
        server.send(.binary(ByteBuffer(bytes: packet)))
    }

    /// A frame whose second packet's length runs past the frame's end.
    public func sendTruncatedFrame() {
        guard let market = self.state.withLockedValue({ $0.markets.values.first }) else { return }
        let bytes = market.packet(code: 2) + market.packet(code: 4).prefix(20)
        self.feed.send(.binary(ByteBuffer(bytes: bytes)))
    }

    /// Bytes whose length field is below the 8-byte header.
    public func sendGarbageFrame() {
        self.feed.send(.binary(ByteBuffer(bytes: [0x04, 0x03, 0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x42])))
    }

    public func shutdown() async {
        let task = self.timer.withLockedValue { timer in
            defer { timer = nil }
            return timer
        }
        task?.cancel()
        await self.feed.shutdown()
        await self.depth.shutdown()
    }

    private static func name(_ segment: UInt8, _ securityID: UInt32) -> String {
        "\(DhanExchangeSegment(rawValue: segment)?.name ?? "\(segment)"):\(securityID)"
    }

    private func handle(_ received: FakeBrokerServer.Received, on socket: Socket) {
        guard case .text(let text) = received.message else { return }
        guard let request = Self.parse(text, socket: socket, connection: received.connection) else {
            self.state.withLockedValue { $0.invalidMessages.append(text) }
            return
        }
        if request.code == 12 {
            self.state.withLockedValue { $0.requests.append(request) }
            self.server(socket).snapshot.connections[received.connection].close(promise: nil)
            return
        }
        self.state.withLockedValue { state in
            state.requests.append(request)
            let key = Key(socket: socket, connection: received.connection)
            var subscribed = state.subscriptions[key] ?? [:]
            let subscribeCodes = socket == .feed ? [15, 17, 21] : [23]
            for instrument in request.instruments {
                if subscribeCodes.contains(request.code) {
                    subscribed[instrument] = request.code
                } else if subscribed[instrument] == request.code - (socket == .feed ? 1 : 2) {
                    subscribed[instrument] = nil
                }
            }
            state.subscriptions[key] = subscribed
        }
    }

    private static func parse(_ text: String, socket: Socket, connection: Int) -> Request? {
        guard let object = try? JSONParser.parse(text).objectValue, let code = object["RequestCode"]?.intValue else { return nil }
        let valid = socket == .feed ? [12, 15, 16, 17, 18, 21, 22] : [12, 23, 25]
        guard valid.contains(code) else { return nil }
        guard code != 12 else { return Request(socket: socket, connection: connection, code: code, instruments: []) }
        guard let count = object["InstrumentCount"]?.intValue, let list = object["InstrumentList"]?.arrayValue, list.count == count,
            count <= (socket == .feed ? 100 : 50)
        else { return nil }
        var instruments: [String] = []
        for item in list {
            guard let item = item.objectValue, let segment = item["ExchangeSegment"]?.stringValue, DhanExchangeSegment(name: segment) != nil,
                let id = item["SecurityId"]?.stringValue
            else { return nil }
            instruments.append("\(segment):\(id)")
        }
        return Request(socket: socket, connection: connection, code: code, instruments: instruments)
    }

    private func streamOnce() {
        let feedConnections = self.feed.snapshot.connections
        let depthConnections = self.depth.snapshot.connections
        let (frames, depthFrames) = self.state.withLockedValue { state -> ([(Int, [UInt8])], [(Int, [UInt8])]) in
            var frames: [(Int, [UInt8])] = []
            for index in feedConnections.indices where feedConnections[index].isActive {
                let key = Key(socket: .feed, connection: index)
                guard !state.silent.contains(key), let subscribed = state.subscriptions[key] else { continue }
                var frame: [UInt8] = []
                for (name, code) in subscribed.sorted(by: { $0.key < $1.key }) {
                    guard let market = state.markets[name] else { continue }
                    switch code {
                    case 15: frame += market.packet(code: 2)
                    case 17: frame += market.packet(code: 4) + market.packet(code: 6)
                    default: frame += market.packet(code: 8) + market.packet(code: 6)
                    }
                }
                if !frame.isEmpty { frames.append((index, frame)) }
            }
            var depthFrames: [(Int, [UInt8])] = []
            state.sequence &+= 1
            for index in depthConnections.indices where depthConnections[index].isActive {
                let key = Key(socket: .depth, connection: index)
                guard !state.silent.contains(key), let subscribed = state.subscriptions[key] else { continue }
                for name in subscribed.keys.sorted() {
                    guard let market = state.markets[name] else { continue }
                    depthFrames.append((index, market.depthPacket(code: 41, sequence: state.sequence)))
                    depthFrames.append((index, market.depthPacket(code: 51, sequence: state.sequence)))
                }
            }
            return (frames, depthFrames)
        }
        for (index, frame) in frames { self.feed.send(.binary(ByteBuffer(bytes: frame)), toConnection: index) }
        for (index, frame) in depthFrames { self.depth.send(.binary(ByteBuffer(bytes: frame)), toConnection: index) }
    }
}
