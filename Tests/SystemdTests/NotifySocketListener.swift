import Foundation

/// A datagram socket standing in for systemd's `NOTIFY_SOCKET`: it records every message a
/// process sends, on a thread of its own, so waiting for one never blocks a test's task.
final class NotifySocketListener: @unchecked Sendable {
    let path: String
    private let descriptor: Int32
    private let lock = NSLock()
    private var received: [String] = []
    private var stopped = false
    private let done = DispatchSemaphore(value: 0)

    init(path: String) throws {
        self.path = path
        unlink(path)
        self.descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(self.descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let thread = Thread { [self] in self.receiveLoop() }
        thread.start()
    }

    private func receiveLoop() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !self.lock.withLock({ self.stopped }) {
            let count = recv(self.descriptor, &buffer, buffer.count, 0)
            if count > 0 {
                let message = String(decoding: buffer[0..<count], as: UTF8.self)
                self.lock.withLock { self.received.append(message) }
            }
        }
        self.done.signal()
    }

    /// Every message so far, in arrival order.
    var messages: [String] {
        self.lock.withLock { self.received }
    }

    /// Waits (suspending, not blocking) until `condition` holds for the messages, or `seconds` pass.
    @discardableResult
    func wait(seconds: Double, until condition: ([String]) -> Bool) async throws -> [String] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let messages = self.messages
            if condition(messages) { return messages }
            try await Task.sleep(for: .milliseconds(50))
        }
        return self.messages
    }

    func close() {
        self.lock.withLock { self.stopped = true }
        self.done.wait()
        Glibc.close(self.descriptor)
        unlink(self.path)
    }
}

/// A short temporary directory: Unix socket paths must fit in 108 bytes.
func makeShortTemporaryDirectory() throws -> String {
    var template = Array("/tmp/oa-sd-XXXXXX".utf8CString)
    guard let path = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw POSIXError(.init(rawValue: errno) ?? .EIO)
    }
    return String(cString: path)
}
