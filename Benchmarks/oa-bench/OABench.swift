import ArgumentParser
import Histogram
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

#if canImport(Glibc)
import Glibc
#endif

/// A WebSocket load generator for openalgo-agent (or any OpenAlgo-compatible server): many
/// clients on one event loop authenticate, subscribe, and count what they receive, with
/// latency from the frame's `data.timestamp` and the server's CPU and memory from /proc.
@main
struct OABench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oa-bench",
        abstract: "Measure delivered messages per second, latency, CPU per message and memory of an OpenAlgo WebSocket server.",
        discussion: """
            Pin the server and the generator to different cores for stable numbers, e.g.
              taskset -c 0 openalgo-agent &   taskset -c 1 oa-bench --pid $! ...
            Latency is receive time minus data.timestamp (epoch milliseconds set by the feed), so it
            has millisecond resolution and includes up to 1 ms of truncation.
            """
    )

    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 8765
    @Option(name: .customLong("api-key"), help: "API key (default: $OPENALGO_API_KEY).") var apiKey: String?
    @Option(help: "Server process id, to read its CPU time and RSS from /proc.") var pid: Int32?
    @Option(help: "Case name written into the result.") var name = "custom"
    @Option(help: "Number of WebSocket clients.") var clients = 100
    @Option(help: "Symbols each client subscribes to.") var symbols = 10
    @Option(help: "Distinct symbols (clients take consecutive windows of this many).") var universe: Int?
    @Option(help: "Subscription mode: ltp, quote or depth.") var mode = "quote"
    @Option(help: "Of the clients, this many stop reading once subscribed (slow consumers); they are not measured.")
    var stalled = 0
    @Option(help: "Seconds to let the feed settle before measuring.") var warmup = 3.0
    @Option(help: "Seconds to measure.") var duration = 10.0
    @Option(help: "Ticks per second per symbol the feed is running at, to report the expected rate.") var feedRate: Double?
    @Flag(help: "Print only the JSON line.") var json = false
    @Option(
        name: .customLong("ipc-socket"),
        help: "Connect the clients to the agent's local JSON-RPC socket at this path instead of the WebSocket port."
    )
    var ipcSocket: String?

    func run() async throws {
        guard let key = self.apiKey ?? getenv("OPENALGO_API_KEY").map({ String(cString: $0) }) ?? (self.ipcSocket != nil ? "" : nil)
        else {
            throw ValidationError("no API key: pass --api-key or set OPENALGO_API_KEY")
        }
        let modeNumber: Int
        switch self.mode.lowercased() {
        case "ltp": modeNumber = 1
        case "quote": modeNumber = 2
        case "depth": modeNumber = 3
        default: throw ValidationError("--mode must be ltp, quote or depth")
        }
        let universe = max(self.universe ?? self.symbols, self.symbols)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let stats = try await loop.submit { NIOLoopBound(BenchStats(), eventLoop: loop) }.get()

        let connectStart = NIODeadline.now()
        var channels: [any Channel] = []
        for index in 0..<self.clients {
            let names = (0..<self.symbols).map { "BENCH\((index + $0) % universe + 1)" }
            let symbolList = names.map { #"{"symbol": "\#($0)", "exchange": "NSE"}"# }.joined(separator: ", ")
            if let ipcSocket = self.ipcSocket {
                let request =
                    #"{"jsonrpc": "2.0", "id": 1, "method": "ws_subscribe", "params": {"mode": \#(modeNumber), "symbols": [\#(symbolList)]}}"#
                channels.append(
                    try await Self.connectLocal(group: group, path: ipcSocket, subscribe: request, stall: index < self.stalled, stats: stats)
                )
                continue
            }
            let subscribe = #"{"action": "subscribe", "mode": \#(modeNumber), "symbols": ["# + symbolList + "]}"
            channels.append(
                try await self.connect(group: group, key: key, subscribe: subscribe, stallAfterSubscribing: index < self.stalled, stats: stats)
            )
        }
        try await self.waitUntil(loop: loop, timeout: .seconds(60)) { stats.value.subscribed >= self.clients }
        let connectSeconds = Double((NIODeadline.now() - connectStart).nanoseconds) / 1e9

        try await Task.sleep(for: .milliseconds(Int(self.warmup * 1000)))
        let before = self.pid.flatMap(ProcessSample.read)
        try await loop.submit { stats.value.startMeasuring() }.get()
        let start = NIODeadline.now()
        try await Task.sleep(for: .milliseconds(Int(self.duration * 1000)))
        let snapshot = try await loop.submit { stats.value.stopMeasuring() }.get()
        let elapsed = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        let after = self.pid.flatMap(ProcessSample.read)

        let result = BenchResult(
            name: self.name,
            clients: self.clients,
            symbolsPerClient: self.symbols,
            mode: self.mode.lowercased(),
            stalled: self.stalled,
            seconds: elapsed,
            connectSeconds: connectSeconds,
            snapshot: snapshot,
            expectedPerSecond: self.feedRate.map { $0 * Double((self.clients - self.stalled) * self.symbols) },
            server: before.flatMap { before in after.map { ProcessDelta(before: before, after: $0) } }
        )
        print(result.jsonLine)
        if !self.json { print(result.table) }
        for channel in channels { channel.close(promise: nil) }
        try await group.shutdownGracefully()
    }

    private func waitUntil(loop: any EventLoop, timeout: TimeAmount, _ condition: @escaping @Sendable () -> Bool) async throws {
        let deadline = NIODeadline.now() + timeout
        while try await !loop.submit(condition).get() {
            guard NIODeadline.now() < deadline else { throw ValidationError("clients did not all subscribe within \(timeout)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    private static func connectLocal(
        group: MultiThreadedEventLoopGroup,
        path: String,
        subscribe: String,
        stall: Bool,
        stats: NIOLoopBound<BenchStats>
    ) async throws -> any Channel {
        let bootstrap = ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineSplitter()))
                    try channel.pipeline.syncOperations.addHandler(
                        LocalBenchClientHandler(subscribe: subscribe, stall: stall, stats: stats.value)
                    )
                }
            }
        return try await bootstrap.connect(unixDomainSocketPath: path).get()
    }

    private func connect(
        group: MultiThreadedEventLoopGroup,
        key: String,
        subscribe: String,
        stallAfterSubscribing: Bool,
        stats: NIOLoopBound<BenchStats>
    ) async throws
        -> any Channel
    {
        let host = self.host
        let port = self.port
        let bootstrap = ClientBootstrap(group: group)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let request = UpgradeRequestHandler(host: host, port: port)
                    let boundRequest = NIOLoopBound(request, eventLoop: channel.eventLoop)
                    let upgrader = NIOWebSocketClientUpgrader(
                        maxFrameSize: 1 << 24,
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(
                                    BenchClientHandler(key: key, subscribe: subscribe, stall: stallAfterSubscribing, stats: stats.value)
                                )
                            }
                        }
                    )
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        withClientUpgrade: (
                            upgraders: [upgrader],
                            completionHandler: { context in context.pipeline.syncOperations.removeHandler(boundRequest.value, promise: nil) }
                        )
                    )
                    try channel.pipeline.syncOperations.addHandler(request)
                }
            }
        return try await bootstrap.connect(host: host, port: port).get()
    }
}

/// Sends the HTTP upgrade request once connected.
final class UpgradeRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let host: String
    let port: Int

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "\(self.host):\(self.port)")
        headers.add(name: "Content-Length", value: "0")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: headers)
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// One benchmark client: authenticates, subscribes, answers pings, and counts market data.
final class BenchClientHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private static let marketDataPrefix = Array(#"{"type": "market_data""#.utf8)
    private static let timestampKey = Array(#""timestamp": "#.utf8)

    let key: String
    let subscribe: String
    /// Stop reading once subscribed, like a program that hangs.
    let stall: Bool
    let stats: BenchStats
    private var state = 0

    init(key: String, subscribe: String, stall: Bool, stats: BenchStats) {
        self.key = key
        self.subscribe = subscribe
        self.stall = stall
        self.stats = stats
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.send(#"{"action": "authenticate", "api_key": "\#(self.key)"}"#, context: context)
    }

    private func send(_ text: String, context: ChannelHandlerContext) {
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: context.channel.allocator.buffer(string: text))
        context.writeAndFlush(self.wrapOutboundOut(frame), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            let payload = frame.unmaskedData
            let timestamp: Int64? = payload.withUnsafeReadableBytes { bytes in
                guard bytes.starts(with: Self.marketDataPrefix) else { return nil }
                return Self.timestamp(in: bytes)
            }
            if let timestamp, !self.stall {
                self.stats.record(sentMilliseconds: timestamp, bytes: payload.readableBytes)
            } else if self.state == 0 {
                self.state = 1
                self.send(self.subscribe, context: context)
            } else if self.state == 1 {
                self.state = 2
                self.stats.subscribed += 1
                if self.stall {
                    context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
                }
            }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(self.wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            self.stats.closed += 1
            context.close(promise: nil)
        default:
            break
        }
    }

    /// The integer after the last `"timestamp": ` (the envelope's data has one; depth levels have none).
    static func timestamp(in bytes: UnsafeRawBufferPointer) -> Int64? {
        let key = Self.timestampKey
        guard bytes.count > key.count else { return nil }
        var index = 0
        while index + key.count < bytes.count {
            if bytes[index] == key[0] && bytes[index + 1] == key[1] && zip(key.indices, index...).allSatisfy({ bytes[$1] == key[$0] }) {
                var value: Int64 = 0
                var position = index + key.count
                while position < bytes.count, bytes[position] >= 48, bytes[position] <= 57 {
                    value = value * 10 + Int64(bytes[position] - 48)
                    position += 1
                }
                return value
            }
            index += 1
        }
        return nil
    }
}

/// Splits the local socket's stream into lines.
struct LineSplitter: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else { return .needMoreData }
        let line = buffer.readSlice(length: newline - buffer.readerIndex)!
        buffer.moveReaderIndex(forwardBy: 1)
        context.fireChannelRead(Self.wrapInboundOut(line))
        return .continue
    }
}

/// A local-socket client: subscribes after the greeting, then times every `market_data` event.
final class LocalBenchClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let marketDataPrefix = Array(#"{"jsonrpc":"2.0","method":"market_data""#.utf8)

    let subscribe: String
    /// Stop reading once subscribed, like a program that hangs.
    let stall: Bool
    let stats: BenchStats
    private var state = 0

    init(subscribe: String, stall: Bool, stats: BenchStats) {
        self.subscribe = subscribe
        self.stall = stall
        self.stats = stats
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = self.unwrapInboundIn(data)
        let timestamp: Int64? = line.withUnsafeReadableBytes { bytes in
            guard bytes.starts(with: Self.marketDataPrefix) else { return nil }
            return BenchClientHandler.timestamp(in: bytes)
        }
        if let timestamp {
            if !self.stall { self.stats.record(sentMilliseconds: timestamp, bytes: line.readableBytes + 1) }
        } else if self.state == 0 {
            self.state = 1
            context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(string: self.subscribe + "\n")), promise: nil)
        } else if self.state == 1, line.readableBytesView.starts(with: Array(#"{"jsonrpc":"2.0","id":1,"#.utf8)) {
            self.state = 2
            self.stats.subscribed += 1
            if self.stall {
                context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.stats.closed += 1
    }
}

/// Counters and the latency histogram of all clients, confined to the generator's one event loop.
final class BenchStats {
    struct Snapshot: Sendable {
        var messages: UInt64
        var bytes: UInt64
        var closed: Int
        var latency: Histogram<UInt64>
    }

    var subscribed = 0
    var closed = 0
    private var measuring = false
    private var messages: UInt64 = 0
    private var bytes: UInt64 = 0
    private var latency = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)

    func record(sentMilliseconds: Int64, bytes: Int) {
        guard self.measuring else { return }
        self.messages += 1
        self.bytes += UInt64(bytes)
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let nowMicroseconds = Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
        _ = self.latency.record(UInt64(max(0, nowMicroseconds - sentMilliseconds * 1000)))
    }

    func startMeasuring() {
        self.messages = 0
        self.bytes = 0
        self.latency.reset()
        self.closed = 0
        self.measuring = true
    }

    func stopMeasuring() -> Snapshot {
        self.measuring = false
        return Snapshot(messages: self.messages, bytes: self.bytes, closed: self.closed, latency: self.latency)
    }
}

/// CPU time and resident memory of a process, from /proc.
struct ProcessSample {
    var cpuSeconds: Double
    var residentBytes: Int

    static func read(pid: Int32) -> ProcessSample? {
        guard let stat = readText("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let status = readText("/proc/\(pid)/status") ?? ""
        let rssLine = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        let kilobytes = rssLine.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        return ProcessSample(cpuSeconds: (user + system) / ticks, residentBytes: kilobytes * 1024)
    }

    private static func readText(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

struct ProcessDelta {
    var cpuSeconds: Double
    var residentBytes: Int

    init(before: ProcessSample, after: ProcessSample) {
        self.cpuSeconds = after.cpuSeconds - before.cpuSeconds
        self.residentBytes = after.residentBytes
    }
}

struct BenchResult {
    var name: String
    var clients: Int
    var symbolsPerClient: Int
    var mode: String
    var stalled: Int
    var seconds: Double
    var connectSeconds: Double
    var snapshot: BenchStats.Snapshot
    var expectedPerSecond: Double?
    var server: ProcessDelta?

    var deliveredPerSecond: Double { Double(self.snapshot.messages) / self.seconds }
    var cpuMicrosecondsPerMessage: Double? {
        guard let server, self.snapshot.messages > 0 else { return nil }
        return server.cpuSeconds * 1e6 / Double(self.snapshot.messages)
    }

    func percentile(_ value: Double) -> Double {
        Double(self.snapshot.latency.valueAtPercentile(value)) / 1000
    }

    var jsonLine: String {
        var fields: [(String, String)] = [
            ("case", "\"\(self.name)\""), ("clients", "\(self.clients)"), ("symbols_per_client", "\(self.symbolsPerClient)"),
            ("mode", "\"\(self.mode)\""), ("stalled_clients", "\(self.stalled)"), ("seconds", format(self.seconds, 2)),
            ("messages", "\(self.snapshot.messages)"),
            ("delivered_per_second", format(self.deliveredPerSecond, 0)),
            ("latency_ms_p50", format(self.percentile(50), 2)), ("latency_ms_p99", format(self.percentile(99), 2)),
            ("latency_ms_p999", format(self.percentile(99.9), 2)), ("latency_ms_max", format(Double(self.snapshot.latency.max) / 1000, 2)),
            ("connect_seconds", format(self.connectSeconds, 2)), ("closed_clients", "\(self.snapshot.closed)"),
        ]
        if let expectedPerSecond { fields.append(("expected_per_second", format(expectedPerSecond, 0))) }
        if let server {
            fields.append(("server_cpu_seconds", format(server.cpuSeconds, 3)))
            fields.append(("server_cpu_percent", format(server.cpuSeconds / self.seconds * 100, 1)))
            fields.append(("server_rss_mib", format(Double(server.residentBytes) / 1_048_576, 1)))
        }
        if let cpu = self.cpuMicrosecondsPerMessage { fields.append(("server_cpu_us_per_message", format(cpu, 2))) }
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    var table: String {
        var lines = [
            "case \(self.name): \(self.clients) clients (\(self.stalled) stalled) x \(self.symbolsPerClient) \(self.mode) symbols, \(format(self.seconds, 1)) s",
            "  delivered        \(format(self.deliveredPerSecond, 0)) msg/s" + (self.expectedPerSecond.map { " (expected \(format($0, 0)))" } ?? ""),
            "  latency (ms)     p50 \(format(self.percentile(50), 2))  p99 \(format(self.percentile(99), 2))  p99.9 \(format(self.percentile(99.9), 2))  max \(format(Double(self.snapshot.latency.max) / 1000, 2))",
            "  connect+auth+sub \(format(self.connectSeconds, 2)) s for all clients",
        ]
        if let server {
            lines.append(
                "  server CPU       \(format(server.cpuSeconds / self.seconds * 100, 1)) % of a core, RSS \(format(Double(server.residentBytes) / 1_048_576, 1)) MiB"
            )
        }
        if let cpu = self.cpuMicrosecondsPerMessage { lines.append("  server CPU/msg   \(format(cpu, 2)) µs") }
        return lines.joined(separator: "\n")
    }
}

func format(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return "null" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    if decimals == 0 { return String(Int64(rounded)) }
    let text = String(rounded)
    let parts = text.split(separator: ".")
    let fraction = (parts.count > 1 ? String(parts[1]) : "").prefix(decimals)
    return String(parts[0]) + "." + fraction + String(repeating: "0", count: decimals - fraction.count)
}
