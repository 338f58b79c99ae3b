import BrokerKit
import MarketData
import NIOCore
import OpenAlgoBusFeed
import Testing
import WireJSON
import ZeroMQ

/// Bodies as OpenAlgo's adapters publish them (`json.dumps` of their normalised dicts), and the
/// `data` object the agent sends for them.
@Suite("ZeroMQ tick decoding")
struct ZeroMQTickDecoderTests {
    static func decode(_ topic: String, _ body: String) -> ZeroMQBusDecoder.Outcome {
        ZeroMQBusDecoder.decode(topic: ByteBuffer(string: topic), body: ByteBuffer(string: body))
    }

    /// The `data` object the agent writes for the tick a message decodes to.
    static func data(_ topic: String, _ body: String) throws -> String {
        guard case .tick(let tick) = decode(topic, body) else { throw DecodingFailed(outcome: decode(topic, body)) }
        var buffer = ByteBuffer()
        MarketDataEnvelope.writeData(of: tick, into: &buffer)
        return String(buffer: buffer)
    }

    struct DecodingFailed: Error {
        var outcome: ZeroMQBusDecoder.Outcome
    }

    @Test("an LTP body keeps its fields; a nanosecond timestamp beyond 2^53 passes unchanged")
    func ltp() throws {
        let body =
            #"{"symbol": "NIFTY", "exchange": "NSE_INDEX", "mode": "ltp", "ltp": 24350.55, "ltt": 1746171226, "timestamp": 1795737969836123457}"#
        #expect(
            try Self.data("NSE_INDEX_NIFTY_LTP", body)
                == #"{"symbol": "NIFTY", "exchange": "NSE_INDEX", "mode": 1, "ltp": 24350.55, "ltt": 1746171226, "timestamp": 1795737969836123457}"#
        )
        guard case .tick(let tick) = Self.decode("NSE_INDEX_NIFTY_LTP", body) else {
            Issue.record("not a tick")
            return
        }
        #expect(tick.timestamp == 1_795_737_969_836_123_457)
        #expect(tick.instrument == Instrument(exchange: "NSE_INDEX", symbol: "NIFTY"))
        #expect(tick.mode == .ltp)
        #expect(tick.extraFields == nil, "a body the tick models fully needs no extra fields")
    }

    @Test("a Quote body: modelled keys fill the tick, the adapter's other keys follow in their order")
    func quote() throws {
        let body = """
            {"ltp": 1424.05, "ltt": 1746171226000, "volume": 100000, "open": 1415, "high": 1432.5, "low": 1408.0, "close": 1418.0, \
            "last_quantity": 50, "average_price": 1420.12, "total_buy_quantity": 5000, "total_sell_quantity": 7000, "oi": null, \
            "price_change": 6.05, "exchange_timestamp": 1746171226, "symbol": "RELIANCE", "exchange": "NSE", "mode": 2, "timestamp": 1795737969836}
            """
        #expect(
            try Self.data("NSE_RELIANCE_QUOTE", body) == """
                {"symbol": "RELIANCE", "exchange": "NSE", "mode": 2, "ltp": 1424.05, "ltt": 1746171226000, "timestamp": 1795737969836, \
                "open": 1415.0, "high": 1432.5, "low": 1408.0, "close": 1418.0, "volume": 100000, "last_quantity": 50, "last_trade_quantity": 50, \
                "average_price": 1420.12, "avg_trade_price": 1420.12, "total_buy_quantity": 5000, "total_sell_quantity": 7000, \
                "change": 6.05, "change_percent": 0.43, "oi": null, "price_change": 6.05, "exchange_timestamp": 1746171226}
                """
        )
    }

    @Test("a Depth body with a plain book becomes a MarketDepth; other keys follow")
    func depth() throws {
        let body = """
            {"ltp": 250.5, "depth": {"buy": [{"price": 250.45, "quantity": 100, "orders": 2}, {"price": 250.4, "quantity": 10, "orders": 0}], \
            "sell": [{"price": 250.55, "quantity": 75, "orders": 1}]}, "timestamp": 1795737969836, "depth_level": 5}
            """
        #expect(
            try Self.data("NFO_NIFTY28APR2425000CE_DEPTH", body) == """
                {"symbol": "NIFTY28APR2425000CE", "exchange": "NFO", "mode": 3, "ltp": 250.5, "timestamp": 1795737969836, \
                "depth": {"buy": [{"price": 250.45, "quantity": 100, "orders": 2}, {"price": 250.4, "quantity": 10, "orders": 0}], \
                "sell": [{"price": 250.55, "quantity": 75, "orders": 1}]}, "depth_level": 5}
                """
        )
    }

    @Test("values the tick cannot hold exactly are kept as sent, never duplicated")
    func valuesKeptAsSent() throws {
        #expect(
            try Self.data("NSE_SBIN_QUOTE", #"{"ltp": 800, "volume": 100.0, "timestamp": 123456789012345678901234567890, "ltt": "09:15:00"}"#)
                == #"{"symbol": "SBIN", "exchange": "NSE", "mode": 2, "ltp": 800.0, "volume": 100.0, "timestamp": 123456789012345678901234567890, "ltt": "09:15:00"}"#
        )
        let oddBook = #"{"buy": [{"price": 1, "quantity": 2, "orders": 3, "source": "x"}], "sell": []}"#
        #expect(
            try Self.data("NSE_SBIN_DEPTH", #"{"depth": \#(oddBook), "timestamp": 5}"#)
                == #"{"symbol": "SBIN", "exchange": "NSE", "mode": 3, "timestamp": 5, "depth": \#(oddBook)}"#
        )
        #expect(
            try Self.data(
                "NSE_SBIN_QUOTE",
                #"{"last_quantity": 5, "last_trade_quantity": null, "avg_trade_price": 1.5, "average_price": "n/a", "timestamp": 5}"#
            )
                == #"{"symbol": "SBIN", "exchange": "NSE", "mode": 2, "timestamp": 5, "last_quantity": 5, "last_trade_quantity": 5, "average_price": 1.5, "avg_trade_price": 1.5}"#
        )
    }

    @Test("change fields: kept on LTP ticks, used on Quote ticks, kept as sent when the agent cannot derive them")
    func changeFields() throws {
        #expect(
            try Self.data("NSE_SBIN_LTP", #"{"ltp": 10.5, "change": 0.5, "change_percent": 5, "timestamp": 5}"#)
                == #"{"symbol": "SBIN", "exchange": "NSE", "mode": 1, "ltp": 10.5, "timestamp": 5, "change": 0.5, "change_percent": 5}"#
        )
        #expect(
            try Self.data("NSE_SBIN_QUOTE", #"{"ltp": 10.5, "change": 0.25, "change_percent": null, "timestamp": 5}"#)
                == #"{"symbol": "SBIN", "exchange": "NSE", "mode": 2, "ltp": 10.5, "timestamp": 5, "change": 0.25, "change_percent": null}"#
        )
        #expect(
            try Self.data("NSE_SBIN_QUOTE", #"{"ltp": 10.5, "close": 10.0, "change": null, "timestamp": 5}"#)
                == #"{"symbol": "SBIN", "exchange": "NSE", "mode": 2, "ltp": 10.5, "timestamp": 5, "close": 10.0, "change": 0.5, "change_percent": 5.0}"#
        )
    }

    @Test(
        "the data object the agent writes decodes back to a tick that writes the same bytes",
        arguments: [
            ("NSE_INDEX_NIFTY_LTP", #"{"ltp": 24350.55, "ltt": 1746171226, "timestamp": 1795737969836123457, "mode": "ltp"}"#),
            ("NSE_SBIN_QUOTE", #"{"ltp": 800, "close": 790.5, "volume": 100.0, "avg_trade_price": 799.1, "price_change": 9.5, "timestamp": 5}"#),
            ("NSE_SBIN_DEPTH", #"{"ltp": 1, "depth": {"buy": [{"price": 1, "quantity": 2, "orders": 3}], "sell": []}, "oi": null, "timestamp": 5}"#),
            ("NSE_SBIN_LTP", #"{"ltp": 10.5, "change": 0.5, "timestamp": 123456789012345678901234567890}"#),
        ]
    )
    func roundTrip(topic: String, body: String) throws {
        let written = try Self.data(topic, body)
        #expect(try Self.data(topic, written) == written)
    }

    @Test("a tick without a timestamp of its own is stamped by the hub; one with an unmodelled timestamp is not")
    func timestampPresence() throws {
        guard case .tick(let plain) = Self.decode("NSE_SBIN_LTP", #"{"ltp": 1}"#),
            case .tick(let huge) = Self.decode("NSE_SBIN_LTP", #"{"ltp": 1, "timestamp": 99999999999999999999}"#)
        else {
            Issue.record("not ticks")
            return
        }
        #expect(!plain.hasTimestamp)
        #expect(huge.hasTimestamp && huge.timestamp == nil)
    }

    @Test("bad messages are skipped and counted, never a crash")
    func skipped() {
        var decoder = ZeroMQBusDecoder()
        func message(_ frames: [String]) -> ZeroMQMessage { ZeroMQMessage(frames: frames.map { ByteBuffer(string: $0) }) }
        #expect(decoder.decode(message(["NSE_SBIN_LTP", "{\"ltp\": 1"])) == .skipped(.invalidJSON))
        #expect(decoder.decode(message(["NSE_SBIN_LTP", "[1, 2]"])) == .skipped(.notAnObject))
        #expect(decoder.decode(message(["NSE_SBIN_LTP", ""])) == .skipped(.invalidJSON))
        #expect(decoder.decode(message(["NSE_SBIN_FULL", "{}"])) == .skipped(.unknownMode))
        #expect(decoder.decode(message(["NSE_LTP", "{}"])) == .skipped(.malformedTopic))
        #expect(decoder.decode(message(["NSE_SBIN_LTP"])) == .skipped(.notTwoFrames))
        #expect(decoder.decode(message(["NSE_SBIN_LTP", "{}", "{}"])) == .skipped(.notTwoFrames))
        #expect(
            decoder.decode(ZeroMQMessage(frames: [ByteBuffer(bytes: [0x4E, 0xFF, 0x5F, 0x41, 0x5F, 0x4C]), ByteBuffer(string: "{}")]))
                == .skipped(.topicNotUTF8)
        )
        #expect(decoder.decode(message(["ZERODHA_raj_orders", #"{"type": "order_update", "orderid": "1"}"#])) == .skipped(.orderUpdateWithoutUser))
        #expect(decoder.decode(message(["ZERODHA_raj_orders", "nope"])) == .skipped(.invalidJSON))
        #expect(decoder.decode(message(["CACHE_INVALIDATE_ALL_raj", #"{"action": "invalidate"}"#])) == .ignored)
        #expect(decoder.decode(message(["ZERODHA_raj_positions", "{}"])) == .ignored)
        #expect(decoder.decode(message(["ZERODHA_raj_margins", "not even json"])) == .ignored)
        let order = #"{"type": "order_update", "user_id": "raj", "orderid": "1", "mode": "live"}"#
        #expect(decoder.decode(message(["ZERODHA_raj_orders", order])) == .orderUpdate(ByteBuffer(string: order)))
        #expect(decoder.decode(message(["NSE_SBIN_LTP", #"{"ltp": 1}"#])) != .skipped(.invalidJSON))

        let statistics = decoder.statistics
        #expect(statistics.messages == 15)
        #expect(statistics.ticks == 1)
        #expect(statistics.orderUpdates == 1)
        #expect(statistics.ignored == 3)
        #expect(
            statistics.skipped == [
                .invalidJSON: 3, .notAnObject: 1, .unknownMode: 1, .malformedTopic: 1, .notTwoFrames: 2, .topicNotUTF8: 1,
                .orderUpdateWithoutUser: 1,
            ]
        )
    }

    @Test("[brokers.zmq] settings: defaults, values, and errors that name the key")
    func configuration() throws {
        for (endpoint, exposed) in [
            ("tcp://127.0.0.1:5555", false), ("tcp://localhost:5555", false), ("tcp://[::1]:5555", false), ("tcp://lo:5555", false),
            ("ipc:///run/user/1000/openalgo.bus", false), ("tcp://0.0.0.0:5555", true), ("tcp://*:5555", true),
            ("tcp://192.168.1.5:5555", true), ("tcp://127.0.0.1;192.168.1.5:5555", true), ("tcp://eth0:5555", true),
        ] {
            #expect(ZeroMQFeedConfiguration(endpoint: endpoint).isReachableBeyondThisMachine == exposed, "\(endpoint)")
        }
        let defaults = try ZeroMQFeedConfiguration(BrokerSettings())
        #expect(defaults == ZeroMQFeedConfiguration(endpoint: "tcp://127.0.0.1:5555", socketMode: .bind, brokerName: "zmq"))
        let custom = try ZeroMQFeedConfiguration(
            BrokerSettings(["endpoint": " ipc:///tmp/bus ", "socket_mode": "Connect", "broker_name": "zerodha"])
        )
        #expect(custom == ZeroMQFeedConfiguration(endpoint: "ipc:///tmp/bus", socketMode: .connect, brokerName: "zerodha"))
        for (key, value) in [("endpoint", "127.0.0.1:5555"), ("endpoint", "tcp://"), ("socket_mode", "listen"), ("broker_name", " ")] {
            #expect {
                try ZeroMQFeedConfiguration(BrokerSettings([key: value]))
            } throws: { error in
                "\(error)".hasPrefix("[brokers.zmq] \(key) ")
            }
        }
    }
}
