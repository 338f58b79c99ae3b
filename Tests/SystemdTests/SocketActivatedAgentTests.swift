import FakeBrokers
import Foundation
import LocalIPC
import Testing
import WireJSON

/// The built agent under `systemd-socket-activate`, as systemd would start it: both sockets
/// inherited by name, a `NOTIFY_SOCKET` listener, `WATCHDOG_USEC`, and stderr as the journal.
@Suite("the agent under systemd socket activation")
struct SocketActivatedAgentTests {
    static let activator = "/usr/bin/systemd-socket-activate"
    /// What systemd-socket-activate passes on from its own environment (`-E NAME`).
    static let passed = [
        "NOTIFY_SOCKET", "WATCHDOG_USEC", "OPENALGO_API_KEY", "HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "XDG_CACHE_HOME", "JOURNAL_STREAM",
    ]

    @Test(
        "inherited sockets serve WebSocket and oactl; READY, STATUS, WATCHDOG, RELOADING/READY on SIGHUP, STOPPING and exit 0 on SIGTERM",
        .enabled(if: FileManager.default.isExecutableFile(atPath: activator), "systemd-socket-activate (package systemd) is missing")
    )
    func fullLifecycle() async throws {
        try await LiveAgentLock.shared.run {
            let directory = try makeShortTemporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let notifications = try NotifySocketListener(path: directory + "/notify.sock")
            defer { notifications.close() }
            let port = try freeLocalPort()
            let socketPath = directory + "/agent.sock"
            let agent = try ChildProcess(
                Self.activator,
                ["-l", "127.0.0.1:\(port)", "-l", socketPath, "--fdname=ws:ipc"] + Self.passed.flatMap { ["-E", $0] }
                    + [try BuiltProducts.path("openalgo-agent"), "serve", "--log-level", "info"],
                outputDirectory: directory,
                name: "agent"
            )
            // The agent's stderr stands for journald's stream: JOURNAL_STREAM names it.
            try agent.start(environment: [
                "PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": notifications.path, "WATCHDOG_USEC": "1000000",
                "OPENALGO_API_KEY": "systemd-test-key", "HOME": directory, "XDG_CONFIG_HOME": directory + "/config",
                "XDG_RUNTIME_DIR": directory, "XDG_CACHE_HOME": directory + "/cache", "JOURNAL_STREAM": try agent.errorFileIdentity(),
            ])
            defer { if agent.isRunning { agent.kill(SIGKILL) } }

            // The sockets exist before the agent runs: this connection waits in the backlog
            // (systemd-socket-activate starts the agent on it) and is served, never refused.
            let deadline = Date().addingTimeInterval(10)
            while agent.errors.components(separatedBy: "Listening on").count < 3, Date() < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(!agent.errors.contains("Execing"), "the agent must not start before the first client")
            let client = try TestWebSocketClient(port: port)
            let ready = try await notifications.wait(seconds: 20) { $0.contains { $0.hasPrefix("READY=1\n") } }
            let readyMessage = try #require(ready.first { $0.hasPrefix("READY=1\n") }, "no READY=1; stderr: \(agent.errors)")
            #expect(readyMessage.contains("\nSTATUS=simulator "))

            try client.send(["action": "authenticate", "api_key": "systemd-test-key"])
            #expect(try client.receiveReply().objectValue?["status"] == "success")
            try client.send(["action": "subscribe", "symbols": [["exchange": "NSE", "symbol": "RELIANCE"]], "mode": 1])
            _ = try client.receiveReply()
            #expect(try client.receiveMarketData()["symbol"] == "RELIANCE")

            let status = try await ChildProcess.run(
                try BuiltProducts.path("oactl"),
                ["--socket", socketPath, "status", "--json"],
                environment: ["PATH": "/usr/bin:/bin", "HOME": directory],
                directory: directory
            )
            #expect(status.status == 0, "oactl: \(status.errors)")
            let object = try #require(try JSONParser.parse(status.output).objectValue)
            #expect(object["pid"]?.intValue == Int(agent.pid))
            #expect(object["service"]?.objectValue?["sockets"] == "systemd")
            #expect(object["service"]?.objectValue?["watchdog_ms"] == 1000)
            #expect(object["clients"]?.objectValue?["websocket"] == 1)

            // The status line follows the clients; the watchdog pings every half second.
            let current = try await notifications.wait(seconds: 10) { messages in
                messages.contains { $0.hasPrefix("STATUS=") && $0.contains("1 WebSocket") }
                    && messages.filter { $0 == "WATCHDOG=1" }.count >= 4
            }
            #expect(current.contains { $0.hasPrefix("STATUS=simulator connected; 1 WebSocket") })
            #expect(current.filter { $0 == "WATCHDOG=1" }.count >= 4)

            // NIO listens again with a backlog of 128 when it adopts a socket; the agent restores
            // systemd's (4096, capped by net.core.somaxconn).
            if let ss = ["/usr/bin/ss", "/bin/ss"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
                let listening = try await ChildProcess.run(ss, ["-Hltn", "sport = :\(port)"], environment: [:], directory: directory)
                let somaxconn =
                    (try? String(contentsOfFile: "/proc/sys/net/core/somaxconn", encoding: .utf8))
                    .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 4096
                let backlog = listening.output.split(separator: " ", omittingEmptySubsequences: true).dropFirst(2).first.flatMap { Int($0) }
                #expect(backlog == min(4096, somaxconn), "\(listening.output)")
            }

            // On a terminal (script(1) provides one) status is a table with a Service row.
            let table = try await ChildProcess.run(
                "/usr/bin/script",
                ["-qfec", "'\(try BuiltProducts.path("oactl"))' --socket '\(socketPath)' status", "/dev/null"],
                environment: ["PATH": "/usr/bin:/bin", "HOME": directory, "TERM": "xterm"],
                directory: directory
            )
            #expect(table.output.contains("systemd (socket activation), watchdog 1s"), "\(table.output)")

            // SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 again, and the client stays.
            // The new file changes one setting applied live and one that needs a restart.
            try FileManager.default.createDirectory(atPath: directory + "/config/openalgo", withIntermediateDirectories: true)
            try "ltp_throttle_ms = 20\nipc_budget_bytes = 1048576\n".write(
                toFile: directory + "/config/openalgo/agent.toml",
                atomically: true,
                encoding: .utf8
            )
            let beforeReload = notifications.messages.count
            agent.kill(SIGHUP)
            let reload = try await notifications.wait(seconds: 10) { messages in
                let after = messages.dropFirst(beforeReload)
                guard let reloading = after.firstIndex(where: { $0.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") }) else { return false }
                return after[reloading...].contains { $0.hasPrefix("READY=1\n") }
            }
            let afterReload = Array(reload.dropFirst(beforeReload))
            let reloading = try #require(afterReload.firstIndex { $0.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") }, "\(afterReload)")
            #expect(afterReload[reloading...].contains { $0.hasPrefix("READY=1\n") })
            #expect(UInt64(afterReload[reloading].split(separator: "=").last ?? "") != nil)
            #expect(try client.receiveMarketData()["symbol"] == "RELIANCE")
            #expect(agent.isRunning)
            let reloaded = try await ChildProcess.run(
                try BuiltProducts.path("oactl"),
                ["--socket", socketPath, "status", "--json"],
                environment: ["PATH": "/usr/bin:/bin", "HOME": directory],
                directory: directory
            )
            #expect(try JSONParser.parse(reloaded.output).objectValue?["requires_restart"] == ["ipc_budget_bytes"])

            // SIGTERM: STOPPING=1 and a clean exit.
            agent.kill(SIGTERM)
            let exit = try await agent.exitStatus(within: 20)
            #expect(exit == 0, "stderr: \(agent.errors)")
            #expect(notifications.messages.contains("STOPPING=1"))
            #expect(try client.receiveClose().closeCode == 1001)

            // journald priorities: stderr was the "journal" named by JOURNAL_STREAM.
            let lines = agent.errors.split(separator: "\n").filter {
                !$0.hasPrefix("Listening on") && !$0.hasPrefix("Communication") && !$0.hasPrefix("Execing")
            }
            #expect(!lines.isEmpty)
            #expect(lines.allSatisfy { $0.hasPrefix("<") }, "\(lines.prefix(5))")
            #expect(lines.contains { $0.hasPrefix("<6>WebSocket server listening") && $0.contains("inherited fd 3") })
            #expect(lines.contains { $0.hasPrefix("<6>local socket listening") && $0.contains("inherited fd 4") })
            #expect(lines.contains { $0.hasPrefix("<5>SIGHUP: reloading the configuration") })
            #expect(lines.contains { $0.hasPrefix("<5>configuration reloaded applied=ltp_throttle_ms requires_restart=ipc_budget_bytes") })
        }
    }

    @Test("--no-systemd binds its own sockets and sends nothing to NOTIFY_SOCKET")
    func noSystemd() async throws {
        try await LiveAgentLock.shared.run {
            let directory = try makeShortTemporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let notifications = try NotifySocketListener(path: directory + "/notify.sock")
            defer { notifications.close() }
            let socketPath = directory + "/agent.sock"
            let agent = try ChildProcess(
                try BuiltProducts.path("openalgo-agent"),
                ["serve", "--no-systemd", "--port", "0", "--ipc-socket", socketPath],
                outputDirectory: directory,
                name: "agent"
            )
            try agent.start(environment: [
                "PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": notifications.path, "WATCHDOG_USEC": "1000000",
                "OPENALGO_API_KEY": "systemd-test-key", "HOME": directory, "XDG_CONFIG_HOME": directory + "/config",
                "XDG_RUNTIME_DIR": directory,
            ])
            defer { if agent.isRunning { agent.kill(SIGKILL) } }
            let deadline = Date().addingTimeInterval(20)
            while !FileManager.default.fileExists(atPath: socketPath), Date() < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            let status = try await ChildProcess.run(
                try BuiltProducts.path("oactl"),
                ["--socket", socketPath, "status", "--json"],
                environment: ["PATH": "/usr/bin:/bin", "HOME": directory],
                directory: directory
            )
            let service = try #require(try JSONParser.parse(status.output).objectValue?["service"]?.objectValue, "\(status.errors)")
            #expect(service["sockets"] == "own" && service["notify"] == false && service["watchdog_ms"] == nil)
            try await Task.sleep(for: .milliseconds(700))
            agent.kill(SIGTERM)
            #expect(try await agent.exitStatus(within: 20) == 0)
            #expect(notifications.messages.isEmpty)
            #expect(!agent.errors.contains("<6>"))
        }
    }
}
