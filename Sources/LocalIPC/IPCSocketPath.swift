#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the agent's local socket lives: `--socket`/`--ipc-socket` > `$OPENALGO_AGENT_SOCKET` >
/// `$XDG_RUNTIME_DIR/openalgo/agent.sock` > `/run/user/<uid>/openalgo/agent.sock`.
public enum IPCSocketPath {
    /// The default path, from the runtime directory of the session.
    public static func defaultPath(environment: [String: String]) -> String {
        let runtime = environment["XDG_RUNTIME_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/run/user/\(geteuid())"
        return runtime + "/openalgo/agent.sock"
    }

    /// The path a client connects to.
    public static func resolve(explicit: String?, environment: [String: String]) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnvironment = environment["OPENALGO_AGENT_SOCKET"], !fromEnvironment.isEmpty { return fromEnvironment }
        return self.defaultPath(environment: environment)
    }
}
