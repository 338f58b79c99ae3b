/// Where the agent keeps its files, following the XDG base directory rules.
public enum AgentPaths {
    /// `$XDG_CONFIG_HOME/openalgo`, or `$HOME/.config/openalgo`; `nil` with neither set.
    public static func configDirectory(environment: [String: String]) -> String? {
        if let base = environment["XDG_CONFIG_HOME"], base.hasPrefix("/") { return base + "/openalgo" }
        if let home = environment["HOME"], !home.isEmpty { return home + "/.config/openalgo" }
        return nil
    }
}
