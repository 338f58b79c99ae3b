import Foundation
import LocalIPC
import Testing
import WireJSON

extension SocketTests {
    /// `oactl`, the built binary, against a running agent.
    @Suite("oactl")
    struct OactlTests {
        @Test("status --json is one JSON object; the table names the agent and the feed")
        func status() async throws {
            try await TestAgent.with { agent in
                let json = try OactlRun(["status", "--json"], socket: agent.socketPath)
                #expect(json.status == 0)
                let object = try #require(try JSONParser.parse(json.output).objectValue)
                #expect(object["state"] == "connected" && object["broker"] == "simulator" && object["pid"] == .int(getpid()))
                let table = try OactlRun(["--socket", agent.socketPath, "status"], socket: nil, terminal: true)
                #expect(table.status == 0)
                #expect(table.output.contains("Feed") && table.output.contains("simulator: connected"))
            }
        }

        @Test("subscribe --count 5 --json prints five market_data lines and exits 0")
        func subscribeJSON() async throws {
            try await TestAgent.with { agent in
                let run = try OactlRun(["subscribe", "NSE:RELIANCE", "--mode", "Quote", "--count", "5", "--json"], socket: agent.socketPath)
                #expect(run.status == 0)
                let lines = run.output.split(separator: "\n")
                #expect(lines.count == 5)
                for line in lines {
                    let object = try JSONParser.parse(String(line)).objectValue
                    #expect(object?["type"] == "market_data" && object?["symbol"] == "RELIANCE" && object?["mode"] == 2)
                    #expect(object?["data"]?.objectValue?["ltp"]?.numberValue != nil)
                }
                let goStyle = try OactlRun(
                    ["subscribe", "--symbols", "RELIANCE,TCS", "--exchange", "NSE", "--mode", "LTP", "--count", "10"],
                    socket: agent.socketPath
                )
                #expect(goStyle.status == 0)
                let symbols = Set(
                    goStyle.output.split(separator: "\n").compactMap { try? JSONParser.parse(String($0)).objectValue?["symbol"]?.stringValue }
                )
                #expect(symbols == ["RELIANCE", "TCS"])
            }
        }

        @Test(
            "every other command against the agent: clients, subscriptions, metrics, events, connect, disconnect, unsubscribe, api-key, reload, call"
        )
        func otherCommands() async throws {
            try await TestAgent.with { agent in
                let holder = try agent.localClient()
                try holder.call("ws_subscribe", params: ["symbols": [["symbol": "SBIN", "exchange": "NSE"]], "mode": "Quote"])
                let socket = agent.socketPath
                let clients = try OactlRun(["clients", "--json"], socket: socket)
                let listed = try JSONParser.parse(clients.output).objectValue?["clients"]?.arrayValue ?? []
                #expect(listed.count == 2 && listed.contains { $0.objectValue?["subscriptions"]?.arrayValue?.count == 1 })
                let table = try OactlRun(["clients"], socket: socket, terminal: true)
                #expect(table.output.contains("ID") && table.output.contains("ipc") && table.output.contains("pid \(getpid())"))
                let subscriptions = try OactlRun(["subscriptions"], socket: socket, terminal: true)
                #expect(subscriptions.output.contains("NSE:SBIN") && subscriptions.output.contains("Quote"))
                let metrics = try OactlRun(["metrics", "--json"], socket: socket)
                #expect(try JSONParser.parse(metrics.output).objectValue?["ticks_in"]?.intValue != nil)
                let events = try OactlRun.start(["events", "--count", "3", "--json"], socket: socket)
                try await Task.sleep(for: .milliseconds(300))
                let disconnected = try OactlRun(["disconnect", "--json"], socket: socket)
                #expect(try JSONParser.parse(disconnected.output).objectValue?["state"] == "disconnected")
                let connected = try OactlRun(["connect", "simulator"], socket: socket, terminal: true)
                #expect(connected.status == 0 && connected.output.contains("simulator: connected"))
                let eventLines = events.finish().output.split(separator: "\n").map(String.init)
                #expect(eventLines.count == 3 && eventLines.allSatisfy { $0.contains(#""method":"ws_connection_status""#) })
                let unsubscribe = try OactlRun(["unsubscribe", "NSE:SBIN"], socket: socket, terminal: true)
                #expect(unsubscribe.status == 0 && unsubscribe.output.contains("unsubscribed NSE:SBIN Quote"))
                let key = try OactlRun(["api-key"], socket: socket)
                #expect(key.output == TestAgent.apiKey + "\n")
                let rotate = try OactlRun(["api-key", "--rotate"], socket: socket)
                #expect(rotate.status == 1 && rotate.errors.contains("oa.ipc.NotPermitted"))
                let reload = try OactlRun(["reload"], socket: socket)
                #expect(reload.status == 1 && reload.errors.contains("without a configuration source"))
                let call = try OactlRun(["call", "subscriptions"], socket: socket)
                #expect(try JSONParser.parse(call.output).objectValue?["agent"] == [])
                let badParams = try OactlRun(["call", "status", "[1]"], socket: socket)
                #expect(badParams.status == 64)
            }
        }

        @Test("exit statuses: 64 usage, 69 not running (with a hint), 1 agent error, 75 timeout")
        func exitStatuses() async throws {
            try await TestAgent.with { agent in
                let badSymbol = try OactlRun(["subscribe", "RELIANCE"], socket: agent.socketPath)
                #expect(badSymbol.status == 64 && badSymbol.errors.contains("'RELIANCE'"))
                let badMode = try OactlRun(["subscribe", "NSE:TCS", "--mode", "Full"], socket: agent.socketPath)
                #expect(badMode.status == 64 && badMode.errors.contains("'Full'"))
                let agentError = try OactlRun(["call", "no_such_method"], socket: agent.socketPath)
                #expect(agentError.status == 1 && agentError.errors.contains("Unknown method 'no_such_method'"))
                let unknownExchange = try OactlRun(["subscribe", "ZZZ:NOPE", "--count", "1"], socket: agent.socketPath)
                #expect(unknownExchange.status == 1 && unknownExchange.errors.contains("Symbol NOPE not found for exchange ZZZ"))
            }
            let missing = try OactlRun(["status"], socket: "/tmp/oa-no-such-dir/agent.sock")
            #expect(missing.status == 69 && missing.errors.contains("not running") && missing.errors.contains("hint:"))

            let silent = temporarySocketPath()
            let listener = try SilentListener(path: silent)
            let timeout = try OactlRun(["status", "--timeout", "300ms"], socket: silent)
            #expect(timeout.status == 75 && timeout.errors.contains("timed out"))
            listener.close()
        }

        @Test(
            "a process of another user is refused by the agent's peer check, and oactl says so with 77",
            .enabled(if: geteuid() == 0 && access("/usr/bin/setpriv", X_OK) == 0, "needs root to start a process as another user")
        )
        func otherUser() async throws {
            try await TestAgent.with { agent in
                let directory = String(agent.socketPath.dropLast("/agent.sock".count))
                // Open the file permissions, so that only the peer-credential check stands in the way.
                #expect(chmod(directory, 0o755) == 0 && chmod(agent.socketPath, 0o666) == 0)
                // A copy of oactl the other user can run whatever the permissions of the build directory.
                let copy = directory + "/oactl"
                let copied = try OactlRun.shell(#"cp "$OACTL" "$1" && chmod 755 "$1""#.replacingOccurrences(of: "$1", with: copy), socket: nil)
                #expect(copied.status == 0)
                let run = try OactlRun.shell(
                    "setpriv --reuid=65534 --regid=65534 --clear-groups '\(copy)' status",
                    socket: agent.socketPath
                )
                #expect(run.status == 77)
                #expect(run.errors.contains("refuses clients of another user"))
                #expect(try await agent.runtime.ipcServer.refusedPeerCount() == 1)
            }
        }

        @Test("a closed pipe ends the stream quietly; Ctrl-C ends it with 130")
        func pipeAndInterrupt() async throws {
            try await TestAgent.with { agent in
                let pipeline = try OactlRun.shell(
                    #""$OACTL" subscribe NSE:RELIANCE --mode LTP | head -2 > /dev/null; echo "status=${PIPESTATUS[0]}""#,
                    socket: agent.socketPath
                )
                #expect(pipeline.output.contains("status=0"))
                #expect(pipeline.errors.isEmpty)

                let process = Process()
                process.executableURL = URL(fileURLWithPath: OactlRun.binary)
                process.arguments = ["subscribe", "NSE:TCS", "--json"]
                process.environment = ["OPENALGO_AGENT_SOCKET": agent.socketPath]
                let output = Pipe()
                process.standardOutput = output
                try process.run()
                var received = Data()
                while !received.contains(UInt8(ascii: "\n")) {
                    let chunk = output.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    received.append(chunk)
                }
                process.interrupt()
                process.waitUntilExit()
                #expect(process.terminationStatus == 130)
                #expect(String(decoding: received, as: UTF8.self).hasPrefix(#"{"type":"market_data""#))
            }
        }

        @Test("on a terminal: an aligned live table, coloured unless NO_COLOR is set")
        func terminalTable() async throws {
            try await TestAgent.with { agent in
                let command = #""$OACTL" subscribe NSE:RELIANCE NSE:TCS NFO:NIFTY28DEC2425000CE --mode Quote --count 8"#
                let colour = try OactlRun.shell("script -qfec '\(command)' /dev/null", socket: agent.socketPath, environment: ["TERM": "xterm"])
                #expect(colour.output.contains("\u{1B}[1mSYMBOL"), "a bold header")
                #expect(colour.output.contains("\u{1B}[32m") || colour.output.contains("\u{1B}[31m"), "price moves in colour")
                let plain = try OactlRun.shell(
                    "script -qfec '\(command)' /dev/null",
                    socket: agent.socketPath,
                    environment: ["TERM": "xterm", "NO_COLOR": "1"]
                )
                #expect(!plain.output.contains("\u{1B}[3"), "no colours with NO_COLOR")
                let screen = plain.output.replacingOccurrences(of: "\r", with: "")
                let lastFrame = try #require(screen.components(separatedBy: "\u{1B}[J").last)
                let lines = lastFrame.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("\u{1B}[") }
                let header = try #require(lines.first { $0.hasPrefix("SYMBOL") })
                for column in ["LTP", "CHG", "CHG%", "VOLUME", "BID", "ASK", "OI", "TIME"] {
                    #expect(header.contains(column))
                }
                let rows = lines.filter { $0.hasPrefix("NSE:") || $0.hasPrefix("NFO:") }
                #expect(rows.count == 3)
                let ltpEnd = header.range(of: "LTP")!.upperBound.utf16Offset(in: header)
                for row in rows {
                    let cell = row.prefix(ltpEnd).split(separator: " ").last.map(String.init) ?? ""
                    #expect(cell.range(of: #"^\d+\.\d\d$"#, options: .regularExpression) != nil, "a price right-aligned under LTP: \(row)")
                }
                #expect(lastFrame.contains("8 updates"))
            }
        }

        @Test("shell completions and the man page cover every command")
        func completionsAndManPage() throws {
            for shell in ["bash", "zsh", "fish"] {
                let script = try OactlRun(["--generate-completion-script", shell], socket: nil)
                #expect(script.status == 0 && script.output.contains("subscribe") && script.output.contains("api-key"))
            }
            let help = try OactlRun(["--experimental-dump-help"], socket: nil)
            let commands = try #require(try JSONParser.parse(help.output).objectValue?["command"]?.objectValue?["subcommands"]?.arrayValue)
            let names = commands.compactMap { $0.objectValue?["commandName"]?.stringValue }.filter { $0 != "help" }
            #expect(names.count == 13)
            let page = try #require(readFile(OactlRun.packageRoot + "/man/oactl.1"))
            for name in names {
                #expect(page.contains(".It Cm \(name)"), "oactl(1) documents `\(name)`")
            }
        }

        @Test("the man pages render without warnings")
        func manPagesRender() throws {
            for page in ["man/oactl.1", "man/openalgo-agent.1", "man/openalgo-agent.toml.5"] {
                let path = OactlRun.packageRoot + "/" + page
                let lint = try OactlRun.shell(
                    "if command -v mandoc >/dev/null; then mandoc -T lint -W warning '\(path)'; else MANWIDTH=80 man -l --warnings '\(path)' > /dev/null; fi",
                    socket: nil
                )
                #expect(lint.status == 0, "\(page): \(lint.output)\(lint.errors)")
                let rendered = try OactlRun.shell("MANWIDTH=80 man -l '\(path)' 2>/dev/null", socket: nil)
                #expect(rendered.output.contains("NAME") && rendered.output.contains("EXAMPLES"))
            }
        }
    }
}

/// One run of the built `oactl` (or a shell line using `$OACTL`), with its output.
struct OactlRun {
    var status: Int32
    var output: String
    var errors: String

    /// Where the test bundle was built; `oactl` is built next to it.
    static let binary: String = {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("oactl").path
    }()

    /// The package root: tests run from it.
    static let packageRoot = FileManager.default.currentDirectoryPath

    init(_ arguments: [String], socket: String?, terminal: Bool = false, environment: [String: String] = [:]) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw IPCClientError.protocolViolation("oactl is not built at \(Self.binary); run `swift build` first")
        }
        if terminal {
            let quoted = arguments.map { "'\($0)'" }.joined(separator: " ")
            self = try Self.shell("script -qfec '\"$OACTL\" \(quoted)' /dev/null", socket: socket, environment: environment)
            return
        }
        try self.init(executable: Self.binary, arguments: arguments, socket: socket, environment: environment)
    }

    private init(executable: String, arguments: [String], socket: String?, environment: [String: String]) throws {
        self = try Running(executable: executable, arguments: arguments, socket: socket, environment: environment).finish()
    }

    /// A run still going, for commands that must overlap with others. Starting one does not block,
    /// so the test's task never holds a thread the agent's own tasks need.
    struct Running {
        private let process = Process()
        private let output = Pipe()
        private let errors = Pipe()

        fileprivate init(executable: String, arguments: [String], socket: String?, environment: [String: String]) throws {
            self.process.executableURL = URL(fileURLWithPath: executable)
            self.process.arguments = arguments
            var variables = ["PATH": "/usr/local/bin:/usr/bin:/bin", "OACTL": OactlRun.binary, "HOME": NSHomeDirectory()]
            if let socket { variables["OPENALGO_AGENT_SOCKET"] = socket }
            for (key, value) in environment { variables[key] = value }
            self.process.environment = variables
            self.process.standardOutput = self.output
            self.process.standardError = self.errors
            try self.process.run()
        }

        /// Waits for the end and collects the output.
        func finish() -> OactlRun {
            let outputData = self.output.fileHandleForReading.readDataToEndOfFile()
            let errorData = self.errors.fileHandleForReading.readDataToEndOfFile()
            self.process.waitUntilExit()
            return OactlRun(
                status: self.process.terminationStatus,
                output: String(decoding: outputData, as: UTF8.self),
                errors: String(decoding: errorData, as: UTF8.self)
            )
        }
    }

    static func start(_ arguments: [String], socket: String?) throws -> Running {
        try Running(executable: Self.binary, arguments: arguments, socket: socket, environment: [:])
    }

    private init(status: Int32, output: String, errors: String) {
        self.status = status
        self.output = output
        self.errors = errors
    }

    /// Runs a bash line with `$OACTL` set to the binary.
    static func shell(_ line: String, socket: String?, environment: [String: String] = [:]) throws -> OactlRun {
        try OactlRun(executable: "/bin/bash", arguments: ["-c", line], socket: socket, environment: environment)
    }
}

/// A Unix socket that accepts connections into its backlog and never says anything.
struct SilentListener {
    private let descriptor: Int32

    init(path: String) throws {
        self.descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(self.descriptor, 8) == 0 else { throw IPCClientError.protocolViolation("cannot listen on \(path)") }
    }

    func close() {
        _ = Glibc.close(self.descriptor)
    }
}
