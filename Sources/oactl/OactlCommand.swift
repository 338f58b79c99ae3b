import ArgumentParser
import LocalIPC
import MarketData
import OactlSupport
import WireJSON

#if canImport(Glibc)
import Glibc
#endif

@main
struct OactlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oactl",
        abstract: "Control openalgo-agent and stream its market data from the shell.",
        discussion: """
            oactl talks to a running openalgo-agent over its local JSON-RPC socket \
            ($XDG_RUNTIME_DIR/openalgo/agent.sock unless --socket or OPENALGO_AGENT_SOCKET says otherwise). \
            Symbols are written EXCHANGE:SYMBOL, e.g. NSE:RELIANCE, NSE_INDEX:NIFTY, NFO:NIFTY28DEC2425000CE.

            Output is a table on a terminal and JSON (one object per line) when piped or with --json.

            Exit status: 0 ok, 1 the agent answered with an error, 64 usage error, 69 agent not running, \
            75 timeout, 77 permission refused, 130 interrupted.
            """,
        version: "0.3.0",
        subcommands: [
            Status.self, Subscribe.self, Unsubscribe.self, Connect.self, Disconnect.self, Clients.self, Subscriptions.self,
            Metrics.self, APIKey.self, Reload.self, Call.self, Events.self, Record.self,
        ]
    )

    /// The same options before the command name (`oactl --socket PATH status`).
    @OptionGroup var options: GlobalOptions
}

/// A command that talks to the agent: it takes the global options before or after its name.
protocol AgentCommand: ParsableCommand {
    var localOptions: GlobalOptions { get }
    var root: OactlCommand { get }
}

extension AgentCommand {
    /// The options given after the command name, completed by those given before it.
    var options: GlobalOptions { self.localOptions.merged(with: self.root.options) }
}

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp("The agent's socket (default $OPENALGO_AGENT_SOCKET, then $XDG_RUNTIME_DIR/openalgo/agent.sock).", valueName: "path"),
        completion: .file()
    )
    var socket: String?

    @Flag(help: "Print JSON (one object per line) instead of tables.")
    var json = false

    @Option(help: ArgumentHelp("How long to wait for the agent's answers, e.g. 5s, 500ms (default 5s).", valueName: "duration"))
    var timeout: String?

    func timeoutDuration() throws -> Duration {
        do {
            return try DurationArgument.parse(self.timeout ?? "5s")
        } catch {
            throw ValidationError("--timeout: \(error)")
        }
    }

    /// These options, completed by those given before the command name.
    func merged(with outer: GlobalOptions) -> GlobalOptions {
        var merged = self
        merged.socket = self.socket ?? outer.socket
        merged.json = self.json || outer.json
        merged.timeout = self.timeout ?? outer.timeout
        return merged
    }

    /// Connects, runs `body`, and turns failures into the documented exit statuses.
    func withClient<Result>(_ body: (IPCClient) throws -> Result) throws -> Result {
        let path = IPCSocketPath.resolve(explicit: self.socket, environment: ProcessEnvironment.current())
        do {
            let client = try IPCClient(path: path, timeout: try self.timeoutDuration())
            defer { client.close() }
            return try body(client)
        } catch let error as IPCClientError {
            let (status, message) = ExitStatus.of(error)
            Output.error("oactl: \(message)")
            throw ExitCode(status)
        }
    }

    /// Calls `method` and prints its result: one JSON line when JSON is wanted, else what `table` makes of it.
    func show(_ method: IPCMethod, params: JSONObject = JSONObject(), table: (JSONValue) throws -> Void) throws {
        let result = try self.withClient { try $0.call(method.rawValue, params: params) }
        if self.wantsJSON {
            Output.line(result.compactJSONText)
        } else {
            try table(result)
        }
    }

    /// Whether to print JSON: asked for, or stdout is not a terminal.
    var wantsJSON: Bool { self.json || isatty(STDOUT_FILENO) == 0 }
}

func instruments(_ texts: [String]) throws -> [Instrument] {
    do {
        return try texts.map { text throws(CommandLineValueError) in try InstrumentArgument.parse(text) }
    } catch {
        throw ValidationError("invalid symbol: \(error)")
    }
}

extension Instrument {
    var json: JSONValue { .object(["symbol": .string(self.symbol), "exchange": .string(self.exchange)]) }
}

// MARK: Commands

struct Status: AgentCommand {
    static let configuration = CommandConfiguration(abstract: "Show the agent, its feed, clients and subscriptions.")

    @OptionGroup var localOptions: GlobalOptions
    @ParentCommand var root: OactlCommand

    func run() throws {
        try self.options.show(.status) { status in self.printTable(status) }
    }

    private func printTable(_ status: JSONValue) {
        let object = status.objectValue ?? JSONObject()
        let path = IPCSocketPath.resolve(explicit: self.options.socket, environment: ProcessEnvironment.current())
        var feed = "\(object["broker"]?.stringValue ?? "?"): \(object["state"]?.stringValue ?? "?")"
        if let reason = object["reason"]?.stringValue { feed += " (\(reason))" }
        if let attempt = object["reconnect_attempt"]?.intValue, attempt > 0 { feed += ", attempt \(attempt)" }
        if let age = object["last_tick_age_ms"]?.intValue { feed += ", last tick \(Format.age(milliseconds: age)) ago" }
        let clients = object["clients"]?.objectValue
        var rows: [[String]] = [
            [
                "Agent",
                "\(object["agent"]?.stringValue ?? "?"), pid \(object["pid"]?.intValue ?? 0), up \(Format.age(milliseconds: (object["uptime_s"]?.intValue ?? 0) * 1000))",
            ],
            ["Feed", feed],
            ["Clients", "\(clients?["websocket"]?.intValue ?? 0) WebSocket, \(clients?["ipc"]?.intValue ?? 0) local"],
            ["Instruments", "\(object["subscriptions_count"]?.intValue ?? 0) streamed, \(object["subscriptions"]?.intValue ?? 0) subscriptions"],
        ]
        if let service = object["service"]?.objectValue {
            var line = service["sockets"] == "systemd" ? "systemd (socket activation)" : "own sockets"
            if let watchdog = service["watchdog_ms"]?.intValue { line += ", watchdog \(Format.age(milliseconds: watchdog))" }
            rows.append(["Service", line])
        }
        if let pending = object["requires_restart"]?.arrayValue, !pending.isEmpty {
            rows.append(["Restart", "needed for " + pending.compactMap(\.stringValue).joined(separator: ", ")])
        }
        if let replay = object["replay"]?.objectValue { rows.append(["Replay", Self.replayText(replay)]) }
        for recording in object["recordings"]?.arrayValue ?? [] {
            let entry = recording.objectValue ?? JSONObject()
            rows.append([
                "Recording",
                "\(entry["id"]?.stringValue ?? "?"): \(entry["symbols"]?.arrayValue?.count ?? 0) symbols (\(entry["mode"]?.stringValue ?? "?")), \(entry["records"]?.intValue ?? 0) ticks to \(entry["file"]?.stringValue ?? "?")",
            ])
        }
        rows.append(["Socket", path])
        Output.table(rows)
    }

    /// `record 1200 of 5000 (09:15:02.120Z), speed 10, loop 1, playing`.
    private static func replayText(_ replay: JSONObject) -> String {
        var text = "record \(replay["record"]?.intValue ?? 0) of \(replay["records"]?.intValue.map(String.init) ?? "?")"
        if let recordedAt = replay["recorded_at"]?.stringValue { text += " (recorded \(recordedAt))" }
        text += ", speed \(replay["speed"]?.stringValue ?? "?")"
        if replay["loop"]?.boolValue == true { text += ", loops done \(replay["loops_completed"]?.intValue ?? 0)" }
        text += ", \(replay["state"]?.stringValue ?? "?")"
        if let error = replay["error"]?.stringValue { text += ": \(error)" }
        return text
    }
}

struct Subscribe: AgentCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream market data: a live table on a terminal, JSON lines when piped.",
        discussion: """
            Prints the latest known tick of each symbol first, then every update. Stops after --count \
            messages or --duration, on Ctrl-C (exit 130), or quietly when the reader of a pipe goes away. \
            Symbols may also be given as the official openalgo CLI's `stream` takes them: --symbols \
            NSE:RELIANCE,NSE:SBIN, bare symbols with --exchange, or --symbol with --exchange.

            Examples:
              oactl subscribe NSE:RELIANCE NSE:TCS --mode Quote
              oactl subscribe NSE_INDEX:NIFTY --mode LTP --json | jq .data.ltp
              oactl subscribe NSE:INFY --mode Depth --count 5
              oactl subscribe --symbols RELIANCE,SBIN --exchange NSE --duration 30s
            """
    )

    @OptionGroup var localOptions: GlobalOptions
    @ParentCommand var root: OactlCommand

    @OptionGroup var selection: MarketDataSelection

    @Option(help: "Stop after this many market_data messages (0: no limit).")
    var count: Int?

    @Option(help: ArgumentHelp("Stop after this long, e.g. 30s, 2m (0: until Ctrl-C).", valueName: "duration"))
    var duration: String?

    @Flag(help: "Print every message from the agent (replies and status events too) as JSON lines.")
    var raw = false

    func validate() throws {
        try self.selection.check()
        if let count, count < 0 { throw ValidationError("--count must be 0 (no limit) or more") }
        try DurationArgument.validateDurationOption(self.duration)
    }

    func run() throws {
        let instruments = try self.selection.instruments()
        let mode = try self.selection.subscriptionMode()
        let stopAfter = try self.duration.map { try DurationArgument.parse($0) }.flatMap { $0 == .zero ? nil : $0 }
        let limit = self.count.flatMap { $0 == 0 ? nil : $0 }
        let json = self.raw || self.options.wantsJSON
        try self.options.withClient { client in
            Stream.prepareSignals()
            let params: JSONObject = [
                "symbols": .array(instruments.map(\.json)), "mode": .string(mode.label), "depth": .int(self.selection.depth),
            ]
            let reply = try client.call(IPCMethod.wsSubscribe.rawValue, params: params)
            if self.raw { Output.line(RPCReply.result(id: .integer(1), reply).compactJSONText) }
            let entries = reply.objectValue?["subscriptions"]?.arrayValue ?? []
            var accepted = 0
            for entry in entries {
                let object = entry.objectValue
                if object?["status"]?.stringValue == "success" {
                    accepted += 1
                } else {
                    Output.error(
                        "oactl: \(object?["exchange"]?.stringValue ?? "?"):\(object?["symbol"]?.stringValue ?? "?"): \(object?["message"]?.stringValue ?? "refused")"
                    )
                }
            }
            guard accepted > 0 else { throw ExitCode(ExitStatus.agentError) }
            var view: LiveTable? = json ? nil : LiveTable(board: TickBoard(instruments: instruments, depthLevels: self.selection.depth))
            let outcome = try Stream.run(client: client, duration: stopAfter) { message in
                switch message {
                case .event(let method, let params) where method == IPCEvent.marketData.rawValue:
                    if self.raw {
                        Output.line(RPCReply.notification(.marketData, params).compactJSONText)
                    } else if json {
                        Output.line(params.compactJSONText)
                    } else {
                        view?.update(params)
                    }
                    return true
                case .event(let method, let params):
                    if self.raw { Output.line(IPCMessage.event(method: method, params: params).lineJSON.compactJSONText) }
                    if method == IPCEvent.closing.rawValue {
                        Output.error("oactl: the agent closed the stream: \(params.objectValue?["message"]?.stringValue ?? "")")
                    }
                    return false
                case .reply:
                    if self.raw { Output.line(message.lineJSON.compactJSONText) }
                    return false
                }
            } tick: {
                view?.redrawIfDue()
            } stopAt: { delivered in
                limit.map { delivered >= $0 } ?? false
            }
            view?.finish()
            try outcome.exit()
        }
    }
}

struct Unsubscribe: AgentCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop streaming symbols to local clients (all of them, or the one given with --client).",
        discussion: """
            Each oactl subscribe has its own connection and stops its stream when it exits; this command \
            is for the others: it removes subscriptions held by local clients (or by one client, local or \
            WebSocket, named by its id from `oactl clients`).
            """
    )

    @OptionGroup var localOptions: GlobalOptions
    @ParentCommand var root: OactlCommand

    @Argument(help: ArgumentHelp("Symbols as EXCHANGE:SYMBOL.", valueName: "symbol"))
    var symbols: [String] = []

    @Option(help: "Only this mode (LTP, Quote or Depth); default every mode.")
    var mode: String?

    @Flag(help: "Every subscription of the targeted clients.")
    var all = false

    @Option(help: ArgumentHelp("The client to act on, as `oactl clients` lists it (e.g. client-7).", valueName: "id"))
    var client: String?

    func validate() throws {
        guard self.all != !self.symbols.isEmpty else { throw ValidationError("give symbols or --all (not both)") }
        _ = try instruments(self.symbols)
        if let mode {
            do {
                _ = try ModeArgument.parse(mode)
            } catch {
                throw ValidationError("--mode: \(error)")
            }
        }
    }

    func run() throws {
        var params: JSONObject = ["client": .string(self.client ?? "ipc")]
        if self.all {
            params["all"] = true
        } else {
            params["symbols"] = .array(try instruments(self.symbols).map(\.json))
            if let mode { params["mode"] = .string(try ModeArgument.parse(mode).label) }
        }
        try self.options.show(.wsUnsubscribe, params: params) { result in try Self.printOutcome(result) }
    }

    private static func printOutcome(_ result: JSONValue) throws {
        let object = result.objectValue
        for entry in object?["successful"]?.arrayValue ?? [] {
            let item = entry.objectValue
            Output.line("unsubscribed \(Format.instrument(entry)) \(item?["mode"]?.stringValue ?? "") (\(item?["client"]?.stringValue ?? ""))")
        }
        for entry in object?["failed"]?.arrayValue ?? [] {
            Output.error("oactl: \(Format.instrument(entry)): \(entry.objectValue?["message"]?.stringValue ?? "failed")")
        }
        if (object?["successful"]?.arrayValue ?? []).isEmpty { throw ExitCode(ExitStatus.agentError) }
    }
}

struct Connect: AgentCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connect the broker feed (or switch it to another broker) for every client.",
        discussion: """
            Examples:
              oactl connect                 # reconnect the configured broker
              oactl connect simulator
              oactl connect zerodha --credential access_token=...
            """
    )

    @OptionGroup var localOptions: GlobalOptions
    @ParentCommand var root: OactlCommand

    @Argument(help: "The broker (default: the configured one).")
    var broker: String?

    @Option(name: .customLong("credential"), help: ArgumentHelp("A credential field, KEY=VALUE; repeatable.", valueName: "key=value"))
    var credentials: [String] = []

    func validate() throws {
        for credential in self.credentials where !credential.contains("=") || credential.hasPrefix("=") {
            throw ValidationError("--credential '\(credential)' is not KEY=VALUE")
        }
    }

    func run() throws {
        var params = JSONObject()
        if let broker { params["broker"] = .string(broker) }
        if !self.credentials.isEmpty {
            var fields = JSONObject()
            for credential in self.credentials {
                let equals = credential.firstIndex(of: "=")!
                fields[String(credential[..<equals])] = .string(String(credential[credential.index(after: equals)...]))
            }
            params["credentials"] = .object(fields)
        }
        let status = try self.options.withClient { client in
            client.timeout = max(client.timeout ?? .seconds(60), .seconds(60))
            return try client.call(IPCMethod.wsConnect.rawValue, params: params)
        }
        Output.status(status, json: self.options.wantsJSON)
    }
}

struct Disconnect: AgentCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop the broker feed for every client; subscriptions resume on the next connect."
    )

    @OptionGroup var localOptions: GlobalOptions
    @ParentCommand var root: OactlCommand

    func run() throws {
        let status = try self.options.withClient { try $0.call(IPCMethod.wsDisconnect.rawValue) }
        Output.status(status, json: self.options.wantsJSON)
    }
}

struct Clients: AgentCommand {
    static let configuration = CommandConfiguration(abstract: "List WebSocket and local clients.")

    @OptionGroup var localOptions: GlobalOptions
    @ParentCommand var root: OactlCommand

    func run() throws {
        try self.options.show(.clients) { result in Self.printTable(result) }
    }

    private static func printTable(_ result: JSONValue) {
        var rows = [["ID", "KIND", "PEER", "NAME", "CONNECTED", "SUBSCRIPTIONS", "QUEUED", "DROPPED"]]
        for entry in result.objectValue?["clients"]?.arrayValue ?? [] {
            let client = entry.objectValue ?? JSONObject()
            let subscriptions = client["subscriptions"]?.arrayValue ?? []
            let connected = Double(client["connected_at"]?.intValue ?? 0)
            rows.append([
                client["id"]?.stringValue ?? "?",
                client["kind"]?.stringValue ?? "?",
                client["peer"]?.stringValue ?? "?",
                client["name"]?.stringValue ?? "-",
                Format.age(milliseconds: Int(Format.nowMilliseconds() - connected)) + " ago",
                String(subscriptions.count),
                String(client["queued_bytes"]?.intValue ?? 0),
                String(client["dropped"]?.intValue ?? 0),
            ])
        }
        Output.table(rows, header: true)
    }
}

struct Subscriptions: AgentCommand {
    static let configuration = CommandConfiguration(abstract: "List what the feed streams, with subscriber counts per mode.")

    @OptionGroup var localOptions: GlobalOptions
    @ParentCommand var root: OactlCommand

    func run() throws {
        try self.options.show(.subscriptions) { result in Self.printTable(result) }
    }

    private static func printTable(_ result: JSONValue) {
        var rows = [["SYMBOL", "FEED MODE", "LTP", "QUOTE", "DEPTH"]]
        for entry in result.objectValue?["agent"]?.arrayValue ?? [] {
            let object = entry.objectValue ?? JSONObject()
            let counts = object["subscribers"]?.objectValue
            rows.append([
                Format.instrument(entry),
                object["mode"]?.stringValue ?? "?",
                String(counts?["LTP"]?.intValue ?? 0),
                String(counts?["Quote"]?.intValue ?? 0),
                String(counts?["Depth"]?.intValue ?? 0),
            ])
        }
        if rows.count == 1 {
            Output.line("No subscriptions.")
            return
        }
        Output.table(rows, header: true)
    }
}

struct Metrics: AgentCommand {
    static let configuration = CommandConfiguration(abstract: "Show counters: ticks in, frames out, drops, reconnects, feed latency.")

    @OptionGroup var localOptions: GlobalOptions
    @ParentCommand var root: OactlCommand

    func run() throws {
        try self.options.show(.metrics) { result in Self.printTable(result) }
    }

    private static func printTable(_ result: JSONValue) {
        var rows: [[String]] = []
        func add(_ prefix: String, _ object: JSONObject) {
            for entry in object.entries {
                if let nested = entry.value.objectValue {
                    add(prefix + entry.key + ".", nested)
                } else {
                    rows.append([prefix + entry.key, entry.value.compactJSONText])
                }
            }
        }
        add("", result.objectValue ?? JSONObject())
        Output.table(rows)
    }
}

struct APIKey: AgentCommand {
    static let configuration = CommandConfiguration(
        commandName: "api-key",
        abstract: "Print the API key WebSocket clients authenticate with.",
        discussion: "With --rotate, a new key replaces it and clients that authenticated with the old one are disconnected."
    )

    @OptionGroup var localOptions: GlobalOptions
    @ParentCommand var root: OactlCommand

    @Flag(help: "Replace the key with a new random one.")
    var rotate = false

    func run() throws {
        let result = try self.options.withClient { try $0.call(IPCMethod.apiKey.rawValue, params: ["rotate": .bool(self.rotate)]) }
        if self.options.json {
            Output.line(result.compactJSONText)
        } else {
            Output.line(result.objectValue?["api_key"]?.stringValue ?? "")
        }
    }
}

struct Reload: AgentCommand {
    static let configuration = CommandConfiguration(abstract: "Re-read the agent's configuration (like SIGHUP).")

    @OptionGroup var localOptions: GlobalOptions
    @ParentCommand var root: OactlCommand

    func run() throws {
        try self.options.show(.reload) { result in Self.printSummary(result) }
    }

    private static func printSummary(_ result: JSONValue) {
        let object = result.objectValue
        let applied = (object?["applied"]?.arrayValue ?? []).compactMap(\.stringValue)
        let restart = (object?["requires_restart"]?.arrayValue ?? []).compactMap(\.stringValue)
        Output.line("reloaded \(object?["file"]?.stringValue ?? "(no configuration file)")")
        Output.line("applied: \(applied.isEmpty ? "nothing changed" : applied.joined(separator: ", "))")
        if !restart.isEmpty { Output.line("needs a restart: \(restart.joined(separator: ", "))") }
    }
}

struct Call: AgentCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send one JSON-RPC request and print its result (as JSON).",
        discussion: """
            Examples:
              oactl call status
              oactl call ws_subscribe '{"symbols":[{"symbol":"RELIANCE","exchange":"NSE"}],"mode":"LTP"}'
            """
    )

    @OptionGroup var localOptions: GlobalOptions
    @ParentCommand var root: OactlCommand

    @Argument(help: "The method, e.g. status.", completion: .list(IPCMethod.allCases.map(\.rawValue)))
    var method: String

    @Argument(help: "The params, as a JSON object.")
    var params: String?

    func validate() throws {
        _ = try self.parsedParams()
    }

    private func parsedParams() throws -> JSONObject {
        guard let params else { return JSONObject() }
        guard let object = (try? JSONParser.parse(params))?.objectValue else {
            throw ValidationError("params must be a JSON object, e.g. '{\"rotate\":false}'")
        }
        return object
    }

    func run() throws {
        let params = try self.parsedParams()
        let result = try self.options.withClient { try $0.call(self.method, params: params) }
        Output.line(result.compactJSONText)
    }
}

struct Events: AgentCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the agent's events (feed status, subscription changes, order updates) as JSON lines.",
        discussion: "Add --market-data to include the market data of subscriptions made with --symbol."
    )

    @OptionGroup var localOptions: GlobalOptions
    @ParentCommand var root: OactlCommand

    @Option(
        name: .customLong("event"),
        help: "An event to receive: ws_connection_status, ws_subscription_update, order_update (default all); repeatable.",
        completion: .list(IPCEvent.optional.map(\.rawValue))
    )
    var events: [String] = []

    @Option(help: "Stop after this many events.")
    var count: Int?

    @Option(help: ArgumentHelp("Stop after this long, e.g. 30s.", valueName: "duration"))
    var duration: String?

    func validate() throws {
        for event in self.events where !IPCEvent.optional.map(\.rawValue).contains(event) {
            throw ValidationError("--event '\(event)' is not one of \(IPCEvent.optional.map(\.rawValue).joined(separator: ", "))")
        }
        try DurationArgument.validateDurationOption(self.duration)
    }

    func run() throws {
        let names = self.events.isEmpty ? IPCEvent.optional.map(\.rawValue) : self.events
        let stopAfter = try self.duration.map { try DurationArgument.parse($0) }
        try self.options.withClient { client in
            Stream.prepareSignals()
            try client.call(IPCMethod.eventsSubscribe.rawValue, params: ["events": .array(names.map { .string($0) })])
            let outcome = try Stream.run(client: client, duration: stopAfter) { message in
                guard case .event = message else { return false }
                Output.line(message.lineJSON.compactJSONText)
                return true
            } tick: {
            } stopAt: { delivered in
                self.count.map { delivered >= $0 } ?? false
            }
            try outcome.exit()
        }
    }
}

extension DurationArgument {
    /// Checks a `--duration` value in `validate()`, so that a bad one is a usage error (exit 64)
    /// before anything connects.
    static func validateDurationOption(_ text: String?) throws {
        guard let text else { return }
        do {
            _ = try DurationArgument.parse(text)
        } catch {
            throw ValidationError("--duration: \(error)")
        }
    }
}
