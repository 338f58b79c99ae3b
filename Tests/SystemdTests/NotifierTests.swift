import Foundation
import SystemdSupport
import Testing

/// `sd_notify` through libsystemd, against a temporary datagram socket. Serialized: the tests
/// change `NOTIFY_SOCKET` and `WATCHDOG_*`, which are process-wide.
@Suite("systemd notify client", .serialized)
struct NotifierTests {
    @Test("messages arrive byte for byte on NOTIFY_SOCKET")
    func sendsExactBytes() async throws {
        let directory = try makeShortTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let listener = try NotifySocketListener(path: directory + "/notify.sock")
        defer { listener.close() }
        setenv("NOTIFY_SOCKET", listener.path, 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        let notifier = SystemdNotifier()
        #expect(notifier.isEnabled)
        let token = UUID().uuidString
        #expect(try notifier.send(.ready(status: "serving \(token)\nsecond line")) == true)
        #expect(try notifier.send(.watchdog) == true)
        #expect(try notifier.send(.reloading(monotonicMicroseconds: 1234)) == true)
        #expect(try notifier.send(.stopping) == true)
        let messages = try await listener.wait(seconds: 5) { $0.contains("STOPPING=1") }
        let ours = Array(messages.drop { !$0.contains(token) })
        #expect(
            ours == [
                "READY=1\nSTATUS=serving \(token) second line", "WATCHDOG=1", "RELOADING=1\nMONOTONIC_USEC=1234", "STOPPING=1",
            ]
        )
    }

    @Test("an abstract NOTIFY_SOCKET (@name) works too")
    func abstractSocket() async throws {
        let name = "oa-notify-\(UUID().uuidString)"
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = [0] + Array(name.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
        #expect(bound == 0)
        setenv("NOTIFY_SOCKET", "@" + name, 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        #expect(try SystemdNotifier().send(.status("abstract")) == true)
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        #expect(count > 0 && String(decoding: buffer[0..<max(count, 0)], as: UTF8.self) == "STATUS=abstract")
    }

    @Test("without NOTIFY_SOCKET nothing is sent and nothing fails")
    func noSocket() throws {
        unsetenv("NOTIFY_SOCKET")
        let notifier = SystemdNotifier()
        #expect(!notifier.isEnabled)
        #expect(try notifier.send(.ready(status: "x")) == false)
    }

    @Test("an unusable NOTIFY_SOCKET is an error to report, not a crash")
    func unusableSocket() throws {
        setenv("NOTIFY_SOCKET", "/nonexistent/oa-\(UUID().uuidString)/notify.sock", 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        #expect(throws: SystemdError.self) { try SystemdNotifier().send(.watchdog) }
        setenv("NOTIFY_SOCKET", "relative/path", 1)
        let error = #expect(throws: SystemdError.self) { try SystemdNotifier().send(.watchdog) }
        #expect(error?.description.hasPrefix("sd_notify failed: ") == true)
    }

    @Test("the watchdog interval comes from WATCHDOG_USEC, only for this process")
    func watchdogInterval() {
        defer {
            unsetenv("WATCHDOG_USEC")
            unsetenv("WATCHDOG_PID")
        }
        unsetenv("WATCHDOG_USEC")
        #expect(SystemdNotifier().watchdogInterval() == nil)
        setenv("WATCHDOG_USEC", "5000000", 1)
        #expect(SystemdNotifier().watchdogInterval() == .seconds(5))
        setenv("WATCHDOG_PID", "\(getpid())", 1)
        #expect(SystemdNotifier().watchdogInterval() == .seconds(5))
        setenv("WATCHDOG_PID", "1", 1)
        #expect(SystemdNotifier().watchdogInterval() == nil)
    }

    @Test("a RELOADING message carries CLOCK_MONOTONIC in microseconds")
    func monotonicClock() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let before = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        let value = ServiceManagerMessage.monotonicMicroseconds()
        #expect(value >= before && value < before + 10_000_000)
        #expect(ServiceManagerMessage.reloading(monotonicMicroseconds: value).description == "RELOADING=1\nMONOTONIC_USEC=\(value)")
    }
}
