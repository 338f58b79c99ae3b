import BenchmarkSupport

/// The benchmark cases of issue 7, by their stable names. A case presets the load; options given
/// on the command line override any of its values.
struct BenchCase: Sendable {
    enum Kind: Sendable {
        /// Clients subscribe and receive injected ticks for a measured window.
        case stream
        /// Time for the clients to connect, upgrade and authenticate.
        case connect
        /// The server's RSS without clients, then with the clients connected and authenticated.
        case idleMemory
    }

    let name: String
    let kind: Kind
    let clients: Int
    let symbolsPerClient: Int
    let mode: BenchMode
    /// Total ticks per second the injector publishes, spread over the symbols.
    let tickRate: Double
    let stalled: Int
    /// The default measured window; `stall` needs one longer than the server's 10 s unwritable deadline.
    let duration: Double

    static let all: [BenchCase] = [
        // 100 ticks/s over 10 symbols to 100 clients: 10 000 frames/s.
        BenchCase(name: "light", kind: .stream, clients: 100, symbolsPerClient: 10, mode: .quote, tickRate: 100, stalled: 0, duration: 10),
        // 800 ticks/s: 80 000 frames/s.
        BenchCase(name: "heavy", kind: .stream, clients: 100, symbolsPerClient: 10, mode: .quote, tickRate: 800, stalled: 0, duration: 10),
        // 1000 clients on 10 LTP symbols at 10 ticks/s each: 100 000 frames/s, one frame per client per tick.
        BenchCase(name: "ltp-wide", kind: .stream, clients: 1000, symbolsPerClient: 10, mode: .ltp, tickRate: 100, stalled: 0, duration: 10),
        // 50 clients on 20 Depth symbols at 10 ticks/s each: 10 000 larger frames/s.
        BenchCase(name: "depth", kind: .stream, clients: 50, symbolsPerClient: 20, mode: .depth, tickRate: 200, stalled: 0, duration: 10),
        // 19 readers on 20 Depth symbols at 50 ticks/s each (19 000 frames/s), and 1 client that stops reading.
        BenchCase(name: "stall", kind: .stream, clients: 20, symbolsPerClient: 20, mode: .depth, tickRate: 1000, stalled: 1, duration: 20),
        BenchCase(name: "connect", kind: .connect, clients: 1000, symbolsPerClient: 0, mode: .quote, tickRate: 0, stalled: 0, duration: 0),
        BenchCase(name: "idle-memory", kind: .idleMemory, clients: 1000, symbolsPerClient: 0, mode: .quote, tickRate: 0, stalled: 0, duration: 0),
    ]

    static func named(_ name: String) -> BenchCase? {
        self.all.first { $0.name == name }
    }
}
