import AngelOneFeed
import BrokerKit
import DhanFeed
import FakeBrokers
import Logging
import MarketData
import NIOCore
import Testing

/// The Angel One and Dhan feed codecs on their own: the requests a subscription change becomes,
/// and what inbound messages do to the session.
@Suite("Angel One and Dhan feed codecs")
struct AngelOneDhanFeedCodecTests {
    static let reliance = Instrument(exchange: "NSE", symbol: "RELIANCE")
    static let logger = Logger(label: "codec-test")

    static let angelMaster = SymbolMaster([
        BrokerInstrument(
            instrument: reliance,
            token: "2885",
            brokerExchange: "NSE",
            feedSegment: 1,
            brokerSymbol: "RELIANCE-EQ",
            instrumentType: "EQ",
            lotSize: 1
        )
    ])

    static let dhanMaster = SymbolMaster([
        BrokerInstrument(
            instrument: reliance,
            token: "2885",
            brokerExchange: "NSE_EQ",
            feedSegment: 1,
            brokerSymbol: "RELIANCE",
            instrumentType: "EQ",
            lotSize: 1
        )
    ])

    static func texts(_ messages: [WebSocketMessage]) -> [String] {
        messages.map { message in
            guard case .text(let text) = message else { return "binary" }
            return text
        }
    }

    static func subscribe(_ mode: SubscriptionMode, depth: Int = 5) -> SubscriptionBatch {
        SubscriptionBatch(change: .subscribe(mode: mode, depth: depth), instruments: [reliance])
    }

    @Test("SmartAPI: a mode change leaves the old mode first; repeats send nothing; a new connection starts afresh")
    func angelRequests() {
        var codec = AngelOneFeedCodec(master: Self.angelMaster, logger: Self.logger)
        let token = #""tokenList":[{"exchangeType":1,"tokens":["2885"]}]"#
        #expect(
            Self.texts(codec.messages(for: Self.subscribe(.ltp))) == [#"{"correlationID":"s000000001","action":1,"params":{"mode":1,\#(token)}}"#]
        )
        #expect(
            Self.texts(codec.messages(for: Self.subscribe(.quote))) == [
                #"{"correlationID":"u000000002","action":0,"params":{"mode":1,\#(token)}}"#,
                #"{"correlationID":"s000000003","action":1,"params":{"mode":2,\#(token)}}"#,
            ]
        )
        #expect(codec.messages(for: Self.subscribe(.quote)).isEmpty, "SmartAPI already streams it at that mode")
        #expect(
            Self.texts(codec.messages(for: Self.subscribe(.depth, depth: 20))) == [
                #"{"correlationID":"u000000004","action":0,"params":{"mode":2,\#(token)}}"#,
                #"{"correlationID":"s000000005","action":1,"params":{"mode":4,\#(token)}}"#,
            ]
        )
        #expect(codec.openingMessages().isEmpty)
        #expect(
            Self.texts(codec.messages(for: Self.subscribe(.depth, depth: 20))) == [
                #"{"correlationID":"s000000006","action":1,"params":{"mode":4,\#(token)}}"#
            ]
        )
        #expect(
            Self.texts(codec.messages(for: SubscriptionBatch(change: .unsubscribe, instruments: [Self.reliance]))) == [
                #"{"correlationID":"u000000007","action":0,"params":{"mode":4,\#(token)}}"#
            ]
        )
        #expect(codec.messages(for: SubscriptionBatch(change: .unsubscribe, instruments: [Self.reliance])).isEmpty)
    }

    @Test("SmartAPI: packets become ticks only for streamed tokens; pongs, error replies and bad frames are accepted quietly")
    func angelDecoding() {
        var codec = AngelOneFeedCodec(master: Self.angelMaster, logger: Self.logger)
        let sink = RecordingSink()
        var market = AngelMarket(exchangeType: 1, token: "2885", lastPrice: 250_050)
        market.exchangeTimestamp = 1_700_000_000_000
        let packet = WebSocketMessage.binary(ByteBuffer(bytes: market.packet(mode: 1)))
        #expect(codec.decode(packet, into: sink) == .accepted)
        #expect(sink.receivedTicks.isEmpty, "not subscribed")
        _ = codec.messages(for: Self.subscribe(.ltp))
        #expect(codec.decode(packet, into: sink) == .accepted)
        #expect(sink.receivedTicks.map(\.ltp) == [2500.5])
        #expect(codec.decode(.text("pong"), into: sink) == .accepted)
        #expect(codec.decode(.text(#"{"correlationID":"s000000001","errorCode":"E1002","errorMessage":"Limit"}"#), into: sink) == .accepted)
        #expect(codec.decode(.binary(ByteBuffer(bytes: market.packet(mode: 1).dropLast())), into: sink) == .accepted)
        #expect(sink.receivedTicks.count == 1)
    }

    @Test("Dhan: a mode change unsubscribes the old request code first; unsubscribe is the code plus one")
    func dhanRequests() {
        var codec = DhanFeedCodec(master: Self.dhanMaster, logger: Self.logger)
        let list = #""InstrumentCount":1,"InstrumentList":[{"ExchangeSegment":"NSE_EQ","SecurityId":"2885"}]"#
        #expect(Self.texts(codec.messages(for: Self.subscribe(.ltp))) == [#"{"RequestCode":15,\#(list)}"#])
        #expect(Self.texts(codec.messages(for: Self.subscribe(.depth))) == [#"{"RequestCode":16,\#(list)}"#, #"{"RequestCode":21,\#(list)}"#])
        #expect(codec.messages(for: Self.subscribe(.depth)).isEmpty)
        #expect(
            Self.texts(codec.messages(for: SubscriptionBatch(change: .unsubscribe, instruments: [Self.reliance]))) == [
                #"{"RequestCode":22,\#(list)}"#
            ]
        )

        var depthCodec = DhanDepthFeedCodec(master: Self.dhanMaster, logger: Self.logger)
        #expect(Self.texts(depthCodec.messages(for: Self.subscribe(.depth, depth: 20))) == [#"{"RequestCode":23,\#(list)}"#])
        #expect(
            Self.texts(depthCodec.messages(for: SubscriptionBatch(change: .unsubscribe, instruments: [Self.reliance]))) == [
                #"{"RequestCode":25,\#(list)}"#
            ]
        )
    }

    @Test("Dhan: disconnect reasons 805-809 end the session for good, others reconnect; ticks before the packet are delivered")
    func dhanDisconnect() {
        var codec = DhanFeedCodec(master: Self.dhanMaster, logger: Self.logger)
        _ = codec.messages(for: Self.subscribe(.ltp))
        let sink = RecordingSink()
        let ticker = DhanMarket(segment: 1, securityID: 2885, lastPrice: 2500.5).packet(code: 2)
        let expired = codec.decode(.binary(ByteBuffer(bytes: ticker + DhanMarket.disconnectPacket(reason: 807))), into: sink)
        #expect(expired == .closeConnection(reason: "Dhan ended the session: the access token has expired (code 807)", retry: false))
        #expect(sink.receivedTicks.map(\.ltp) == [2500.5])
        for reason in UInt16(805)...809 {
            #expect(DhanSession.outcome(forDisconnect: reason) != .accepted)
            guard case .closeConnection(_, let retry) = DhanSession.outcome(forDisconnect: reason) else { continue }
            #expect(!retry, "reason \(reason)")
        }
        #expect(
            DhanSession.outcome(forDisconnect: 810)
                == .closeConnection(reason: "Dhan ended the session: disconnect reason 810 (code 810)", retry: true)
        )
    }

    @Test("Dhan 20-level socket: a book is one tick once both sides have arrived; a disconnect packet ends the session")
    func dhanDepth() {
        var codec = DhanDepthFeedCodec(master: Self.dhanMaster, logger: Self.logger)
        _ = codec.messages(for: Self.subscribe(.depth, depth: 20))
        var market = DhanMarket(segment: 1, securityID: 2885, lastPrice: 0)
        market.bids20 = (0..<20).map { DhanMarket.Level(price: 2500 - Double($0), quantity: 10, orders: 1) }
        market.asks20 = (0..<20).map { DhanMarket.Level(price: 2501 + Double($0), quantity: 20, orders: 2) }
        let sink = RecordingSink()
        #expect(codec.decode(.binary(ByteBuffer(bytes: market.depthPacket(code: 41))), into: sink) == .accepted)
        #expect(sink.receivedTicks.isEmpty, "waiting for the asks")
        #expect(codec.decode(.binary(ByteBuffer(bytes: market.depthPacket(code: 51))), into: sink) == .accepted)
        let book = sink.receivedTicks.first?.depth
        #expect(book?.buy.count == 20 && book?.sell.count == 20)
        #expect(book?.buy.last?.price == 2481 && book?.sell.first?.price == 2501)
        var disconnect = PacketBuilder(.little)
        disconnect.u16(14)
        disconnect.u8(50)
        disconnect.u8(0)
        disconnect.u32(0)
        disconnect.u32(0)
        disconnect.u16(809)
        #expect(
            codec.decode(.binary(disconnect.buffer), into: sink)
                == .closeConnection(reason: "Dhan ended the session: authentication failed (code 809)", retry: false)
        )
    }
}
