import Foundation

/// The built binaries, next to the test bundle.
enum BuiltProducts {
    static let directory: String = {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        return URL(fileURLWithPath: executable).deletingLastPathComponent().path
    }()

    static func path(_ name: String) throws -> String {
        let path = Self.directory + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ProcessFailure("\(name) is not built at \(path); run `swift build` first")
        }
        return path
    }

    /// The package root: tests run from it.
    static let packageRoot = FileManager.default.currentDirectoryPath
}

struct ProcessFailure: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

/// A child process with its output going to files, started without blocking the caller.
///
/// `posix_spawn` and `waitpid` rather than Foundation's `Process`, whose exit detection stalled
/// here while another long-running child (the socket-activated agent) was alive.
final class ChildProcess: @unchecked Sendable {
    let outputPath: String
    let errorPath: String
    private let executable: String
    private let arguments: [String]
    private let lock = NSLock()
    private var spawned: pid_t = 0
    private var exited: Int32?

    /// Prepares the output files; ``start(environment:)`` runs it.
    init(_ executable: String, _ arguments: [String], outputDirectory: String, name: String) throws {
        self.outputPath = "\(outputDirectory)/\(name).out"
        self.errorPath = "\(outputDirectory)/\(name).err"
        self.executable = executable
        self.arguments = arguments
        _ = FileManager.default.createFile(atPath: self.outputPath, contents: nil)
        _ = FileManager.default.createFile(atPath: self.errorPath, contents: nil)
    }

    func start(environment: [String: String]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, self.outputPath, O_WRONLY | O_APPEND, 0)
        posix_spawn_file_actions_addopen(&actions, 2, self.errorPath, O_WRONLY | O_APPEND, 0)
        let argv = ([self.executable] + self.arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv + envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, self.executable, &actions, nil, argv, envp)
        guard result == 0 else { throw ProcessFailure("cannot start \(self.executable): \(String(cString: strerror(result)))") }
        self.lock.withLock { self.spawned = pid }
    }

    /// `device:inode` of the file standing for stderr, the form of `JOURNAL_STREAM`.
    func errorFileIdentity() throws -> String {
        var status = stat()
        guard stat(self.errorPath, &status) == 0 else { throw ProcessFailure("cannot stat \(self.errorPath)") }
        return "\(status.st_dev):\(status.st_ino)"
    }

    var pid: Int32 { self.lock.withLock { self.spawned } }

    var output: String { (try? String(contentsOfFile: self.outputPath, encoding: .utf8)) ?? "" }
    var errors: String { (try? String(contentsOfFile: self.errorPath, encoding: .utf8)) ?? "" }

    /// The exit status once the child has ended (`128 + signal` when a signal ended it).
    private func poll() -> Int32? {
        self.lock.withLock {
            if let exited = self.exited { return exited }
            var status: Int32 = 0
            guard waitpid(self.spawned, &status, WNOHANG) == self.spawned else { return nil }
            let signal = status & 0x7F
            self.exited = signal == 0 ? (status >> 8) & 0xFF : 128 + signal
            return self.exited
        }
    }

    var isRunning: Bool { self.poll() == nil }

    /// Waits (suspending) for the exit; `nil` if it is still running after `seconds`.
    func exitStatus(within seconds: Double) async throws -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if let status = self.poll() { return status }
            guard Date() < deadline else { return nil }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func kill(_ signal: Int32) {
        Glibc.kill(self.pid, signal)
    }

    /// Runs a command to completion, for short commands (`install.sh`, `systemd-analyze`).
    static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String],
        directory: String
    ) async throws -> (
        status: Int32, output: String, errors: String
    ) {
        let child = try ChildProcess(executable, arguments, outputDirectory: directory, name: "run-\(UUID().uuidString)")
        try child.start(environment: environment)
        guard let status = try await child.exitStatus(within: 120) else {
            child.kill(SIGKILL)
            throw ProcessFailure("\(executable) \(arguments.joined(separator: " ")) did not finish in 120 s")
        }
        defer {
            try? FileManager.default.removeItem(atPath: child.outputPath)
            try? FileManager.default.removeItem(atPath: child.errorPath)
        }
        return (status, child.output, child.errors)
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; the caller binds it right after).
func freeLocalPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(descriptor, pointer, length) == 0 && getsockname(descriptor, pointer, &length) == 0
        }
    }
    guard bound else { throw ProcessFailure("cannot find a free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}
