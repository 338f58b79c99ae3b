/// Lets one test at a time run a live agent, across every test target of the process.
///
/// Socket tests block their thread while a client waits for a frame, and the machine has two
/// cooperative threads: two such tests at once (say, a proxy test and a broker-feed test, which
/// Swift Testing runs in parallel because they are in different suites) can block both, and
/// the agents whose replies they wait for then never run. Waiting for this lock suspends
/// instead of blocking, so it costs no thread.
public actor LiveAgentLock {
    public static let shared = LiveAgentLock()

    /// Set while the current task holds the lock, so a test that starts a second agent inside
    /// the first (a nested `with`) goes straight in instead of waiting for itself.
    @TaskLocal private static var heldByCurrentTask = false

    private var held = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    /// Runs `body` once no other task holds the lock, then lets the next one in.
    public nonisolated func run<Result>(_ body: () async throws -> Result) async throws -> Result {
        if Self.heldByCurrentTask { return try await body() }
        await self.acquire()
        do {
            let result = try await Self.$heldByCurrentTask.withValue(true) { try await body() }
            await self.release()
            return result
        } catch {
            await self.release()
            throw error
        }
    }

    private func acquire() async {
        guard self.held else {
            self.held = true
            return
        }
        await withCheckedContinuation { self.waiters.append($0) }
    }

    private func release() {
        if self.waiters.isEmpty {
            self.held = false
        } else {
            self.waiters.removeFirst().resume()
        }
    }
}
