import BrokerKit
import FakeBrokers
import Logging
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Instrument master source: file, daily cache, download", .serialized)
struct InstrumentMasterSourceTests {
    let home: String
    let eventLoop = MultiThreadedEventLoopGroup.singleton.next()

    init() {
        var template = Array("/tmp/oa-master-XXXXXX".utf8CString)
        self.home = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    var environment: [String: String] { ["HOME": self.home, "XDG_CACHE_HOME": "\(self.home)/cache"] }
    var cachePath: String { "\(self.home)/cache/openalgo/kite-instruments.csv" }

    func source(_ settings: [String: String], defaultURL: String = "http://127.0.0.1:9/instruments") -> InstrumentMasterSource {
        InstrumentMasterSource(
            broker: "zerodha",
            settings: BrokerSettings(settings),
            defaultURL: defaultURL,
            cacheFileName: "kite-instruments.csv",
            environment: self.environment,
            eventLoop: self.eventLoop,
            logger: Logger(label: "test")
        )
    }

    func write(_ text: String, to path: String) throws {
        let directory = String(path[..<path.lastIndex(of: "/")!])
        var prefix = ""
        for component in directory.split(separator: "/") {
            prefix += "/" + component
            mkdir(prefix, 0o700)
        }
        let file = try #require(fopen(path, "w"))
        fputs(text, file)
        fclose(file)
    }

    func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var byte = fgetc(file)
        while byte != EOF {
            bytes.append(UInt8(byte))
            byte = fgetc(file)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Sets the file's modification time `days` days back.
    func age(_ path: String, days: Int) {
        let then = time(nil) - days * 86_400
        var times = [timeval(tv_sec: then, tv_usec: 0), timeval(tv_sec: then, tv_usec: 0)]
        utimes(path, &times)
    }

    func mode(_ path: String) -> mode_t {
        var info = stat()
        stat(path, &info)
        return info.st_mode & 0o777
    }

    @Test("instruments_file wins over a fresh cache and the URL")
    func fileWins() async throws {
        try self.write("from the file", to: "\(self.home)/master.csv")
        try self.write("from the cache", to: self.cachePath)
        let bytes = try await self.source(["instruments_file": "\(self.home)/master.csv"]).load()
        #expect(String(decoding: bytes, as: UTF8.self) == "from the file")
    }

    @Test("an unreadable instruments_file is an error naming the file and the setting")
    func unreadableFile() async throws {
        let path = "\(self.home)/missing.csv"
        let error = await #expect(throws: BrokerConfigurationError.self) { try await self.source(["instruments_file": path]).load() }
        #expect(error?.message.contains(path) == true)
        #expect(error?.message.contains("[brokers.zerodha] instruments_file") == true)
    }

    @Test("a cache written today is used without downloading")
    func freshCache() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route("/instruments", .init(body: Array("downloaded".utf8)))
        try self.write("cached today", to: self.cachePath)
        let bytes = try await self.source(["instruments_url": server.url("/instruments")]).load()
        #expect(String(decoding: bytes, as: UTF8.self) == "cached today")
        #expect(server.requests.isEmpty)
    }

    @Test("a cache from an earlier day is fetched again and replaced, privately")
    func staleCache() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route("/instruments", .init(body: Array("today's master".utf8)))
        try self.write("yesterday's master", to: self.cachePath)
        self.age(self.cachePath, days: 2)
        let bytes = try await self.source(["instruments_url": server.url("/instruments")]).load()
        #expect(String(decoding: bytes, as: UTF8.self) == "today's master")
        #expect(server.requests.count == 1)
        #expect(self.read(self.cachePath) == "today's master")
        #expect(self.mode(self.cachePath) == 0o600)
    }

    @Test("with no cache, the default URL is downloaded through a redirect and cached")
    func downloadFollowsRedirect() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route("/instruments", .redirect(to: "/files/instruments.csv"))
        server.route("/files/instruments.csv", .init(body: Array("instrument_token,tradingsymbol\n".utf8)))
        let bytes = try await self.source([:], defaultURL: server.url("/instruments")).load()
        #expect(String(decoding: bytes, as: UTF8.self) == "instrument_token,tradingsymbol\n")
        #expect(server.requests.map(\.uri) == ["/instruments", "/files/instruments.csv"])
        #expect(server.requests.first?.headers["Accept-Encoding"] == [], "the plain body is asked for")
        #expect(self.read(self.cachePath) == "instrument_token,tradingsymbol\n")
    }

    @Test("a failed download with no cache names the URL's answer and what to set")
    func downloadFailure() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        let error = await #expect(throws: BrokerConfigurationError.self) {
            try await self.source(["instruments_url": server.url("/gone?token=secret")]).load()
        }
        let message = try #require(error?.message)
        #expect(message.contains("HTTP 404"))
        #expect(message.contains(server.url("/gone")))
        #expect(!message.contains("secret"), "queries may carry tokens")
        #expect(message.contains("instruments_file"))
        #expect(message.contains("OPENALGO_BROKER_ZERODHA_INSTRUMENTS_FILE"))
    }

    @Test("a failed download falls back to an older cached copy")
    func staleCacheWhenOffline() async throws {
        try self.write("older master", to: self.cachePath)
        self.age(self.cachePath, days: 3)
        let bytes = try await self.source([:]).load()
        #expect(String(decoding: bytes, as: UTF8.self) == "older master")
    }
}
