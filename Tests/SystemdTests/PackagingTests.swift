import Foundation
import Testing

/// `packaging/`: the units pass `systemd-analyze verify`, and `install.sh` then `--uninstall`
/// leaves a home directory as it found it.
@Suite("packaging")
struct PackagingTests {
    static let installer = BuiltProducts.packageRoot + "/packaging/install.sh"
    static let units = ["openalgo-agent.service", "openalgo-agent-ws.socket", "openalgo-agent-ipc.socket"]

    /// Every path under `root` with its type and mode, to compare a tree before and after.
    static func snapshot(_ root: String) throws -> [String] {
        let enumerator = try #require(FileManager.default.enumerator(atPath: root))
        var entries: [String] = []
        while let path = enumerator.nextObject() as? String {
            let attributes = try FileManager.default.attributesOfItem(atPath: root + "/" + path)
            entries.append("\(path) \(attributes[.type] ?? "") \(attributes[.posixPermissions] ?? "")")
        }
        return entries.sorted()
    }

    @Test("install.sh into a temporary HOME, then --uninstall, leaves nothing behind (and keeps the user's config)")
    func installAndUninstall() async throws {
        let home = try makeShortTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let scratch = try makeShortTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try FileManager.default.createDirectory(atPath: home + "/.config/openalgo", withIntermediateDirectories: true)
        try "port = 9000\n".write(toFile: home + "/.config/openalgo/agent.toml", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: home + "/.local/bin", withIntermediateDirectories: true)
        try "#!/bin/sh\n".write(toFile: home + "/.local/bin/other-tool", atomically: true, encoding: .utf8)
        let before = try Self.snapshot(home)
        let environment = ["PATH": "/usr/bin:/bin", "HOME": home]

        let install = try await ChildProcess.run(
            "/bin/bash",
            [Self.installer, "--bin-dir", BuiltProducts.directory],
            environment: environment,
            directory: scratch
        )
        #expect(install.status == 0, "\(install.errors)")
        let installed = try Self.snapshot(home)
        for path in [
            ".local/bin/openalgo-agent", ".local/bin/oactl", ".config/systemd/user/openalgo-agent.service",
            ".config/systemd/user/openalgo-agent-ws.socket", ".config/systemd/user/openalgo-agent-ipc.socket",
            ".local/share/man/man1/openalgo-agent.1", ".local/share/man/man1/oactl.1", ".local/share/man/man5/openalgo-agent.toml.5",
            ".local/share/bash-completion/completions/oactl", ".local/share/doc/openalgo-agent/agent.toml.sample",
        ] {
            #expect(installed.contains { $0.hasPrefix(path + " ") }, "\(path) not installed")
        }
        let service = try String(contentsOfFile: home + "/.config/systemd/user/openalgo-agent.service", encoding: .utf8)
        #expect(service.contains("\nExecStart=%h/.local/bin/openalgo-agent serve\n"))

        // Installing again (an upgrade) changes nothing that uninstall would then miss.
        let again = try await ChildProcess.run(
            "/bin/bash",
            [Self.installer, "--bin-dir", BuiltProducts.directory],
            environment: environment,
            directory: scratch
        )
        #expect(again.status == 0, "\(again.errors)")

        let uninstall = try await ChildProcess.run("/bin/bash", [Self.installer, "--uninstall"], environment: environment, directory: scratch)
        #expect(uninstall.status == 0, "\(uninstall.errors)")
        #expect(try Self.snapshot(home) == before)

        let twice = try await ChildProcess.run("/bin/bash", [Self.installer, "--uninstall"], environment: environment, directory: scratch)
        #expect(twice.status == 1 && twice.errors.contains("nothing to uninstall"))
    }

    @Test(
        "systemd-analyze verify accepts the units, as user units and as system units",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze"), "systemd-analyze is missing")
    )
    func unitsVerify() async throws {
        let home = try makeShortTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let prefix = home + "/prefix"
        let install = try await ChildProcess.run(
            "/bin/bash",
            [Self.installer, "--bin-dir", BuiltProducts.directory],
            environment: ["PATH": "/usr/bin:/bin", "HOME": home],
            directory: home
        )
        #expect(install.status == 0, "\(install.errors)")
        let system = try await ChildProcess.run(
            "/bin/bash",
            [Self.installer, "--prefix", prefix, "--bin-dir", BuiltProducts.directory],
            environment: ["PATH": "/usr/bin:/bin", "HOME": home],
            directory: home
        )
        #expect(system.status == 0, "\(system.errors)")

        // As the user's manager reads them from ~/.config/systemd/user (%h is HOME), and as
        // installed under a prefix, both by the user manager and the system manager. MANPATH lets
        // verify find the Documentation= pages the installer put in place.
        let userUnits = home + "/.config/systemd/user"
        let prefixUnits = prefix + "/lib/systemd/user"
        let cases: [(arguments: [String], directory: String, manPath: String)] = [
            (["--user", "verify"], userUnits, home + "/.local/share/man"),
            (["--user", "verify"], prefixUnits, prefix + "/share/man"),
            (["verify"], prefixUnits, prefix + "/share/man"),
        ]
        for (arguments, directory, manPath) in cases {
            let run = try await ChildProcess.run(
                "/usr/bin/systemd-analyze",
                arguments + Self.units.map { directory + "/" + $0 },
                environment: ["PATH": "/usr/bin:/bin", "HOME": home, "XDG_RUNTIME_DIR": home, "MANPATH": manPath],
                directory: home
            )
            #expect(run.status == 0 && run.errors.isEmpty, "systemd-analyze \(arguments.joined(separator: " ")) in \(directory): \(run.errors)")
        }
    }
}
