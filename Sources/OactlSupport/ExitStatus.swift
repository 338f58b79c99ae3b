import LocalIPC

/// The exit statuses of `oactl`, after sysexits(3) where one fits.
public enum ExitStatus {
    public static let success: Int32 = 0
    /// The agent answered with an error.
    public static let agentError: Int32 = 1
    /// EX_USAGE: a bad flag, symbol or value.
    public static let usage: Int32 = 64
    /// EX_UNAVAILABLE: the agent is not running (or went away).
    public static let unavailable: Int32 = 69
    /// EX_TEMPFAIL: no answer in time.
    public static let timeout: Int32 = 75
    /// EX_NOPERM: the socket or the agent refused this user.
    public static let permission: Int32 = 77
    /// Interrupted by Ctrl-C (128 + SIGINT).
    public static let interrupted: Int32 = 130

    /// The status and the message (with a hint where one helps) for a failed call.
    public static func of(_ error: IPCClientError) -> (status: Int32, message: String) {
        if let remote = error.remoteError {
            return (agentError, "\(remote.message) (\(remote.reason), code \(remote.code))")
        }
        if error.isNotRunning {
            return (
                unavailable,
                """
                \(error)
                hint: start it with `openalgo-agent` (or `systemctl --user start openalgo-agent-ipc.socket`), \
                or point --socket / OPENALGO_AGENT_SOCKET at its socket
                """
            )
        }
        if error.isTimeout { return (timeout, "\(error)") }
        if error.isPermissionDenied { return (permission, "\(error)") }
        return (unavailable, "\(error)")
    }
}
