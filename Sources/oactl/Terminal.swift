import ArgumentParser
import LocalIPC
import OactlSupport
import WireJSON

#if canImport(Glibc)
import Glibc
#endif

/// Writing to stdout and stderr, line by line, and leaving quietly when the reader of a pipe
/// goes away (`oactl subscribe ... | head -3`).
enum Output {
    static func line(_ text: String) {
        self.write(text + "\n", to: STDOUT_FILENO)
    }

    static func raw(_ text: String) {
        self.write(text, to: STDOUT_FILENO)
    }

    static func error(_ text: String) {
        self.write(text + "\n", to: STDERR_FILENO)
    }

    /// Writes all of `text` unbuffered, so each line reaches a pipe at once.
    private static func write(_ text: String, to descriptor: Int32) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                // EPIPE: whoever read the output has stopped (`| head -3`): a normal end, not an error.
                exit(ExitStatus.success)
            }
            bytes = bytes.dropFirst(written)
        }
    }

    /// Aligned columns; with `header`, the first row is the heading.
    static func table(_ rows: [[String]], header: Bool = false) {
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        let bold = header && Terminal.colorEnabled
        for (rowIndex, row) in rows.enumerated() {
            var line = ""
            for (index, cell) in row.enumerated() {
                if index > 0 { line += "  " }
                line += cell + (index == row.count - 1 ? "" : String(repeating: " ", count: widths[index] - cell.count))
            }
            Output.line(bold && rowIndex == 0 ? "\u{1B}[1m" + line + "\u{1B}[0m" : line)
        }
    }

    static func status(_ status: JSONValue, json: Bool) {
        if json {
            self.line(status.compactJSONText)
            return
        }
        let object = status.objectValue
        var text = "\(object?["broker"]?.stringValue ?? "?"): \(object?["state"]?.stringValue ?? "?")"
        if let reason = object?["reason"]?.stringValue { text += " (\(reason))" }
        self.line(text)
    }
}

enum Format {
    static func age(milliseconds: Int) -> String {
        if milliseconds < 1000 { return "\(max(0, milliseconds)) ms" }
        let seconds = milliseconds / 1000
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m \(seconds % 60)s" }
        if seconds < 86_400 { return "\(seconds / 3600)h \(seconds / 60 % 60)m" }
        return "\(seconds / 86_400)d \(seconds / 3600 % 24)h"
    }

    static func instrument(_ value: JSONValue) -> String {
        let object = value.objectValue
        return "\(object?["exchange"]?.stringValue ?? "?"):\(object?["symbol"]?.stringValue ?? "?")"
    }

    static func nowMilliseconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) * 1000 + Double(now.tv_nsec) / 1_000_000
    }
}

enum Terminal {
    /// Colours only on a terminal, when `NO_COLOR` is unset and the terminal is not dumb.
    static var colorEnabled: Bool {
        guard isatty(STDOUT_FILENO) != 0 else { return false }
        if let noColor = getenv("NO_COLOR"), noColor.pointee != 0 { return false }
        if let term = getenv("TERM"), String(cString: term) == "dumb" { return false }
        return true
    }
}

/// Set by SIGINT; the stream loops look at it between reads.
nonisolated(unsafe) private var interruptRequested: sig_atomic_t = 0

/// The read loop shared by `subscribe` and `events`.
enum Stream {
    enum Outcome {
        case finished
        case interrupted
        case agentClosed

        func exit() throws {
            switch self {
            case .finished: return
            case .interrupted: throw ExitCode(ExitStatus.interrupted)
            case .agentClosed:
                Output.error("oactl: the agent closed the connection")
                throw ExitCode(ExitStatus.unavailable)
            }
        }
    }

    /// Ctrl-C ends the stream with status 130; a closed pipe ends it quietly.
    static func prepareSignals() {
        signal(SIGPIPE, SIG_IGN)
        signal(SIGINT) { _ in interruptRequested = 1 }
        // A parent may have started us with SIGINT blocked (the mask survives exec); Ctrl-C must work.
        var interrupt = sigset_t()
        sigemptyset(&interrupt)
        sigaddset(&interrupt, SIGINT)
        sigprocmask(SIG_UNBLOCK, &interrupt, nil)
    }

    private enum Read {
        case message(IPCMessage)
        case nothingYet
        case closed
    }

    private static func read(_ client: IPCClient) throws(IPCClientError) -> Read {
        do {
            guard let message = try client.nextMessage(timeout: .milliseconds(100)) else { return .closed }
            return .message(message)
        } catch {
            guard error.isTimeout else { throw error }
            return .nothingYet
        }
    }

    /// Reads messages until `stopAt` says so, `duration` passes, Ctrl-C, or the agent closes.
    ///
    /// - Parameters:
    ///   - handle: called per message; returns whether it counts towards `stopAt`.
    ///   - tick: called at least ten times a second, for redraws.
    static func run(
        client: IPCClient,
        duration: Duration?,
        handle: (IPCMessage) throws -> Bool,
        tick: () -> Void,
        stopAt: (Int) -> Bool
    ) throws -> Outcome {
        let deadline = duration.map { ContinuousClock.now + $0 }
        var delivered = 0
        while true {
            if interruptRequested != 0 { return .interrupted }
            if let deadline, ContinuousClock.now >= deadline { return .finished }
            let read = try self.read(client)
            guard case .message(let message) = read else {
                if case .closed = read { return .agentClosed }
                tick()
                continue
            }
            if try handle(message) {
                delivered += 1
                if stopAt(delivered) {
                    tick()
                    return .finished
                }
            }
            tick()
        }
    }
}

/// The live table of `oactl subscribe` on a terminal, redrawn in place at most ten times a second.
struct LiveTable {
    var board: TickBoard
    private var drawnLines = 0
    private var dirty = true
    private var lastDraw = ContinuousClock.now - .seconds(1)
    private var updates = 0
    private let color = Terminal.colorEnabled

    init(board: TickBoard) {
        self.board = board
        Output.raw("\u{1B}[?25l")
    }

    mutating func update(_ envelope: JSONValue) {
        if self.board.update(with: envelope) {
            self.updates += 1
            self.dirty = true
        }
    }

    mutating func redrawIfDue() {
        guard self.dirty, ContinuousClock.now - self.lastDraw >= .milliseconds(100) else { return }
        self.draw()
    }

    mutating func finish() {
        self.draw()
        Output.raw("\u{1B}[?25h")
    }

    private mutating func draw() {
        var lines = self.board.render(color: self.color)
        lines.append("")
        lines.append("\(self.updates) updates · Ctrl-C to stop")
        var text = self.drawnLines > 0 ? "\u{1B}[\(self.drawnLines)F\u{1B}[J" : ""
        text += lines.joined(separator: "\n") + "\n"
        Output.raw(text)
        self.drawnLines = lines.count
        self.dirty = false
        self.lastDraw = ContinuousClock.now
    }
}
