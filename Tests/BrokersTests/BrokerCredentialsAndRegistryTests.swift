import AngelOneFeed
import BrokerKit
import Brokers
import DhanFeed
import Logging
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Broker credentials and registry")
struct BrokerCredentialsAndRegistryTests {
    /// A fresh directory under /tmp holding `config/openalgo/` and `credentials/`.
    struct Scratch {
        let root: String

        init() throws {
            var template = Array("/tmp/oa-credentials-XXXXXX".utf8CString)
            let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
            self.root = String(cString: try #require(made))
            mkdir(self.root + "/config", 0o700)
            mkdir(self.root + "/config/openalgo", 0o700)
            mkdir(self.root + "/credentials", 0o700)
        }

        var environment: [String: String] {
            ["XDG_CONFIG_HOME": self.root + "/config", "CREDENTIALS_DIRECTORY": self.root + "/credentials"]
        }

        func write(_ relativePath: String, _ text: String, mode: mode_t = 0o600) {
            let path = self.root + "/" + relativePath
            let file = fopen(path, "w")!
            fputs(text, file)
            fclose(file)
            chmod(path, mode)
        }

        func remove() {
            for path in ["config/openalgo/zerodha.credentials", "credentials/zerodha-access-token"] { unlink(self.root + "/" + path) }
            for path in ["config/openalgo", "config", "credentials", ""] { rmdir(self.root + "/" + path) }
        }
    }

    @Test("each field comes from the first source that has it: ws_connect, systemd, the private file, settings")
    func precedence() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        scratch.write("config/openalgo/zerodha.credentials", "# Kite\napi_key = \"file-key\"\naccess_token = file-token\nuser_id=AB1234\n")
        scratch.write("credentials/zerodha-access-token", "systemd-token\n")
        let credentials = try BrokerCredentials.load(
            broker: "zerodha",
            fields: ["api_key", "access_token", "user_id", "api_secret"],
            explicit: ["user_id": "IPC99", "api_key": "  "],
            settings: BrokerSettings(["api_secret": "settings-secret", "api_key": "settings-key"]),
            environment: scratch.environment
        )
        #expect(credentials["api_key"] == "file-key")
        #expect(credentials["access_token"] == "systemd-token")
        #expect(credentials["user_id"] == "IPC99")
        #expect(credentials["api_secret"] == "settings-secret")
        #expect(credentials.sources["access_token"] == scratch.root + "/credentials/zerodha-access-token")
        #expect(credentials.sources["user_id"] == "ws_connect")
        #expect(!credentials.description.contains("token\""), "the description names sources, not values")
        #expect(!credentials.description.contains("systemd-token"))
    }

    @Test("missing fields are named together with every place that was searched")
    func missingFields() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let error = #expect(throws: BrokerCredentialsError.self) {
            try BrokerCredentials.load(
                broker: "zerodha",
                fields: ["api_key", "access_token"],
                optionalFields: ["x_kite_version"],
                settings: BrokerSettings(["api_key": "k"]),
                environment: scratch.environment
            )
        }
        #expect(
            error?.message == "zerodha credentials are missing access_token; looked in: ws_connect credentials; "
                + "systemd credentials (\(scratch.root)/credentials/zerodha-<field>); \(scratch.root)/config/openalgo/zerodha.credentials; "
                + "[brokers.zerodha] in agent.toml or OPENALGO_BROKER_ZERODHA_<FIELD>"
        )
        let bare = #expect(throws: BrokerCredentialsError.self) {
            try BrokerCredentials.load(broker: "dhan", fields: ["client_id"], environment: [:])
        }
        #expect(bare?.message.contains("CREDENTIALS_DIRECTORY is not set") == true)
        #expect(bare?.message.contains("neither XDG_CONFIG_HOME nor HOME is set") == true)
    }

    @Test("a credentials file others can read is refused with the chmod to run; bad lines name the line")
    func filePermissionsAndSyntax() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let path = scratch.root + "/config/openalgo/zerodha.credentials"
        scratch.write("config/openalgo/zerodha.credentials", "api_key = k\n", mode: 0o640)
        #expect(throws: BrokerCredentialsError("refusing to use \(path): other users can read it; run 'chmod 600 \(path)'")) {
            try BrokerCredentials.load(broker: "zerodha", fields: ["api_key"], environment: scratch.environment)
        }
        scratch.write("config/openalgo/zerodha.credentials", "api_key = k\naccess_token\n")
        #expect(throws: BrokerCredentialsError("\(path) line 2: expected 'field = value'")) {
            try BrokerCredentials.load(broker: "zerodha", fields: ["api_key"], environment: scratch.environment)
        }
    }

    @Test("names and aliases resolve case-insensitively; known but unimplemented brokers say so")
    func registry() throws {
        #expect(BrokerRegistry.supportedBrokers == ["zerodha", "angelone", "dhan", "simulator", "replay", "zmq"])
        #expect(BrokerRegistry.knownBrokers == ["zerodha", "angelone", "dhan", "fyers", "upstox", "simulator", "replay", "zmq"])
        #expect(try BrokerRegistry.entry(named: "Angel").name == "angelone")
        #expect(try BrokerRegistry.entry(named: "ANGELONE").name == "angelone")
        #expect(
            throws: BrokerConfigurationError(
                "broker 'fyers' is not available in this build yet; this build supports: zerodha, angelone, dhan, simulator, replay, zmq"
            )
        ) {
            try BrokerRegistry.makeAdapter(
                named: "Fyers",
                settings: BrokerSettings(),
                eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
                logger: Logger(label: "test")
            )
        }
        let simulator = try BrokerRegistry.makeAdapter(
            named: "SIMULATOR",
            settings: BrokerSettings(),
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test")
        )
        #expect(simulator.brokerName == "simulator")
        let angel = try BrokerRegistry.makeAdapter(
            named: "angel",
            settings: BrokerSettings(),
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test")
        )
        #expect(angel is PooledBrokerFeed<AngelOneBroker> && angel.brokerName == "angel", "clients see OpenAlgo's name for Angel One")
        #expect(
            try BrokerRegistry.makeAdapter(
                named: "dhan",
                settings: BrokerSettings(),
                eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
                logger: Logger(label: "test")
            ) is PooledBrokerFeed<DhanBroker>
        )
    }
}
