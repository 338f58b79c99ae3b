import ArgumentParser
import BenchmarkSupport
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

extension BenchMode: ExpressibleByArgument {}

/// Whether the injector's PUB socket listens or connects.
enum ZeroMQRole: String, EnumerableFlag {
    case zmqBind
    case zmqConnect

    static func help(for value: ZeroMQRole) -> ArgumentHelp? {
        switch value {
        case .zmqBind: return "The injector's PUB socket binds --zmq-endpoint and the servers' SUB sockets connect."
        case .zmqConnect: return "The injector's PUB socket connects to --zmq-endpoint, where a server's SUB socket listens."
        }
    }
}

/// Where the ticks come from.
enum InjectionKind: String, ExpressibleByArgument {
    /// oa-bench publishes them on the ZeroMQ bus.
    case zmq
    /// The server's own feed (the agent's simulator, a recording); nothing is injected.
    case none
}

/// A WebSocket load generator for openalgo-agent and OpenAlgo's Python streaming server: clients on
/// several event loops authenticate, subscribe and count what they receive, while a tick injector
/// publishes on the ZeroMQ bus both servers take ticks from, so either can be driven identically.
@main
struct OABench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oa-bench",
        abstract: "Measure frames delivered, latency, CPU per frame and memory of an OpenAlgo WebSocket server.",
        discussion: """
            Cases (--case): light, heavy, ltp-wide, depth, stall, connect, idle-memory; options given \
            with a case override its values. Benchmarks/run-cases.sh starts the agent for each run.

            With --inject zmq (the default for a named streaming case) oa-bench publishes ticks on the \
            ZeroMQ bus in OpenAlgo's adapter format, data.timestamp being the send time in epoch \
            nanoseconds; run the agent with --broker zmq and OPENALGO_BROKER_ZMQ_SOCKET_MODE=connect \
            to the same endpoint. A frame counts when the tick it carries was sent inside the \
            measured window; expected frames are the ticks sent in the window times the reading \
            subscribers of each symbol. Latency is receive time minus data.timestamp (s, ms, µs or \
            ns, told apart by magnitude).

            Pin the server and the generator to different cores for stable numbers, e.g.
              taskset -c 0 openalgo-agent ... &   taskset -c 1 oa-bench --pid $! ...
            """
    )

    @Option(name: .customLong("case"), help: "A named case: light, heavy, ltp-wide, depth, stall, connect, idle-memory.")
    var caseName: String?
    @Option(help: "Case name written into the result (default: the --case name, or 'custom').") var name: String?
    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 8765
    @Option(name: .customLong("api-key"), help: "API key (default: $OPENALGO_API_KEY).") var apiKey: String?
    @Option(help: "Server process id, to read its CPU time and RSS from /proc.") var pid: Int32?
    @Option(help: "The server's name in the results.") var label = "primary"
    @Option(name: .customLong("compare-port"), help: "A second server (same host) to run the same load against at the same time.")
    var comparePort: Int?
    @Option(name: .customLong("compare-pid"), help: "The second server's process id.") var comparePid: Int32?
    @Option(name: .customLong("compare-api-key"), help: "The second server's API key (default: the first's).") var compareApiKey: String?
    @Option(name: .customLong("compare-label"), help: "The second server's name in the results.") var compareLabel = "compare"
    @Option(help: "Number of clients (per server).") var clients: Int?
    @Option(help: "Symbols each client subscribes to.") var symbols: Int?
    @Option(help: "Distinct symbols (clients take consecutive windows of --symbols of them; default: --symbols).") var universe: Int?
    @Option(help: "Subscription mode: ltp, quote or depth.") var mode: BenchMode?
    @Option(help: "Of the clients, this many stop reading once subscribed (slow consumers); they are not measured.") var stalled: Int?
    @Option(help: "Where ticks come from: zmq (published by oa-bench) or none (the server's own feed).") var inject: InjectionKind?
    @Option(name: .customLong("tick-rate"), help: "Ticks per second the injector publishes, round-robin over the universe.")
    var tickRate: Double?
    @Option(name: .customLong("zmq-endpoint"), help: "The ZeroMQ bus endpoint of the injector.") var zmqEndpoint = "tcp://127.0.0.1:5555"
    @Flag var zmqRole = ZeroMQRole.zmqBind
    @Option(help: "Event loops (threads) the clients are spread over (default: the machine's cores).") var loops: Int?
    @Option(name: .customLong("connect-concurrency"), help: "Clients connecting at once.") var connectConcurrency = 64
    @Option(help: "Seconds to let the feed settle before measuring (idle-memory: before reading RSS with clients).") var warmup = 3.0
    @Option(help: "Seconds to measure (default: the case's, else 10).") var duration: Double?
    @Option(help: "Seconds to wait after the window for frames of its ticks still on the way.") var drain = 2.0
    @Option(name: .customLong("feed-rate"), help: "Without injection: ticks per second per symbol of the server's own feed, for the expected frames.")
    var feedRate: Double?
    @Option(help: "Git commit written into the result.") var commit: String?
    @Option(
        name: .customLong("ipc-socket"),
        help: "Connect the clients to the agent's local JSON-RPC socket at this path instead of the WebSocket port."
    )
    var ipcSocket: String?
    @Flag(help: "Print only the JSON lines.") var json = false

    func run() async throws {
        let plan = try self.plan()
        FileDescriptorLimit.raise()
        let results = try await BenchRun(plan: plan).run()
        for result in results { print(result.jsonLine) }
        if !self.json { print(BenchResult.table(results)) }
        if plan.kind == .stream, let empty = results.first(where: { $0.delivered == 0 }) {
            printError("oa-bench: \(empty.server) delivered no market data in the measured window")
            throw ExitCode.failure
        }
    }

    /// The run the options describe: the case's values, overridden by explicit options.
    private func plan() throws -> BenchPlan {
        let preset: BenchCase?
        if let caseName {
            guard let named = BenchCase.named(caseName) else {
                throw ValidationError("unknown case '\(caseName)'; cases: \(BenchCase.all.map(\.name).joined(separator: ", "))")
            }
            preset = named
        } else {
            preset = nil
        }
        let kind = preset?.kind ?? .stream
        let inject = self.inject ?? (preset != nil && kind == .stream ? .zmq : .none)
        let clients = self.clients ?? preset?.clients ?? 100
        let symbols = self.symbols ?? preset?.symbolsPerClient ?? 10
        guard clients > 0, symbols >= 0, kind != .stream || symbols > 0 else { throw ValidationError("--clients and --symbols must be positive") }
        let layout = SubscriptionLayout(
            clients: clients,
            symbolsPerClient: symbols,
            universe: self.universe ?? symbols,
            stalled: self.stalled ?? preset?.stalled ?? 0
        )
        let tickRate = self.tickRate ?? preset?.tickRate
        if inject == .zmq {
            guard let tickRate, tickRate > 0 else { throw ValidationError("--inject zmq needs a --tick-rate above 0") }
        }
        guard self.ipcSocket == nil || kind == .stream else { throw ValidationError("--ipc-socket serves streaming cases only") }
        var servers: [ServerEndpoint] = []
        if let ipcSocket {
            servers.append(ServerEndpoint(label: self.label, transport: .localSocket(path: ipcSocket), pid: self.pid))
        } else {
            guard let key = self.apiKey ?? environment("OPENALGO_API_KEY") else {
                throw ValidationError("no API key: pass --api-key or set OPENALGO_API_KEY")
            }
            servers.append(ServerEndpoint(label: self.label, transport: .webSocket(host: self.host, port: self.port, apiKey: key), pid: self.pid))
            if let comparePort {
                let compareKey = self.compareApiKey ?? key
                servers.append(
                    ServerEndpoint(
                        label: self.compareLabel,
                        transport: .webSocket(host: self.host, port: comparePort, apiKey: compareKey),
                        pid: self.comparePid
                    )
                )
            }
        }
        if kind == .idleMemory, servers.contains(where: { $0.pid == nil }) {
            throw ValidationError("idle-memory reads the server's RSS: pass --pid (and --compare-pid)")
        }
        let loops = max(1, self.loops ?? System.coreCount)
        return BenchPlan(
            name: self.name ?? preset?.name ?? "custom",
            kind: kind,
            layout: layout,
            mode: self.mode ?? preset?.mode ?? .quote,
            injection: inject == .zmq
                ? BenchPlan.Injection(
                    endpoint: self.zmqEndpoint,
                    role: self.zmqRole == .zmqBind ? .bind : .connect,
                    schedule: InjectionSchedule(ticksPerSecond: tickRate!, universe: layout.universe)
                ) : nil,
            feedRate: self.feedRate,
            servers: servers,
            loops: loops,
            connectConcurrency: max(1, self.connectConcurrency),
            warmup: self.warmup,
            duration: self.duration ?? (preset.map { $0.duration > 0 ? $0.duration : 10 } ?? 10),
            drain: self.drain,
            commit: self.commit
        )
    }
}

func environment(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}

func printError(_ message: String) {
    let bytes = Array((message + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
}

/// Lets oa-bench hold thousands of connections (two servers × 1000 clients) under a soft
/// `ulimit -n` of 1024: the soft limit is raised to the hard one.
enum FileDescriptorLimit {
    static func raise() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
