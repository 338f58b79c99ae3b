import BenchmarkSupport
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Everything one invocation does, resolved from the case and the options.
struct BenchPlan: Sendable {
    struct Injection: Sendable {
        var endpoint: String
        var role: TickInjector.SocketRole
        var schedule: InjectionSchedule
    }

    var name: String
    var kind: BenchCase.Kind
    var layout: SubscriptionLayout
    var mode: BenchMode
    /// `nil`: the servers' own feeds supply the ticks.
    var injection: Injection?
    /// Ticks per second per symbol of the servers' own feed, when known.
    var feedRate: Double?
    var servers: [ServerEndpoint]
    var loops: Int
    var connectConcurrency: Int
    var warmup: Double
    var duration: Double
    var drain: Double
    var commit: String?

    /// The tick rate written into the results.
    var tickRate: Double? {
        self.injection?.schedule.ticksPerSecond ?? self.feedRate.map { $0 * Double(self.layout.universe) }
    }
}

/// The clients of one server: their channels and, per event loop, their recorder.
private struct ServerClients {
    var endpoint: ServerEndpoint
    var recorders: [NIOLoopBound<LoopRecorder>]
    var channels: [any Channel] = []
    var connectSeconds = 0.0
}

/// Runs one plan: opens the clients, injects ticks, measures, and returns one result per server.
struct BenchRun {
    let plan: BenchPlan

    func run() async throws -> [BenchResult] {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: self.plan.loops)
        let loops = Array(group.makeIterator())
        var injector: TickInjector?
        do {
            var servers: [ServerClients] = []
            for endpoint in self.plan.servers {
                var recorders: [NIOLoopBound<LoopRecorder>] = []
                for loop in loops {
                    recorders.append(try await loop.submit { NIOLoopBound(LoopRecorder(), eventLoop: loop) }.get())
                }
                servers.append(ServerClients(endpoint: endpoint, recorders: recorders))
            }
            let results: [BenchResult]
            switch self.plan.kind {
            case .connect:
                results = try await self.runConnect(servers: &servers, loops: loops)
            case .idleMemory:
                results = try await self.runIdleMemory(servers: &servers, loops: loops)
            case .stream:
                if let injection = self.plan.injection {
                    let started = TickInjector(endpoint: injection.endpoint, role: injection.role, schedule: injection.schedule, mode: self.plan.mode)
                    try await started.start()
                    injector = started
                }
                results = try await self.runStream(servers: &servers, loops: loops, injector: injector)
            }
            for server in servers {
                for channel in server.channels { channel.close(promise: nil) }
            }
            try await injector?.stop()
            try await group.shutdownGracefully()
            return results
        } catch {
            try? await injector?.stop()
            try? await group.shutdownGracefully()
            throw error
        }
    }

    // MARK: Cases

    private func runConnect(servers: inout [ServerClients], loops: [any EventLoop]) async throws -> [BenchResult] {
        var results: [BenchResult] = []
        for index in servers.indices {
            let before = servers[index].endpoint.pid.flatMap(ProcessSample.read)
            try await self.connectClients(of: &servers[index], loops: loops, subscribe: false)
            let after = servers[index].endpoint.pid.flatMap(ProcessSample.read)
            var result = self.result(for: servers[index], snapshot: .empty, seconds: 0)
            if let before, let after {
                result.cpuSeconds = after.cpuSeconds - before.cpuSeconds
                result.cpuWindowSeconds = servers[index].connectSeconds
                result.residentBytes = after.residentBytes
            }
            results.append(result)
        }
        return results
    }

    private func runIdleMemory(servers: inout [ServerClients], loops: [any EventLoop]) async throws -> [BenchResult] {
        let base = servers.map { $0.endpoint.pid.flatMap(ProcessSample.read)?.residentBytes ?? 0 }
        for index in servers.indices {
            try await self.connectClients(of: &servers[index], loops: loops, subscribe: false)
        }
        try await Task.sleep(for: .milliseconds(Int(self.plan.warmup * 1000)))
        return servers.indices.map { index in
            let server = servers[index]
            let withClients = server.endpoint.pid.flatMap(ProcessSample.read)?.residentBytes ?? 0
            var result = self.result(for: server, snapshot: .empty, seconds: 0)
            result.residentBytes = withClients
            result.idleMemory = BenchResult.IdleMemory(baseBytes: base[index], withClientsBytes: withClients, clients: self.plan.layout.clients)
            return result
        }
    }

    private func runStream(servers: inout [ServerClients], loops: [any EventLoop], injector: TickInjector?) async throws -> [BenchResult] {
        for index in servers.indices {
            try await self.connectClients(of: &servers[index], loops: loops, subscribe: true)
        }
        try await self.waitForTicks(servers: servers, injector: injector)
        try await Task.sleep(for: .milliseconds(Int(self.plan.warmup * 1000)))

        // The window is set a little ahead, so every recorder and the injector know it before it opens.
        let start = WallClock.nanoseconds() + 50_000_000
        let window = start..<(start + Int64(self.plan.duration * 1e9))
        for server in servers {
            for recorder in server.recorders {
                try await recorder.eventLoop.submit { recorder.value.measure(window: window) }.get()
            }
        }
        injector?.measure(window: window)
        try await Self.sleep(untilWallClock: window.lowerBound)
        let before = servers.map { $0.endpoint.pid.flatMap(ProcessSample.read) }
        let generatorBefore = ProcessSample.read(pid: getpid())
        var memory = servers.map { _ in ResidentMemoryRange() }
        while WallClock.nanoseconds() < window.upperBound {
            try await Self.sleep(untilWallClock: min(window.upperBound, WallClock.nanoseconds() + 1_000_000_000))
            for index in servers.indices {
                if let sample = servers[index].endpoint.pid.flatMap(ProcessSample.read) { memory[index].add(sample) }
            }
        }
        let after = servers.map { $0.endpoint.pid.flatMap(ProcessSample.read) }
        let generatorAfter = ProcessSample.read(pid: getpid())

        let ticks = try await self.ticksPerSymbol(injector: injector, windowEnd: window.upperBound)
        let expected = ticks.map { self.plan.layout.expectedFrames(ticksPerSymbol: $0) }
        try await self.drain(servers: servers, expected: expected)

        var results: [BenchResult] = []
        for index in servers.indices {
            let server = servers[index]
            let snapshot = try await Self.snapshot(of: server)
            var result = self.result(for: server, snapshot: snapshot, seconds: Double(window.count) / 1e9)
            result.ticksInWindow = injector == nil ? nil : ticks?.reduce(0, +)
            result.expected = expected
            if let ticks { result.minimumClientRatio = self.minimumClientRatio(snapshot: snapshot, ticks: ticks) }
            if let before = before[index], let after = after[index] {
                result.cpuSeconds = after.cpuSeconds - before.cpuSeconds
                result.cpuWindowSeconds = result.seconds
                result.residentBytes = after.residentBytes
            }
            result.residentRange = memory[index]
            if let generatorBefore, let generatorAfter { result.generatorCPUSeconds = generatorAfter.cpuSeconds - generatorBefore.cpuSeconds }
            if self.plan.layout.stalled > 0 { result.stall = Self.stallOutcome(snapshot) }
            results.append(result)
        }
        if let failure = injector?.snapshot.failure { throw ClientFailure(description: "the tick injector failed: \(failure)") }
        return results
    }

    // MARK: Steps

    /// Opens every client of `server`, `connectConcurrency` at a time, spread round-robin over the loops.
    private func connectClients(of server: inout ServerClients, loops: [any EventLoop], subscribe: Bool) async throws {
        let connector = ClientConnector(endpoint: server.endpoint)
        let layout = self.plan.layout
        let mode = self.plan.mode
        let recorders = server.recorders
        let local: Bool
        if case .localSocket = server.endpoint.transport { local = true } else { local = false }
        let started = MonotonicClock.nanoseconds()
        var channels: [(any Channel)?] = Array(repeating: nil, count: layout.clients)
        try await withThrowingTaskGroup(of: (Int, any Channel).self) { group in
            var next = 0
            func add() {
                let index = next
                next += 1
                let request: String? =
                    subscribe
                    ? (local ? layout.localSubscribeRequest(ofClient: index, mode: mode) : layout.subscribeRequest(ofClient: index, mode: mode))
                    : nil
                let loop = loops[index % loops.count]
                let recorder = recorders[index % recorders.count]
                group.addTask {
                    let channel = try await connector.open(
                        index: index,
                        stalled: layout.isStalled(client: index),
                        subscribe: request,
                        loop: loop,
                        recorder: recorder
                    )
                    return (index, channel)
                }
            }
            while next < min(self.plan.connectConcurrency, layout.clients) { add() }
            while let (index, channel) = try await group.next() {
                channels[index] = channel
                if next < layout.clients { add() }
            }
        }
        server.channels = channels.compactMap { $0 }
        server.connectSeconds = Double(MonotonicClock.nanoseconds() - started) / 1e9
    }

    /// Waits until every reading client has received market data, so the window does not open
    /// while a ZeroMQ subscriber is still joining (messages published before it joined are lost)
    /// or subscriptions are still being set up.
    private func waitForTicks(servers: [ServerClients], injector: TickInjector?) async throws {
        let readers = self.plan.layout.clients - self.plan.layout.stalled
        let deadline = MonotonicClock.nanoseconds() + 15_000_000_000
        while true {
            var flowing: [Int] = []
            for server in servers {
                var count = 0
                for recorder in server.recorders {
                    count += try await recorder.eventLoop.submit { recorder.value.clients.filter { !$0.stalled && $0.framesReceived > 0 }.count }
                        .get()
                }
                flowing.append(count)
            }
            if flowing.allSatisfy({ $0 >= readers }) { return }
            if let failure = injector?.snapshot.failure { throw ClientFailure(description: "the tick injector failed: \(failure)") }
            if MonotonicClock.nanoseconds() > deadline {
                let detail = zip(servers, flowing).map { "\($0.endpoint.label) \($1) of \(readers)" }.joined(separator: ", ")
                guard flowing.allSatisfy({ $0 > 0 }) else {
                    let hint = self.plan.injection.map { " (is the server's zmq feed connected to \($0.endpoint)?)" } ?? ""
                    throw ClientFailure(description: "no market data reached the clients within 15 s\(hint): \(detail)")
                }
                printError("oa-bench: not every client receives market data after 15 s (\(detail)); measuring anyway")
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Ticks per symbol sent in the window: counted by the injector, or estimated from the feed rate.
    private func ticksPerSymbol(injector: TickInjector?, windowEnd: Int64) async throws -> [Int]? {
        if let injector { return try await injector.ledger(countedUntil: windowEnd).ticksInWindow }
        guard let feedRate = self.plan.feedRate else { return nil }
        return Array(repeating: Int((feedRate * self.plan.duration).rounded()), count: self.plan.layout.universe)
    }

    /// Waits, up to `drain` seconds, for frames of the window's ticks that are still on the way.
    private func drain(servers: [ServerClients], expected: Int?) async throws {
        let deadline = MonotonicClock.nanoseconds() + Int64(self.plan.drain * 1e9)
        while MonotonicClock.nanoseconds() < deadline {
            if let expected {
                var complete = true
                for server in servers where try await Self.snapshot(of: server).delivered < expected { complete = false }
                if complete { return }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    private static func snapshot(of server: ServerClients) async throws -> LoopRecorder.Snapshot {
        var merged = LoopRecorder.Snapshot.empty
        for recorder in server.recorders {
            merged.merge(try await recorder.eventLoop.submit { recorder.value.snapshot() }.get())
        }
        return merged
    }

    private func minimumClientRatio(snapshot: LoopRecorder.Snapshot, ticks: [Int]) -> Double? {
        snapshot.clients.filter { !$0.stalled }.compactMap { client -> Double? in
            let expected = self.plan.layout.expectedFrames(ofClient: client.index, ticksPerSymbol: ticks)
            return expected > 0 ? Double(client.delivered) / Double(expected) : nil
        }.min()
    }

    private static func stallOutcome(_ snapshot: LoopRecorder.Snapshot) -> BenchResult.StallOutcome {
        let stalled = snapshot.clients.filter(\.stalled)
        let delays = stalled.compactMap { client in client.closedAt.flatMap { closed in client.stalledAt.map { Double(closed - $0) / 1e9 } } }
        return BenchResult.StallOutcome(
            stalled: stalled.count,
            closed: delays.count,
            closedAfterSeconds: delays.count == stalled.count ? delays.max() : nil
        )
    }

    private func result(for server: ServerClients, snapshot: LoopRecorder.Snapshot, seconds: Double) -> BenchResult {
        BenchResult(
            caseName: self.plan.name,
            kind: self.plan.kind,
            server: server.endpoint.label,
            clients: self.plan.layout.clients,
            symbolsPerClient: self.plan.layout.symbolsPerClient,
            universe: self.plan.layout.universe,
            mode: self.plan.mode,
            stalled: self.plan.layout.stalled,
            tickRate: self.plan.tickRate,
            loops: self.plan.loops,
            commit: self.plan.commit,
            seconds: seconds,
            snapshot: snapshot,
            connectSeconds: server.connectSeconds
        )
    }

    private static func sleep(untilWallClock deadline: Int64) async throws {
        let remaining = deadline - WallClock.nanoseconds()
        if remaining > 0 { try await Task.sleep(nanoseconds: UInt64(remaining)) }
    }
}
