import NIOPosix

/// Runs the body of an end-to-end test on threads of its own rather than on Swift's cooperative
/// pool.
///
/// The test clients block their thread while they wait for a frame. The cooperative pool has one
/// thread per core (two on the test machines), and the agent under test needs it too (its feed
/// control is `async`): a blocked test in this target and a blocked one in another target running
/// in parallel would leave the agent no thread, and every wait would end in a timeout. Tasks the
/// agent starts do not inherit the preference, so they keep the cooperative pool.
public final class BlockingTestExecutor: TaskExecutor {
    public static let shared = BlockingTestExecutor()

    private let threads: NIOThreadPool

    private init() {
        self.threads = NIOThreadPool(numberOfThreads: 2)
        self.threads.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = self.asUnownedTaskExecutor()
        self.threads.submit { state in
            guard case .active = state else { return }
            job.runSynchronously(on: executor)
        }
    }
}
