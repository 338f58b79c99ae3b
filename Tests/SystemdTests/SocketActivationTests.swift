import Foundation
import SystemdSupport
import Testing

@Suite("socket activation: which inherited socket serves what", .serialized)
struct AgentListenersTests {
    @Test("sockets named ws and ipc take those roles, in any order")
    func namedSockets() throws {
        let listeners = try AgentListeners([
            InheritedSocket(fd: 3, name: "ipc", kind: .unix),
            InheritedSocket(fd: 4, name: "ws", kind: .tcp),
        ])
        #expect(listeners == AgentListeners(webSocket: 4, ipc: 3))
        #expect(listeners.isActivated)
    }

    @Test("one named socket: the agent binds the other itself")
    func oneSocket() throws {
        let listeners = try AgentListeners([InheritedSocket(fd: 3, name: "ws", kind: .tcp)])
        #expect(listeners == AgentListeners(webSocket: 3, ipc: nil))
        #expect(try AgentListeners([]) == AgentListeners())
        #expect(!AgentListeners().isActivated)
    }

    @Test("unnamed sockets (no LISTEN_FDNAMES) are told apart by kind")
    func unnamedSockets() throws {
        let listeners = try AgentListeners([
            InheritedSocket(fd: 3, name: "unknown", kind: .tcp),
            InheritedSocket(fd: 4, name: "unknown", kind: .unix),
        ])
        #expect(listeners == AgentListeners(webSocket: 3, ipc: 4))
    }

    @Test("ambiguous or unusable sockets are refused with a reason, never guessed")
    func refusals() {
        func reason(_ sockets: [InheritedSocket]) -> String? {
            do {
                _ = try AgentListeners(sockets)
                return nil
            } catch {
                return error.description
            }
        }
        #expect(
            reason([InheritedSocket(fd: 3, name: "ws", kind: .tcp), InheritedSocket(fd: 4, name: "ws", kind: .tcp)])
                == "two sockets were passed for \"ws\" (fds 3 and 4); the agent serves one of each"
        )
        #expect(reason([InheritedSocket(fd: 3, name: "ws", kind: .unix)]) == "the socket named \"ws\" (fd 3) is not a listening TCP socket")
        #expect(reason([InheritedSocket(fd: 3, name: "ipc", kind: .tcp)]) == "the socket named \"ipc\" (fd 3) is not a listening Unix stream socket")
        #expect(reason([InheritedSocket(fd: 5, name: "metrics", kind: .tcp)])?.contains("\"metrics\" (fd 5)") == true)
        #expect(reason([InheritedSocket(fd: 3, name: "unknown", kind: .unusable)])?.contains("fd 3") == true)
        #expect(
            reason([InheritedSocket(fd: 3, name: "unknown", kind: .tcp), InheritedSocket(fd: 4, name: "ws", kind: .tcp)])?
                .hasPrefix("two sockets were passed for \"ws\"") == true
        )
    }

    @Test("LISTEN_FDS meant for another process is ignored (LISTEN_PID)")
    func foreignListenPID() throws {
        setenv("LISTEN_PID", "1", 1)
        setenv("LISTEN_FDS", "2", 1)
        setenv("LISTEN_FDNAMES", "ws:ipc", 1)
        defer {
            unsetenv("LISTEN_PID")
            unsetenv("LISTEN_FDS")
            unsetenv("LISTEN_FDNAMES")
        }
        #expect(try SocketActivation.inheritedSockets() == [])
    }

    @Test("a malformed LISTEN_FDS is an error to report")
    func malformedListenFDs() {
        setenv("LISTEN_PID", "\(getpid())", 1)
        setenv("LISTEN_FDS", "two", 1)
        defer {
            unsetenv("LISTEN_PID")
            unsetenv("LISTEN_FDS")
        }
        #expect(throws: SystemdError.self) { try SocketActivation.inheritedSockets() }
    }

    @Test("nothing passed: no sockets")
    func nothingPassed() throws {
        #expect(getenv("LISTEN_FDS") == nil)
        #expect(try SocketActivation.inheritedSockets() == [])
    }
}

@Suite("journald log lines")
struct JournalLogHandlerTests {
    @Test("each level gets its syslog priority prefix; metadata follows, one line")
    func prefixes() {
        #expect(JournalLogHandler.format(level: .error, message: "feed failed", metadata: [:]) == "<3>feed failed")
        #expect(JournalLogHandler.format(level: .warning, message: "slow client", metadata: ["pid": "12"]) == "<4>slow client pid=12")
        #expect(JournalLogHandler.format(level: .info, message: "listening", metadata: ["b": "2", "a": "1"]) == "<6>listening a=1 b=2")
        #expect(JournalLogHandler.format(level: .debug, message: "tick", metadata: [:]) == "<7>tick")
        #expect(JournalLogHandler.format(level: .trace, message: "x", metadata: [:]) == "<7>x")
        #expect(JournalLogHandler.format(level: .notice, message: "reloaded", metadata: [:]) == "<5>reloaded")
        #expect(JournalLogHandler.format(level: .critical, message: "cannot start", metadata: [:]) == "<2>cannot start")
        #expect(JournalLogHandler.format(level: .info, message: "two\nlines", metadata: ["k": "a\nb"]) == "<6>two lines k=a b")
    }

    @Test("JOURNAL_STREAM counts only when it names this process's stderr")
    func journalStreamMatch() {
        var status = stat()
        #expect(fstat(STDERR_FILENO, &status) == 0)
        let matching = "\(status.st_dev):\(status.st_ino)"
        #expect(JournalLogHandler.isStandardErrorJournal(environment: ["JOURNAL_STREAM": matching]))
        #expect(!JournalLogHandler.isStandardErrorJournal(environment: ["JOURNAL_STREAM": "\(status.st_dev):\(status.st_ino + 1)"]))
        #expect(!JournalLogHandler.isStandardErrorJournal(environment: ["JOURNAL_STREAM": "garbage"]))
        #expect(!JournalLogHandler.isStandardErrorJournal(environment: [:]))
    }
}
