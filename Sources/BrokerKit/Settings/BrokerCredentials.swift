#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A broker's secrets (Zerodha `api_key` and `access_token`, Angel One `jwt_token`, `feed_token`, …),
/// each field taken from the first source that has it:
///
/// 1. values given explicitly: what an IPC `ws_connect` passes;
/// 2. systemd credentials: the file `$CREDENTIALS_DIRECTORY/<broker>-<field>`, with `_` in the field
///    written as `-` (`zerodha-access-token`), as `LoadCredential=` places them;
/// 3. the broker's credentials file `$XDG_CONFIG_HOME/openalgo/<broker>.credentials` (or
///    `~/.config/openalgo/…`), which must be private (`chmod 600`): one `field = value` per line,
///    `#` starts a comment, the value may be in double quotes (so a TOML file of plain string
///    keys works too);
/// 4. the `[brokers.<broker>]` settings, which include `OPENALGO_BROKER_<BROKER>_<FIELD>`
///    environment variables (convenient for tests; the settings file itself is not checked for
///    privacy, so prefer 2 or 3 for real tokens).
///
/// Values are trimmed; an empty value counts as missing. Secrets are never part of an error
/// message or a description.
package struct BrokerCredentials: Sendable, Equatable, CustomStringConvertible {
    /// The canonical broker name the fields belong to.
    package let broker: String
    private let values: [String: String]
    /// Where each field came from, for the log (`ws_connect`, a path, `[brokers.zerodha]`).
    package let sources: [String: String]

    /// A field's value; ``load(broker:fields:explicit:settings:environment:)`` guarantees the
    /// required ones are present.
    package subscript(field: String) -> String? { self.values[field] }

    /// The field names and their sources, never the values.
    package var description: String {
        "\(self.broker) credentials: " + self.sources.sorted { $0.key < $1.key }.map { "\($0.key) from \($0.value)" }.joined(separator: ", ")
    }

    /// Looks up `fields` for `broker` in the sources above.
    ///
    /// - Parameters:
    ///   - optionalFields: read when present, never reported missing.
    ///   - environment: supplies `CREDENTIALS_DIRECTORY`, `XDG_CONFIG_HOME` and `HOME`.
    package static func load(
        broker: String,
        fields: [String],
        optionalFields: [String] = [],
        explicit: [String: String] = [:],
        settings: BrokerSettings = BrokerSettings(),
        environment: [String: String]
    ) throws(BrokerCredentialsError) -> BrokerCredentials {
        let credentialsDirectory = environment["CREDENTIALS_DIRECTORY"].flatMap { $0.isEmpty ? nil : $0 }
        let filePath = Self.configDirectory(environment: environment).map { "\($0)/\(broker).credentials" }
        let file = try filePath.flatMap { path throws(BrokerCredentialsError) in try Self.readCredentialsFile(path) }

        var values: [String: String] = [:]
        var sources: [String: String] = [:]
        for field in fields + optionalFields {
            if let value = nonEmpty(explicit[field]) {
                (values[field], sources[field]) = (value, "ws_connect")
            } else if let directory = credentialsDirectory,
                let value = nonEmpty(try Self.readSystemdCredential(directory, broker: broker, field: field))
            {
                (values[field], sources[field]) = (value, Self.systemdCredentialPath(directory, broker: broker, field: field))
            } else if let file, let value = nonEmpty(file[field]) {
                (values[field], sources[field]) = (value, filePath ?? "")
            } else if let value = nonEmpty(settings[field]) {
                (values[field], sources[field]) = (value, "[brokers.\(broker)]")
            }
        }
        let missing = fields.filter { values[$0] == nil }
        guard missing.isEmpty else {
            var places = ["ws_connect credentials"]
            places.append(
                credentialsDirectory.map { "systemd credentials (\(Self.systemdCredentialPath($0, broker: broker, field: "<field>")))" }
                    ?? "systemd credentials (CREDENTIALS_DIRECTORY is not set)"
            )
            places.append(filePath ?? "\(broker).credentials (neither XDG_CONFIG_HOME nor HOME is set)")
            places.append("[brokers.\(broker)] in agent.toml or OPENALGO_BROKER_\(broker.uppercased())_<FIELD>")
            throw BrokerCredentialsError(
                "\(broker) credentials are missing \(missing.joined(separator: ", ")); looked in: \(places.joined(separator: "; "))"
            )
        }
        return BrokerCredentials(broker: broker, values: values, sources: sources)
    }

    /// `$XDG_CONFIG_HOME/openalgo`, or `$HOME/.config/openalgo` (the agent's configuration directory).
    static func configDirectory(environment: [String: String]) -> String? {
        if let base = environment["XDG_CONFIG_HOME"], base.hasPrefix("/") { return base + "/openalgo" }
        if let home = environment["HOME"], !home.isEmpty { return home + "/.config/openalgo" }
        return nil
    }

    static func systemdCredentialPath(_ directory: String, broker: String, field: String) -> String {
        "\(directory)/\(broker)-\(String(field.map { $0 == "_" ? "-" : $0 }))"
    }

    private static func readSystemdCredential(_ directory: String, broker: String, field: String) throws(BrokerCredentialsError) -> String? {
        let path = Self.systemdCredentialPath(directory, broker: broker, field: field)
        guard let text = try readPrivateFile(path, requirePrivate: false) else { return nil }
        return text
    }

    /// Parses `field = value` lines.
    static func readCredentialsFile(_ path: String) throws(BrokerCredentialsError) -> [String: String]? {
        guard let text = try readPrivateFile(path, requirePrivate: true) else { return nil }
        var values: [String: String] = [:]
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = trimmed(rawLine)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw BrokerCredentialsError("\(path) line \(number + 1): expected 'field = value'")
            }
            let key = trimmed(line[..<equals])
            var value = trimmed(line[line.index(after: equals)...])
            if value.hasPrefix("\"") {
                guard value.count >= 2, value.hasSuffix("\"") else {
                    throw BrokerCredentialsError("\(path) line \(number + 1): the quoted value of '\(key)' has no closing quote")
                }
                value = String(value.dropFirst().dropLast())
            }
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                throw BrokerCredentialsError("\(path) line \(number + 1): '\(key)' is not a field name")
            }
            values[key] = value
        }
        return values
    }

    /// The file's text, `nil` when it does not exist; refuses files others can read.
    private static func readPrivateFile(_ path: String, requirePrivate: Bool) throws(BrokerCredentialsError) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        if requirePrivate && info.st_mode & 0o077 != 0 {
            throw BrokerCredentialsError("refusing to use \(path): other users can read it; run 'chmod 600 \(path)'")
        }
        guard let file = fopen(path, "r") else {
            throw BrokerCredentialsError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
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

/// Credentials are missing or unreadable; the message says which fields and where they were looked for.
package struct BrokerCredentialsError: Error, Sendable, Equatable, CustomStringConvertible {
    package var message: String

    package init(_ message: String) {
        self.message = message
    }

    package var description: String { self.message }
}

private func nonEmpty(_ value: String?) -> String? {
    guard let value else { return nil }
    let text = trimmed(Substring(value))
    return text.isEmpty ? nil : text
}

private func trimmed(_ text: Substring) -> String {
    var slice = text
    while let first = slice.first, first.isWhitespace { slice = slice.dropFirst() }
    while let last = slice.last, last.isWhitespace { slice = slice.dropLast() }
    return String(slice)
}
