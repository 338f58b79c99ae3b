import BenchmarkSupport
import Histogram

/// What one benchmark client saw; owned by its event loop's ``LoopRecorder``.
final class ClientRecord {
    let index: Int
    /// Stops reading once subscribed; its frames are neither expected nor counted.
    let stalled: Bool
    /// Market data frames sent inside the measured window that this client received.
    var deliveredInWindow = 0
    /// Market data frames received at all, so the warmup can tell that ticks are flowing.
    var framesReceived = 0
    /// When it stopped reading (monotonic nanoseconds).
    var stalledAt: Int64?
    /// When its connection closed (monotonic nanoseconds).
    var closedAt: Int64?
    /// The close code the server sent, when a close frame was read.
    var closeCode: Int?

    init(index: Int, stalled: Bool) {
        self.index = index
        self.stalled = stalled
    }
}

/// The counters and latency histogram of the clients of one server on one event loop. Confined to
/// that loop, so the receive path takes no lock; the loops' snapshots are merged at the end.
final class LoopRecorder {
    /// The measured window, in the epoch nanoseconds of the ticks' timestamps: a frame counts when
    /// the tick it carries was sent inside it, wherever it is received.
    private var window: Range<Int64>?
    private var delivered: UInt64 = 0
    private var bytes: UInt64 = 0
    private var latency = LoopRecorder.emptyHistogram()
    private(set) var clients: [ClientRecord] = []

    /// Latencies in microseconds, up to ten minutes, at three significant digits.
    static func emptyHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    }

    func add(_ client: ClientRecord) {
        self.clients.append(client)
    }

    func measure(window: Range<Int64>) {
        self.window = window
        self.delivered = 0
        self.bytes = 0
        self.latency.reset()
        for client in self.clients { client.deliveredInWindow = 0 }
    }

    /// One `market_data` frame with `timestamp` (any unit) received now by `client`.
    func record(timestamp: Int64, bytes: Int, client: ClientRecord) {
        client.framesReceived += 1
        guard let window = self.window else { return }
        let sent = EpochTimestamp.nanoseconds(from: timestamp)
        guard window.contains(sent) else { return }
        let received = WallClock.nanoseconds()
        self.delivered += 1
        self.bytes += UInt64(bytes)
        client.deliveredInWindow += 1
        _ = self.latency.record(UInt64(max(0, received - sent) / 1_000))
    }

    func snapshot() -> Snapshot {
        Snapshot(
            delivered: self.delivered,
            bytes: self.bytes,
            latency: self.latency,
            clients: self.clients.map {
                Snapshot.Client(
                    index: $0.index,
                    stalled: $0.stalled,
                    delivered: $0.deliveredInWindow,
                    framesReceived: $0.framesReceived,
                    stalledAt: $0.stalledAt,
                    closedAt: $0.closedAt
                )
            }
        )
    }

    struct Snapshot: Sendable {
        struct Client: Sendable {
            var index: Int
            var stalled: Bool
            var delivered: Int
            var framesReceived: Int
            var stalledAt: Int64?
            var closedAt: Int64?
        }

        var delivered: UInt64
        var bytes: UInt64
        var latency: Histogram<UInt64>
        var clients: [Client]

        static let empty = Snapshot(delivered: 0, bytes: 0, latency: LoopRecorder.emptyHistogram(), clients: [])

        /// The loops' snapshots as one.
        mutating func merge(_ other: Snapshot) {
            self.delivered += other.delivered
            self.bytes += other.bytes
            self.latency.add(other.latency)
            self.clients += other.clients
        }
    }
}
