import ArgumentParser
import LocalIPC
import MarketData
import OactlSupport
import WireJSON

#if canImport(Glibc)
import Glibc
#endif

struct Record: AgentCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record every tick of some symbols to a day-rotated JSON-lines file.",
        discussion: """
            The agent writes the file: every tick it receives for the symbols, with its receive time, \
            one JSON object per line (see docs/recording-format.md), flushed at least once a second. \
            --output ticks.jsonl writes ticks-YYYY-MM-DD.jsonl (the UTC day), a new file each day. \
            The recording stops after --duration, on Ctrl-C (exit 0), or when oactl exits for any \
            reason; with --keep it runs on in the agent until `oactl record --stop ID` or the agent stops. \
            Symbols are given as for `oactl subscribe`. Play a recording with \
            `openalgo-agent serve --replay FILE --speed 10`.

            Examples:
              oactl record NSE:RELIANCE NFO:NIFTY28DEC2425000CE --mode Depth --output ticks.jsonl
              oactl record --symbols RELIANCE,SBIN --exchange NSE --output /data/ticks.jsonl --duration 6h
              oactl record NSE_INDEX:NIFTY --mode LTP --output nifty.jsonl --keep
              oactl record --stop rec-2
            """
    )

    @OptionGroup var localOptions: GlobalOptions
    @ParentCommand var root: OactlCommand

    @OptionGroup var selection: MarketDataSelection

    @Option(
        help: ArgumentHelp("The file to write; the UTC date goes before the extension (ticks-2026-11-27.jsonl).", valueName: "file"),
        completion: .file()
    )
    var output: String?

    @Option(help: ArgumentHelp("Stop after this long, e.g. 30s, 6h (default: until Ctrl-C).", valueName: "duration"))
    var duration: String?

    @Flag(help: "Leave the recording running in the agent and exit at once, printing its id.")
    var keep = false

    @Option(help: ArgumentHelp("Stop a recording left running with --keep (its id, e.g. rec-2).", valueName: "id"))
    var stop: String?

    func validate() throws {
        if self.stop != nil {
            guard self.selection.namesNoSymbol, self.output == nil else {
                throw ValidationError("--stop takes only the recording's id")
            }
            return
        }
        try self.selection.check()
        guard self.output != nil else { throw ValidationError("--output FILE is required") }
        try DurationArgument.validateDurationOption(self.duration)
    }

    func run() throws {
        if let stop {
            let summary = try self.options.withClient { try $0.call(IPCMethod.recordStop.rawValue, params: ["id": .string(stop)]) }
            self.printSummary(summary)
            return
        }
        let params: JSONObject = [
            "symbols": .array(try self.selection.instruments().map(\.json)),
            "mode": .string(try self.selection.subscriptionMode().label),
            "depth": .int(self.selection.depth),
            "output": .string(Self.absolute(self.output ?? "")),
            "keep": .bool(self.keep),
        ]
        let stopAfter = try self.duration.map { try DurationArgument.parse($0) }.flatMap { $0 == .zero ? nil : $0 }
        try self.options.withClient { client in
            Stream.prepareSignals()
            let started = try client.call(IPCMethod.recordStart.rawValue, params: params)
            let object = started.objectValue
            let id = object?["id"]?.stringValue ?? "?"
            var accepted = 0
            for entry in object?["subscriptions"]?.arrayValue ?? [] {
                if entry.objectValue?["status"]?.stringValue == "success" {
                    accepted += 1
                } else {
                    Output.error("oactl: \(Format.instrument(entry)): \(entry.objectValue?["message"]?.stringValue ?? "refused")")
                }
            }
            let file = object?["file"]?.stringValue ?? "?"
            guard accepted > 0 else {
                _ = try? client.call(IPCMethod.recordStop.rawValue, params: ["id": .string(id)])
                throw ExitCode(ExitStatus.agentError)
            }
            if self.keep {
                Output.line(self.options.wantsJSON ? started.compactJSONText : "\(id): recording \(accepted) symbols to \(file)")
                return
            }
            if !self.options.wantsJSON {
                Output.line("\(id): recording \(accepted) symbols (\(self.selection.mode)) to \(file); Ctrl-C stops")
            }
            var progress = RecordingProgressLine(id: id, live: !self.options.wantsJSON)
            let outcome = try Stream.run(client: client, duration: stopAfter) { message in
                if case .reply(_, .success(let status)) = message { progress.update(from: status) }
                return false
            } tick: {
                if progress.due() { try? client.send(RPCRequest(id: .string("progress"), method: IPCMethod.status.rawValue).json) }
            } stopAt: { _ in
                false
            }
            progress.finish()
            if case .agentClosed = outcome { try outcome.exit() }
            let summary = try client.call(IPCMethod.recordStop.rawValue, params: ["id": .string(id)])
            self.printSummary(summary)
        }
    }

    private func printSummary(_ summary: JSONValue) {
        if self.options.wantsJSON {
            Output.line(summary.compactJSONText)
            return
        }
        let object = summary.objectValue
        let files = (object?["files"]?.arrayValue ?? []).compactMap(\.stringValue)
        Output.line(
            "\(object?["id"]?.stringValue ?? "?"): \(object?["records"]?.intValue ?? 0) ticks, \(object?["bytes"]?.intValue ?? 0) bytes in \(files.joined(separator: ", "))"
        )
    }

    /// A relative path made absolute: the agent runs elsewhere.
    private static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/"), let directory = getcwd(nil, 0) else { return path }
        defer { free(directory) }
        return String(cString: directory) + "/" + path
    }
}

/// The progress of `oactl record` on a terminal: ticks and bytes so far, redrawn once a second.
struct RecordingProgressLine {
    let id: String
    let live: Bool
    private var lastRequest = ContinuousClock.now
    private var drawn = false

    init(id: String, live: Bool) {
        self.id = id
        self.live = live
    }

    /// Whether a second has passed since the last progress request.
    mutating func due() -> Bool {
        guard self.live, ContinuousClock.now - self.lastRequest >= .seconds(1) else { return false }
        self.lastRequest = .now
        return true
    }

    mutating func update(from status: JSONValue) {
        guard self.live else { return }
        let recording = status.objectValue?["recordings"]?.arrayValue?.first { $0.objectValue?["id"]?.stringValue == self.id }
        guard let object = recording?.objectValue else { return }
        Output.raw("\r\u{1B}[K\(self.id): \(object["records"]?.intValue ?? 0) ticks, \((object["bytes"]?.intValue ?? 0) / 1024) KiB")
        self.drawn = true
    }

    func finish() {
        if self.drawn { Output.raw("\n") }
    }
}
