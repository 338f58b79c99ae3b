#if canImport(Glibc)
import Glibc
#endif

/// Where the agent keeps its files, following the XDG base directory rules.
public enum AgentPaths {
    /// `$XDG_CONFIG_HOME/openalgo`, or `$HOME/.config/openalgo`; `nil` with neither set.
    public static func configDirectory(environment: [String: String]) -> String? {
        if let base = environment["XDG_CONFIG_HOME"], base.hasPrefix("/") { return base + "/openalgo" }
        if let home = environment["HOME"], !home.isEmpty { return home + "/.config/openalgo" }
        return nil
    }

    /// The whole file as UTF-8 text; `nil` (with `errno` set) when it cannot be opened.
    static func readTextFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
