import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a broker adapter gets its instrument master (Kite's `instruments` CSV, Angel One's
/// scrip-master JSON, Dhan's scrip-master CSV), as the broker publishes it, in this order:
///
/// 1. the setting `instruments_file`: a local file, used as is (tests, offline use, a master
///    fetched by other means); an unreadable file is an error, never silently skipped;
/// 2. the cache `$XDG_CACHE_HOME/openalgo/<cache file>` (or `~/.cache/openalgo/…`) when it was
///    written **today**, by the local calendar: brokers publish a new master every trading
///    morning, so a copy from an earlier day may lack new contracts;
/// 3. a download from the setting `instruments_url` (or the broker's public URL) over HTTPS
///    with certificate verification (`http://` is accepted for local test servers), then
///    written to the cache atomically with mode 0600. If the download fails and an older
///    cached copy exists, that copy is used with a warning: yesterday's master streams every
///    instrument that still exists, which beats no feed at all.
///
/// Downloads ask for the uncompressed body (no `Accept-Encoding`).
package struct InstrumentMasterSource: Sendable {
    /// The canonical broker name, for messages and the `[brokers.<name>]` table they point at.
    package let broker: String
    package let settings: BrokerSettings
    /// Where the broker publishes its master, used when `instruments_url` is not set.
    package let defaultURL: String
    /// The cache file's name under the cache directory (`zerodha-instruments.csv`).
    package let cacheFileName: String
    private let environment: [String: String]
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let downloader: HTTPFileDownloader

    /// - Parameters:
    ///   - environment: supplies `XDG_CACHE_HOME` and `HOME` for the cache directory.
    ///   - eventLoop: where the download runs.
    package init(
        broker: String,
        settings: BrokerSettings,
        defaultURL: String,
        cacheFileName: String,
        environment: [String: String],
        eventLoop: any EventLoop,
        logger: Logger
    ) {
        self.broker = broker
        self.settings = settings
        self.defaultURL = defaultURL
        self.cacheFileName = cacheFileName
        self.environment = environment
        self.eventLoop = eventLoop
        self.logger = logger
        self.downloader = HTTPFileDownloader()
    }

    /// The cache file, or `nil` when neither `XDG_CACHE_HOME` nor `HOME` is set.
    package var cachePath: String? {
        Self.cacheDirectory(environment: self.environment).map { "\($0)/\(self.cacheFileName)" }
    }

    /// The URL a download uses.
    package var url: String { self.settings["instruments_url"] ?? self.defaultURL }

    /// The master's bytes from the first source above that has them.
    package func load() async throws(BrokerConfigurationError) -> [UInt8] {
        if let path = self.settings["instruments_file"] {
            switch readWholeFile(path) {
            case .success(let bytes):
                self.logger.info("instrument master from instruments_file", metadata: ["path": "\(path)", "bytes": "\(bytes.count)"])
                return bytes
            case .failure(let error):
                throw BrokerConfigurationError(
                    "cannot read the \(self.broker) instrument master '\(path)' ([brokers.\(self.broker)] instruments_file): \(error.message)"
                )
            }
        }
        let cachePath = self.cachePath
        var staleCopy: String?
        if let cachePath, let modified = modificationTime(cachePath) {
            if isToday(modified), case .success(let bytes) = readWholeFile(cachePath), !bytes.isEmpty {
                self.logger.info("instrument master from today's cache", metadata: ["path": "\(cachePath)", "bytes": "\(bytes.count)"])
                return bytes
            }
            staleCopy = cachePath
        }
        let url = self.url
        let bytes: [UInt8]
        do throws(HTTPDownloadError) {
            bytes = try await self.downloader.get(url, on: self.eventLoop)
            guard !bytes.isEmpty else { throw HTTPDownloadError("\(try HTTPURL(url)) sent an empty file") }
        } catch {
            if let staleCopy, case .success(let old) = readWholeFile(staleCopy), !old.isEmpty {
                self.logger.warning(
                    "could not download a new instrument master; using the cached copy from an earlier day",
                    metadata: ["path": "\(staleCopy)", "error": "\(error.message)"]
                )
                return old
            }
            throw BrokerConfigurationError(
                "could not download the \(self.broker) instrument master: \(error.message); set instruments_file in "
                    + "[brokers.\(self.broker)] (or OPENALGO_BROKER_\(self.broker.uppercased())_INSTRUMENTS_FILE) to a local copy, "
                    + "or instruments_url to another source"
            )
        }
        self.logger.info("instrument master downloaded", metadata: ["bytes": "\(bytes.count)"])
        if let cachePath {
            if case .failure(let error) = writeFileAtomically(cachePath, bytes) {
                self.logger.warning("could not cache the instrument master", metadata: ["path": "\(cachePath)", "error": "\(error.message)"])
            }
        }
        return bytes
    }

    /// `$XDG_CACHE_HOME/openalgo`, or `$HOME/.cache/openalgo`.
    static func cacheDirectory(environment: [String: String]) -> String? {
        if let base = environment["XDG_CACHE_HOME"], base.hasPrefix("/") { return base + "/openalgo" }
        if let home = environment["HOME"], !home.isEmpty { return home + "/.cache/openalgo" }
        return nil
    }
}

private struct FileError: Error {
    var message: String

    init(_ message: String) {
        self.message = message
    }

    static func errno(_ operation: String) -> FileError {
        FileError("\(operation): \(String(cString: strerror(Glibc.errno)))")
    }
}

private func modificationTime(_ path: String) -> time_t? {
    var info = stat()
    guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
    return info.st_mtim.tv_sec
}

/// Whether `time` falls on today's date in the local time zone.
private func isToday(_ time: time_t) -> Bool {
    var now = Glibc.time(nil)
    var then = time
    var today = tm()
    var day = tm()
    guard localtime_r(&now, &today) != nil, localtime_r(&then, &day) != nil else { return false }
    return today.tm_year == day.tm_year && today.tm_yday == day.tm_yday
}

private func readWholeFile(_ path: String) -> Result<[UInt8], FileError> {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return .failure(.errno("cannot open it")) }
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count < 0 {
            if Glibc.errno == EINTR { continue }
            return .failure(.errno("cannot read it"))
        }
        if count == 0 { return .success(bytes) }
        bytes.append(contentsOf: chunk[0..<count])
    }
}

/// Writes `bytes` to a private temporary file beside `path`, then renames it over `path`, so a
/// reader never sees half a master. Creates the directory (0700) when needed.
private func writeFileAtomically(_ path: String, _ bytes: [UInt8]) -> Result<Void, FileError> {
    guard let slash = path.lastIndex(of: "/") else { return .failure(FileError("'\(path)' is not an absolute path")) }
    let directory = String(path[..<slash])
    var prefix = ""
    for component in directory.split(separator: "/") {
        prefix += "/" + component
        if mkdir(prefix, 0o700) != 0 && Glibc.errno != EEXIST { return .failure(.errno("cannot create \(prefix)")) }
    }
    let temporary = "\(path).tmp-\(getpid())"
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else { return .failure(.errno("cannot create \(temporary)")) }
    var written = 0
    while written < bytes.count {
        let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) }
        if count < 0 {
            if Glibc.errno == EINTR { continue }
            let error = FileError.errno("cannot write \(temporary)")
            close(descriptor)
            unlink(temporary)
            return .failure(error)
        }
        written += count
    }
    guard fsync(descriptor) == 0, close(descriptor) == 0 else {
        unlink(temporary)
        return .failure(.errno("cannot write \(temporary)"))
    }
    guard rename(temporary, path) == 0 else {
        let error = FileError.errno("cannot rename \(temporary) to \(path)")
        unlink(temporary)
        return .failure(error)
    }
    return .success(())
}

extension BrokerAdapterContext {
    /// Loads and parses this broker's instrument master (file, today's cache, or a download), the
    /// first step of every adapter's `connect`; a file that cannot be used is an error naming it.
    ///
    /// - Parameters:
    ///   - defaultURL: where the broker publishes its master.
    ///   - cacheFileName: the name of the daily copy under `$XDG_CACHE_HOME/openalgo/`.
    ///   - parse: the broker's own format (Kite CSV, SmartAPI JSON, Dhan CSV).
    package func loadSymbolMaster(
        defaultURL: String,
        cacheFileName: String,
        parse: ([UInt8]) throws(SymbolMasterError) -> SymbolMaster
    ) async throws -> SymbolMaster {
        let source = InstrumentMasterSource(
            broker: self.broker,
            settings: self.settings,
            defaultURL: defaultURL,
            cacheFileName: cacheFileName,
            environment: self.environment,
            eventLoop: self.eventLoop,
            logger: self.logger
        )
        let bytes = try await source.load()
        let master: SymbolMaster
        do {
            master = try parse(bytes)
        } catch {
            throw BrokerConfigurationError("the \(self.broker) instrument master is unusable: \(error.message)")
        }
        self.logger.info("instrument master loaded", metadata: ["broker": "\(self.broker)", "instruments": "\(master.count)"])
        return master
    }
}
