#if canImport(Glibc)
import Glibc
#endif

/// CPU time and resident memory of a process, from /proc.
struct ProcessSample: Sendable {
    /// utime + stime, in seconds.
    var cpuSeconds: Double
    /// VmRSS, in bytes.
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

/// The smallest and largest RSS of a process over a window, sampled about once a second, so a
/// result can show whether memory stayed flat (a stalled client must not make it grow).
struct ResidentMemoryRange: Sendable {
    var minimumBytes = Int.max
    var maximumBytes = 0
    var samples = 0

    mutating func add(_ sample: ProcessSample) {
        self.minimumBytes = min(self.minimumBytes, sample.residentBytes)
        self.maximumBytes = max(self.maximumBytes, sample.residentBytes)
        self.samples += 1
    }
}
