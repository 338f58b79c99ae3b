#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The identity of a broker's credential files (path, size, modification time, inode) as they
/// are now, never their contents: two fingerprints differ when a new token was written, so a feed
/// that failed on yesterday's token can retry the moment today's arrives.
///
/// It covers the sources ``BrokerCredentials`` reads from files: the broker's credentials file
/// and its systemd credentials (`$CREDENTIALS_DIRECTORY/<broker>-*`).
package struct CredentialsFingerprint: Sendable, Equatable {
    private var files: [String] = []

    /// No files: what a feed that never started has.
    package init() {}

    package init(broker: String, environment: [String: String]) {
        var paths: [String] = []
        if let directory = BrokerCredentials.configDirectory(environment: environment) {
            paths.append("\(directory)/\(broker).credentials")
        }
        if let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty, let listing = opendir(directory) {
            defer { closedir(listing) }
            while let entry = readdir(listing) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name.hasPrefix("\(broker)-") { paths.append("\(directory)/\(name)") }
            }
        }
        self.files = paths.sorted().compactMap { path in
            var status = stat()
            guard stat(path, &status) == 0 else { return nil }
            return "\(path) \(status.st_ino) \(status.st_size) \(status.st_mtim.tv_sec).\(status.st_mtim.tv_nsec)"
        }
    }
}
