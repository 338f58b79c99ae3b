import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Where the API key WebSocket clients must present comes from, in order:
/// `OPENALGO_API_KEY`, the systemd credential `api-key` (`$CREDENTIALS_DIRECTORY/api-key`), the
/// `0600` file `$XDG_CONFIG_HOME/openalgo/api-key`; with none of them, a new random key is
/// generated into that file. The key itself is never logged.
public enum APIKeyStore {
    public struct ResolvedKey: Sendable {
        public var key: String
        /// Where it came from, for the log: a variable name or a path.
        public var source: String
        public var generated: Bool
        /// Whether the key lives in the agent's own file, which a rotation may replace.
        public var isManaged: Bool

        public init(key: String, source: String, generated: Bool, isManaged: Bool) {
            self.key = key
            self.source = source
            self.generated = generated
            self.isManaged = isManaged
        }
    }

    public static func resolve(environment: [String: String], logger: Logger) throws(ConfigurationError) -> ResolvedKey {
        if let key = environment["OPENALGO_API_KEY"]?.trimmingWhitespace(), !key.isEmpty {
            return ResolvedKey(key: key, source: "OPENALGO_API_KEY", generated: false, isManaged: false)
        }
        if let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty {
            let path = directory + "/api-key"
            if let key = try readKey(path, checkPermissions: false) {
                return ResolvedKey(key: key, source: path, generated: false, isManaged: false)
            }
        }
        guard let directory = AgentPaths.configDirectory(environment: environment) else {
            throw ConfigurationError("no API key: set OPENALGO_API_KEY, or HOME so that one can be kept in ~/.config/openalgo/api-key")
        }
        let path = directory + "/api-key"
        if let key = try readKey(path, checkPermissions: true) {
            return ResolvedKey(key: key, source: path, generated: false, isManaged: true)
        }
        let key = try generate(at: path, directory: directory)
        logger.notice("generated a new API key for WebSocket clients", metadata: ["file": "\(path)"])
        return ResolvedKey(key: key, source: path, generated: true, isManaged: true)
    }

    /// Replaces the key kept in `resolved.source` with a new random one, written atomically with
    /// mode `0600`. Keys from the environment or a systemd credential are not the agent's to change.
    public static func rotate(_ resolved: ResolvedKey) throws(ConfigurationError) -> ResolvedKey {
        guard resolved.isManaged else {
            throw ConfigurationError(
                "the API key comes from \(resolved.source), which the agent does not manage; change it there and restart the agent"
            )
        }
        let key = makeKey()
        let temporary = resolved.source + ".new"
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw ConfigurationError("cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
        let line = key + "\n"
        let written = line.utf8CString.withUnsafeBufferPointer { write(descriptor, $0.baseAddress, line.utf8.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == line.utf8.count, synced, rename(temporary, resolved.source) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw ConfigurationError("cannot write \(resolved.source): \(reason)")
        }
        return ResolvedKey(key: key, source: resolved.source, generated: true, isManaged: true)
    }

    /// 32 random bytes as 64 lowercase hex digits, like OpenAlgo's own keys.
    public static func makeKey() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return (byte < 16 ? "0" : "") + String(byte, radix: 16)
        }.joined()
    }

    private static func readKey(_ path: String, checkPermissions: Bool) throws(ConfigurationError) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        if checkPermissions && info.st_mode & 0o077 != 0 {
            throw ConfigurationError(
                "refusing to use \(path): other users can read it; run 'chmod 600 \(path)'"
            )
        }
        guard let text = AgentPaths.readTextFile(path) else {
            throw ConfigurationError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        let key = text.trimmingWhitespace()
        guard !key.isEmpty else { throw ConfigurationError("\(path) is empty; delete it to have a new key generated") }
        return key
    }

    private static func generate(at path: String, directory: String) throws(ConfigurationError) -> String {
        try makeDirectories(directory)
        let key = makeKey()
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw ConfigurationError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let line = key + "\n"
        let written = line.utf8CString.withUnsafeBufferPointer { write(descriptor, $0.baseAddress, line.utf8.count) }
        guard written == line.utf8.count else {
            throw ConfigurationError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        return key
    }

    /// Creates `path` and its missing parents; the last one (the agent's own) is `0700`.
    private static func makeDirectories(_ path: String) throws(ConfigurationError) {
        var current = ""
        let components = path.split(separator: "/")
        for (index, component) in components.enumerated() {
            current += "/" + component
            let mode: mode_t = index == components.count - 1 ? 0o700 : 0o755
            if mkdir(current, mode) != 0 && errno != EEXIST {
                throw ConfigurationError("cannot create directory \(current): \(String(cString: strerror(errno)))")
            }
        }
    }
}
