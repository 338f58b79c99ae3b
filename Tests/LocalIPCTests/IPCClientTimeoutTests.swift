import Testing

@testable import LocalIPC

@Suite("IPC client timeouts")
struct IPCClientTimeoutTests {
    @Test("poll waits the remaining time rounded up to a millisecond, and at most Int32.max ms however long the timeout")
    func pollTimeout() {
        #expect(IPCClient.pollTimeout(remaining: .milliseconds(1500)) == 1501)
        #expect(IPCClient.pollTimeout(remaining: .nanoseconds(1)) == 1)
        #expect(IPCClient.pollTimeout(remaining: .seconds(2_147_482)) == 2_147_482_001)
        #expect(IPCClient.pollTimeout(remaining: .seconds(2_147_484)) == Int32.max)
        #expect(IPCClient.pollTimeout(remaining: .seconds(Int64.max)) == Int32.max)
    }
}
