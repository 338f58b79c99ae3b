import Agent
import Logging
import MarketData
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A fresh temporary directory, removed afterwards.
func withTemporaryDirectory<Result>(_ body: (String) throws -> Result) throws -> Result {
    var template = Array("/tmp/oa-agent-test-XXXXXX".utf8CString)
    guard let path = mkdtemp(&template) else { throw ConfigurationError("mkdtemp failed") }
    let directory = String(cString: path)
    defer { _ = system("rm -rf '\(directory)'") }
    return try body(directory)
}

func writeFile(_ path: String, _ text: String, mode: mode_t = 0o644) {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
    _ = text.utf8CString.withUnsafeBufferPointer { write(descriptor, $0.baseAddress, text.utf8.count) }
    fchmod(descriptor, mode)
    close(descriptor)
}

@Suite("Configuration")
struct ConfigurationTests {
    let logger = Logger(label: "test")

    @Test("defaults work with no file")
    func defaults() throws {
        let configuration = try ConfigurationLoader.load(environment: ["HOME": "/nonexistent"], logger: self.logger)
        #expect(configuration.proxy.host == "127.0.0.1")
        #expect(configuration.proxy.port == 8765)
        #expect(configuration.broker == "simulator")
        #expect(configuration.proxy.pingInterval == .seconds(5))
        #expect(configuration.proxy.pingTimeout == .seconds(10))
        #expect(configuration.proxy.maxClients == 1000)
        #expect(configuration.ltpThrottle == .milliseconds(50))
        #expect(configuration.configurationFile == nil)
    }

    @Test("flags beat the environment, which beats agent.toml")
    func precedence() throws {
        try withTemporaryDirectory { directory in
            mkdir(directory + "/openalgo", 0o700)
            writeFile(
                directory + "/openalgo/agent.toml",
                """
                port = 9000
                host = "127.0.0.2"
                ltp_throttle_ms = 0
                ping_interval = 2.5
                [brokers.simulator]
                ticks_per_second = 5
                seed = 9
                """
            )
            let environment = [
                "XDG_CONFIG_HOME": directory, "OPENALGO_PORT": "9100", "OPENALGO_BROKER_SIMULATOR_TICKS_PER_SECOND": "50",
            ]
            let fromFileAndEnvironment = try ConfigurationLoader.load(environment: environment, logger: self.logger)
            #expect(fromFileAndEnvironment.configurationFile == directory + "/openalgo/agent.toml")
            #expect(fromFileAndEnvironment.proxy.port == 9100)
            #expect(fromFileAndEnvironment.proxy.host == "127.0.0.2")
            #expect(fromFileAndEnvironment.ltpThrottle == .zero)
            #expect(fromFileAndEnvironment.proxy.pingInterval == .milliseconds(2500))
            #expect(fromFileAndEnvironment.brokerSettings["ticks_per_second"] == "50")
            #expect(fromFileAndEnvironment.brokerSettings["seed"] == "9")
            let withFlags = try ConfigurationLoader.load(
                overrides: CommandLineOverrides(port: 9200, broker: "Simulator"),
                environment: environment,
                logger: self.logger
            )
            #expect(withFlags.proxy.port == 9200)
            #expect(withFlags.broker == "simulator")
        }
    }

    @Test("[record] and [brokers.replay]: lists or comma-separated instruments, OPENALGO_RECORD_* and --replay/--speed/--loop")
    func recordAndReplay() throws {
        try withTemporaryDirectory { directory in
            writeFile(
                directory + "/agent.toml",
                """
                [record]
                instruments = ["NSE:RELIANCE", "nfo:NIFTY28DEC2425000CE"]
                mode = "depth"
                directory = "/var/lib/ticks"
                [brokers.replay]
                file = "/data/day.jsonl"
                speed = "max"
                """
            )
            let environment = ["OPENALGO_CONFIG": directory + "/agent.toml", "OPENALGO_BROKER_REPLAY_LOOP": "true"]
            let fromFile = try ConfigurationLoader.load(environment: environment, logger: self.logger)
            var expected = RecordConfiguration()
            expected.instruments = [.init(exchange: "NSE", symbol: "RELIANCE"), .init(exchange: "NFO", symbol: "NIFTY28DEC2425000CE")]
            expected.mode = .depth
            expected.output = "/var/lib/ticks/ticks.jsonl"
            #expect(fromFile.record == expected)
            #expect(fromFile.brokers["replay"] == .init(["file": "/data/day.jsonl", "speed": "max", "loop": "true"]))
            #expect(fromFile.broker == "simulator")

            var overridden = environment
            overridden["OPENALGO_RECORD_INSTRUMENTS"] = "NSE:SBIN, NSE_INDEX:NIFTY"
            overridden["OPENALGO_RECORD_OUTPUT"] = "/tmp/x.jsonl"
            let flags = CommandLineOverrides(replayFile: "/data/other.jsonl", replaySpeed: "10", replayLoop: false)
            let withFlags = try ConfigurationLoader.load(overrides: flags, environment: overridden, logger: self.logger)
            #expect(withFlags.record?.instruments.map(\.description) == ["NSE:SBIN", "NSE_INDEX:NIFTY"])
            #expect(withFlags.record?.output == "/tmp/x.jsonl")
            #expect(withFlags.broker == "replay", "--replay without --broker selects the replay feed")
            #expect(withFlags.brokerSettings == .init(["file": "/data/other.jsonl", "speed": "10", "loop": "false"]))

            writeFile(directory + "/agent.toml", "[record]\nmode = \"Quote\"\n")
            #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(environment: environment, logger: self.logger) }
            writeFile(directory + "/agent.toml", "[record]\ninstruments = \"NSE:SBIN\"\noutput = \"/tmp/t.jsonl\"\ndepth = 7\n")
            #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(environment: environment, logger: self.logger) }
            writeFile(directory + "/agent.toml", "[record]\ninstruments = \"RELIANCE\"\noutput = \"/tmp/t.jsonl\"\n")
            #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(environment: environment, logger: self.logger) }
        }
    }

    @Test("bad values are reported with their key and source")
    func errors() throws {
        #expect(throws: ConfigurationError("port (from OPENALGO_PORT) must be an integer from 0 to 65535, got 'http'")) {
            try ConfigurationLoader.load(environment: ["HOME": "/nonexistent", "OPENALGO_PORT": "http"], logger: self.logger)
        }
        #expect(
            throws: ConfigurationError("ping_interval (from OPENALGO_PING_INTERVAL) must be a number of seconds from 0.001 to 86400, got '1e-12'")
        ) {
            try ConfigurationLoader.load(environment: ["HOME": "/nonexistent", "OPENALGO_PING_INTERVAL": "1e-12"], logger: self.logger)
        }
        #expect(
            throws: ConfigurationError("log_level (from --log-level) must be one of trace, debug, info, notice, warning, error, critical, got 'loud'")
        ) {
            try ConfigurationLoader.load(overrides: CommandLineOverrides(logLevel: "loud"), environment: [:], logger: self.logger)
        }
        #expect(
            throws: ConfigurationError(
                "broker (from OPENALGO_BROKER): unknown broker 'kite'; known brokers: zerodha, angelone (angel), dhan, fyers, upstox, simulator, replay, zmq; this build supports: zerodha, angelone, dhan, simulator, replay, zmq"
            )
        ) {
            try ConfigurationLoader.load(environment: ["HOME": "/nonexistent", "OPENALGO_BROKER": "kite"], logger: self.logger)
        }
        #expect(
            throws: ConfigurationError(
                "broker (from --broker): broker 'fyers' is not available in this build yet; this build supports: zerodha, angelone, dhan, simulator, replay, zmq"
            )
        ) {
            try ConfigurationLoader.load(overrides: CommandLineOverrides(broker: "Fyers"), environment: ["HOME": "/nonexistent"], logger: self.logger)
        }
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(
                overrides: CommandLineOverrides(configurationFile: "/nonexistent/agent.toml"),
                environment: [:],
                logger: self.logger
            )
        }
        try withTemporaryDirectory { directory in
            writeFile(directory + "/bad.toml", "port = [1, 2]\n")
            #expect(throws: ConfigurationError("\(directory)/bad.toml: port must be a string, number or boolean")) {
                try ConfigurationLoader.load(
                    overrides: CommandLineOverrides(configurationFile: directory + "/bad.toml"),
                    environment: [:],
                    logger: self.logger
                )
            }
            writeFile(directory + "/broken.toml", "port = \n")
            #expect(throws: ConfigurationError.self) {
                try ConfigurationLoader.load(
                    overrides: CommandLineOverrides(configurationFile: directory + "/broken.toml"),
                    environment: [:],
                    logger: self.logger
                )
            }
        }
    }
}

@Suite("API key")
struct APIKeyTests {
    let logger = Logger(label: "test")

    @Test("generated on first start as 64 hex digits in a 0600 file in a 0700 directory, then reused")
    func generated() throws {
        try withTemporaryDirectory { directory in
            let environment = ["XDG_CONFIG_HOME": directory]
            let first = try APIKeyStore.resolve(environment: environment, logger: self.logger)
            #expect(first.generated)
            #expect(first.source == directory + "/openalgo/api-key")
            #expect(first.key.count == 64 && first.key.allSatisfy(\.isHexDigit))
            var info = stat()
            stat(first.source, &info)
            #expect(info.st_mode & 0o777 == 0o600)
            stat(directory + "/openalgo", &info)
            #expect(info.st_mode & 0o777 == 0o700)
            let second = try APIKeyStore.resolve(environment: environment, logger: self.logger)
            #expect(second.key == first.key && !second.generated)
        }
    }

    @Test("the environment and systemd credentials come first; a key file others can read is refused")
    func sources() throws {
        try withTemporaryDirectory { directory in
            #expect(try APIKeyStore.resolve(environment: ["OPENALGO_API_KEY": " k1 \n"], logger: self.logger).key == "k1")
            writeFile(directory + "/api-key", "from-credentials\n", mode: 0o400)
            let credential = try APIKeyStore.resolve(environment: ["CREDENTIALS_DIRECTORY": directory, "HOME": "/nonexistent"], logger: self.logger)
            #expect(credential.key == "from-credentials")
            mkdir(directory + "/openalgo", 0o700)
            writeFile(directory + "/openalgo/api-key", "shared\n", mode: 0o644)
            #expect(
                throws: ConfigurationError(
                    "refusing to use \(directory)/openalgo/api-key: other users can read it; run 'chmod 600 \(directory)/openalgo/api-key'"
                )
            ) {
                try APIKeyStore.resolve(environment: ["XDG_CONFIG_HOME": directory], logger: self.logger)
            }
        }
    }
}
