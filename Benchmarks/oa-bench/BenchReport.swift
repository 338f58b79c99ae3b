import BenchmarkSupport
import Histogram

/// The outcome of one run against one server: what was asked, what arrived, what it cost the server.
struct BenchResult: Sendable {
    /// What happened to the clients that stopped reading.
    struct StallOutcome: Sendable {
        var stalled: Int
        var closed: Int
        /// Longest time from a stalled client's last read to its connection closing, when all closed.
        var closedAfterSeconds: Double?
    }

    /// RSS of the server without clients and with them connected and authenticated.
    struct IdleMemory: Sendable {
        var baseBytes: Int
        var withClientsBytes: Int
        var clients: Int

        var kibPerClient: Double {
            Double(self.withClientsBytes - self.baseBytes) / 1024 / Double(max(1, self.clients))
        }
    }

    var caseName: String
    var kind: BenchCase.Kind
    var server: String
    var clients: Int
    var symbolsPerClient: Int
    var universe: Int
    var mode: BenchMode
    var stalled: Int
    /// Ticks per second published on the bus (or, for an outside feed, per symbol × universe).
    var tickRate: Double?
    var loops: Int
    var commit: String?
    /// The measured window in seconds (0 for `connect` and `idle-memory`).
    var seconds: Double
    var ticksInWindow: Int?
    var expected: Int?
    var snapshot: LoopRecorder.Snapshot
    /// Server CPU time over ``cpuWindowSeconds``: the measured window, or the connect phase of `connect`.
    var cpuSeconds: Double?
    var cpuWindowSeconds = 0.0
    var residentBytes: Int?
    var residentRange: ResidentMemoryRange?
    /// oa-bench's own CPU time over the window (clients and injector together): near 100 % of each
    /// core it may use, the generator, not the server, limits the rate and the latency.
    var generatorCPUSeconds: Double?
    var connectSeconds: Double
    var stall: StallOutcome?
    var idleMemory: IdleMemory?

    var delivered: UInt64 { self.snapshot.delivered }
    var ratio: Double? {
        guard let expected, expected > 0 else { return nil }
        return Double(self.delivered) / Double(expected)
    }
    var deliveredPerSecond: Double? { self.seconds > 0 ? Double(self.delivered) / self.seconds : nil }
    var expectedPerSecond: Double? { self.expected.flatMap { self.seconds > 0 ? Double($0) / self.seconds : nil } }
    var cpuPercent: Double? { self.cpuSeconds.flatMap { self.cpuWindowSeconds > 0 ? $0 / self.cpuWindowSeconds * 100 : nil } }
    var generatorCPUPercent: Double? { self.generatorCPUSeconds.flatMap { self.seconds > 0 ? $0 / self.seconds * 100 : nil } }
    var cpuMicrosecondsPerFrame: Double? {
        guard let cpuSeconds, self.delivered > 0 else { return nil }
        return cpuSeconds * 1e6 / Double(self.delivered)
    }
    /// Reading clients that were closed while the run went on.
    var closedReaders: Int { self.snapshot.clients.filter { !$0.stalled && $0.closedAt != nil }.count }
    var hasLatency: Bool { self.snapshot.latency.totalCount > 0 }

    /// Latency percentile in milliseconds (recorded in microseconds).
    func latencyMilliseconds(_ percentile: Double) -> Double {
        Double(self.snapshot.latency.valueAtPercentile(percentile)) / 1000
    }

    var maxLatencyMilliseconds: Double { Double(self.snapshot.latency.max) / 1000 }

    /// The lowest share of its expected frames that any reading client received.
    var minimumClientRatio: Double?

    var jsonLine: String {
        var json = JSONLine()
        json.add("case", self.caseName)
        json.add("server", self.server)
        json.add("clients", self.clients)
        json.add("symbols_per_client", self.symbolsPerClient)
        json.add("universe", self.universe)
        json.add("mode", self.kind == .stream ? self.mode.rawValue : nil)
        json.add("stalled_clients", self.stalled)
        json.add("tick_rate", self.tickRate, digits: 0)
        json.add("loops", self.loops)
        json.add("seconds", self.seconds, digits: 2)
        json.add("ticks_in_window", self.ticksInWindow)
        json.add("expected", self.expected)
        json.add("delivered", Int(self.delivered))
        json.add("ratio", self.ratio, digits: 4)
        json.add("min_client_ratio", self.minimumClientRatio, digits: 4)
        json.add("expected_per_second", self.expectedPerSecond, digits: 0)
        json.add("delivered_per_second", self.deliveredPerSecond, digits: 0)
        if self.hasLatency {
            for (key, percentile) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9)] {
                json.add("latency_ms_\(key)", self.latencyMilliseconds(percentile), digits: 3)
            }
            json.add("latency_ms_max", self.maxLatencyMilliseconds, digits: 3)
        }
        json.add("server_cpu_seconds", self.cpuSeconds, digits: 3)
        json.add("server_cpu_percent", self.cpuPercent, digits: 1)
        json.add("server_cpu_us_per_frame", self.cpuMicrosecondsPerFrame, digits: 2)
        json.add("server_rss_mib", self.residentBytes.map { Double($0) / 1_048_576 }, digits: 1)
        if let range = self.residentRange, range.samples > 0 {
            json.add("server_rss_min_mib", Double(range.minimumBytes) / 1_048_576, digits: 1)
            json.add("server_rss_max_mib", Double(range.maximumBytes) / 1_048_576, digits: 1)
        }
        json.add("generator_cpu_percent", self.generatorCPUPercent, digits: 1)
        json.add("connect_seconds", self.connectSeconds, digits: 3)
        json.add("connect_clients_per_second", self.connectSeconds > 0 ? Double(self.clients) / self.connectSeconds : nil, digits: 0)
        json.add("closed_clients", self.closedReaders)
        if let stall {
            json.add("stalled_closed", stall.closed)
            json.add("stalled_closed_after_s", stall.closedAfterSeconds, digits: 1)
        }
        if let idleMemory {
            json.add("idle_rss_base_mib", Double(idleMemory.baseBytes) / 1_048_576, digits: 2)
            json.add("idle_rss_clients_mib", Double(idleMemory.withClientsBytes) / 1_048_576, digits: 2)
            json.add("idle_kib_per_client", idleMemory.kibPerClient, digits: 2)
        }
        json.add("commit", self.commit)
        return json.text
    }

    /// The table's header and one row per server.
    static func table(_ results: [BenchResult]) -> String {
        guard let first = results.first else { return "" }
        let load: String
        switch first.kind {
        case .stream:
            load =
                "\(first.clients) clients (\(first.stalled) stalled) × \(first.symbolsPerClient) \(first.mode.rawValue) symbols of \(first.universe), "
                + "\(first.tickRate.map { format($0, 0) } ?? "?") ticks/s in, \(format(first.seconds, 1)) s"
        case .connect: load = "\(first.clients) clients connect and authenticate"
        case .idleMemory: load = "\(first.clients) idle authenticated clients"
        }
        var lines = ["case \(first.caseName): \(load), \(first.loops) client loops"]
        let header = [
            "server", "delivered/s", "expected/s", "ratio", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "CPU %", "µs/frame", "RSS MiB",
            "connect s",
        ]
        var rows = [header]
        for result in results {
            let latency: [String] =
                result.hasLatency
                ? [50, 90, 99, 99.9].map { format(result.latencyMilliseconds($0), 3) } + [format(result.maxLatencyMilliseconds, 3)]
                : Array(repeating: "-", count: 5)
            rows.append(
                [
                    result.server, result.deliveredPerSecond.map { format($0, 0) } ?? "-", result.expectedPerSecond.map { format($0, 0) } ?? "-",
                    result.ratio.map { format($0, 4) } ?? "-",
                ] + latency + [
                    result.cpuPercent.map { format($0, 1) } ?? "-", result.cpuMicrosecondsPerFrame.map { format($0, 2) } ?? "-",
                    result.residentBytes.map { format(Double($0) / 1_048_576, 1) } ?? "-", format(result.connectSeconds, 3),
                ]
            )
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            lines.append("  " + row.indices.map { row[$0].padding(to: widths[$0]) }.joined(separator: "  "))
        }
        for result in results {
            var notes: [String] = []
            if result.connectSeconds > 0 {
                notes.append("\(format(Double(result.clients) / result.connectSeconds, 0)) clients/s connected")
            }
            if let generator = result.generatorCPUPercent { notes.append("generator CPU \(format(generator, 1)) %") }
            if result.closedReaders > 0 { notes.append("\(result.closedReaders) reading clients closed") }
            if let ratio = result.minimumClientRatio { notes.append("lowest client ratio \(format(ratio, 4))") }
            if let range = result.residentRange, range.samples > 0 {
                notes.append(
                    "RSS \(format(Double(range.minimumBytes) / 1_048_576, 1))–\(format(Double(range.maximumBytes) / 1_048_576, 1)) MiB over \(range.samples) samples"
                )
            }
            if let stall = result.stall {
                let after = stall.closedAfterSeconds.map { ", \(format($0, 1)) s after it stopped reading" } ?? ""
                notes.append("stalled: \(stall.closed) of \(stall.stalled) closed\(after)")
            }
            if let idle = result.idleMemory {
                notes.append(
                    "idle RSS \(format(Double(idle.baseBytes) / 1_048_576, 2)) MiB → \(format(Double(idle.withClientsBytes) / 1_048_576, 2)) MiB "
                        + "with \(idle.clients) clients: \(format(idle.kibPerClient, 2)) KiB per client"
                )
            }
            if !notes.isEmpty { lines.append("  \(result.server): " + notes.joined(separator: "; ")) }
        }
        return lines.joined(separator: "\n")
    }
}

/// One JSON object on one line, fields in the order added; `nil` values are written as `null`.
struct JSONLine {
    private var fields: [String] = []

    mutating func add(_ key: String, _ value: String?) {
        self.fields.append("\"\(key)\": " + (value.map { "\"" + Self.escape($0) + "\"" } ?? "null"))
    }

    mutating func add(_ key: String, _ value: Int?) {
        self.fields.append("\"\(key)\": " + (value.map(String.init) ?? "null"))
    }

    mutating func add(_ key: String, _ value: Double?, digits: Int) {
        self.fields.append("\"\(key)\": " + (value.map { format($0, digits) } ?? "null"))
    }

    var text: String {
        "{" + self.fields.joined(separator: ", ") + "}"
    }

    private static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text.unicodeScalars {
            switch character {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            default:
                if character.value < 0x20 {
                    escaped += "\\u00" + (character.value < 0x10 ? "0" : "") + String(character.value, radix: 16)
                } else {
                    escaped.unicodeScalars.append(character)
                }
            }
        }
        return escaped
    }
}

extension String {
    func padding(to width: Int) -> String {
        self.count >= width ? self : self + String(repeating: " ", count: width - self.count)
    }
}

/// `value` with `decimals` digits after the point (`null` when not finite, for the JSON line).
func format(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return "null" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    if decimals == 0 { return String(Int64(rounded)) }
    let negative = rounded < 0
    let magnitude = abs(rounded)
    let whole = Int64(magnitude)
    let fraction = Int64(((magnitude - Double(whole)) * scale).rounded())
    let fractionText = String(fraction)
    let padded = String(repeating: "0", count: max(0, decimals - fractionText.count)) + fractionText
    return (negative ? "-" : "") + String(whole) + "." + padded
}
