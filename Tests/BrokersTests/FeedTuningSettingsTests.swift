import BrokerKit
import Brokers
import Logging
import NIOCore
import NIOPosix
import Testing

@Suite("Feed tuning settings and the Zerodha adapter's settings")
struct FeedTuningSettingsTests {
    let defaults = FeedSupervisorStateMachine.Configuration(
        reconnect: ReconnectPolicy(initialDelay: .seconds(2), multiplier: 1.5, maximumDelay: .seconds(60), maximumAttempts: 50),
        stallTimeout: .seconds(90),
        stallCheckInterval: .seconds(30)
    )

    @Test("unset keys keep the broker's defaults; set ones replace them; a stall is checked every third of its timeout")
    func overrides() throws {
        #expect(try FeedTuningSettings.supervision(BrokerSettings(), broker: "zerodha", defaults: self.defaults) == self.defaults)
        let tuned = try FeedTuningSettings.supervision(
            BrokerSettings([
                "reconnect_initial_delay_ms": "50", "reconnect_max_delay_ms": "200", "reconnect_multiplier": "2", "reconnect_max_attempts": "3",
                "stall_timeout_s": "0.6",
            ]),
            broker: "zerodha",
            defaults: self.defaults
        )
        #expect(
            tuned.reconnect == ReconnectPolicy(initialDelay: .milliseconds(50), multiplier: 2, maximumDelay: .milliseconds(200), maximumAttempts: 3)
        )
        #expect(tuned.stallTimeout == .milliseconds(600))
        #expect(tuned.stallCheckInterval == .milliseconds(200))
        #expect(
            try FeedTuningSettings.supervision(BrokerSettings(["stall_timeout_s": "0"]), broker: "zerodha", defaults: self.defaults).stallTimeout
                == nil
        )
    }

    @Test("bad values are errors naming the table and the key")
    func badValues() {
        #expect(throws: BrokerConfigurationError("[brokers.zerodha] reconnect_max_attempts must be a whole number from 0, got 2.5")) {
            try FeedTuningSettings.supervision(BrokerSettings(["reconnect_max_attempts": "2.5"]), broker: "zerodha", defaults: self.defaults)
        }
        #expect(throws: BrokerConfigurationError("[brokers.zerodha] reconnect_max_delay_ms must be at least reconnect_initial_delay_ms")) {
            try FeedTuningSettings.supervision(
                BrokerSettings(["reconnect_initial_delay_ms": "500", "reconnect_max_delay_ms": "100"]),
                broker: "zerodha",
                defaults: self.defaults
            )
        }
        #expect(throws: BrokerConfigurationError("[brokers.zerodha] stall_timeout_s must be a number, got 'soon'")) {
            try FeedTuningSettings.supervision(BrokerSettings(["stall_timeout_s": "soon"]), broker: "zerodha", defaults: self.defaults)
        }
        // Beyond a day the timeout is refused: 1e300 seconds trapped converting to nanoseconds.
        for tooLong in ["1e300", "86401"] {
            #expect(
                throws: BrokerConfigurationError(
                    "[brokers.zerodha] stall_timeout_s must be from 0 (no check) to 86400 seconds, got \(tooLong)"
                )
            ) {
                try FeedTuningSettings.supervision(BrokerSettings(["stall_timeout_s": tooLong]), broker: "zerodha", defaults: self.defaults)
            }
        }
    }

    @Test("Angel One refuses a heartbeat_interval_s below a millisecond, which would ping back to back")
    func angelOneHeartbeat() throws {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        for (text, shown) in [("1e-12", "1e-12"), ("0.0005", "0.0005"), ("3601", "3601.0")] {
            #expect(
                throws: BrokerConfigurationError("[brokers.angelone] heartbeat_interval_s must be from 0.001 to 3600 seconds, got \(shown)")
            ) {
                try BrokerRegistry.makeAdapter(
                    named: "angelone",
                    settings: BrokerSettings(["heartbeat_interval_s": text]),
                    eventLoop: eventLoop,
                    logger: Logger(label: "test")
                )
            }
        }
        _ = try BrokerRegistry.makeAdapter(
            named: "angelone",
            settings: BrokerSettings(["heartbeat_interval_s": "0.001"]),
            eventLoop: eventLoop,
            logger: Logger(label: "test")
        )
    }

    @Test("the registry builds the Zerodha adapter and refuses a ws_url that is no WebSocket address")
    func zerodhaSettings() throws {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let adapter = try BrokerRegistry.makeAdapter(
            named: "Zerodha",
            settings: BrokerSettings(),
            eventLoop: eventLoop,
            logger: Logger(label: "test")
        )
        #expect(adapter.brokerName == "zerodha")
        #expect(adapter.connectionState == .disconnected)
        #expect(
            throws: BrokerConfigurationError(
                "[brokers.zerodha] ws_url: invalid WebSocket URL 'https://ws.kite.trade': it must start with ws:// or wss://"
            )
        ) {
            try BrokerRegistry.makeAdapter(
                named: "zerodha",
                settings: BrokerSettings(["ws_url": "https://ws.kite.trade"]),
                eventLoop: eventLoop,
                logger: Logger(label: "test")
            )
        }
    }
}
