import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Fetches one file with an HTTP/1.1 `GET`, for instrument masters: `https://` with certificate
/// verification (plain `http://` for local test servers), a few redirects followed, the whole body
/// collected up to a size limit.
///
/// It asks for no compression (no `Accept-Encoding`), so servers send the plain body; a response
/// compressed anyway is refused, because the package has no decompressor.
struct HTTPFileDownloader: Sendable {
    struct Configuration: Sendable {
        /// For the whole exchange: connect, TLS, request and body, per hop.
        var timeout: TimeAmount = .seconds(120)
        var maximumRedirects = 5
        /// Instrument masters are tens of MB (Angel's JSON is the largest); far more is not one.
        var maximumBodyBytes = 512 << 20
        var tls: TLSConfiguration = .makeClientConfiguration()
    }

    let configuration: Configuration

    init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The body of a `200` answer to `GET url`, after at most ``Configuration/maximumRedirects`` redirects.
    func get(_ url: String, on eventLoop: any EventLoop) async throws(HTTPDownloadError) -> [UInt8] {
        var location = try HTTPURL(url)
        var redirects = 0
        while true {
            let response = try await self.fetch(location, on: eventLoop)
            switch response.head.status.code {
            case 200:
                if let encoding = response.head.headers.first(name: "content-encoding"), encoding.lowercased() != "identity" {
                    throw HTTPDownloadError("\(location) answered with Content-Encoding '\(encoding)', which this agent cannot decode")
                }
                return response.body
            case 301, 302, 303, 307, 308:
                guard let target = response.head.headers.first(name: "location") else {
                    throw HTTPDownloadError("\(location) redirected (HTTP \(response.head.status.code)) without a Location header")
                }
                redirects += 1
                guard redirects <= self.configuration.maximumRedirects else {
                    throw HTTPDownloadError("\(url) redirected more than \(self.configuration.maximumRedirects) times")
                }
                location = try location.resolving(target)
            default:
                let status = response.head.status
                let excerpt = String(decoding: response.body.prefix(200), as: UTF8.self)
                throw HTTPDownloadError("\(location) answered HTTP \(status.code) \(status.reasonPhrase)\(excerpt.isEmpty ? "" : ": \(excerpt)")")
            }
        }
    }

    private func fetch(_ url: HTTPURL, on eventLoop: any EventLoop) async throws(HTTPDownloadError) -> HTTPDownloadResponse {
        let sslContext: NIOSSLContext?
        do {
            sslContext = url.isSecure ? try NIOSSLContext(configuration: self.configuration.tls) : nil
        } catch {
            throw HTTPDownloadError("cannot set up TLS for \(url): \(error)")
        }
        let promise = eventLoop.makePromise(of: HTTPDownloadResponse.self)
        let limit = self.configuration.maximumBodyBytes
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(self.configuration.timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let sslContext {
                        let hostname = url.host.isIPAddress ? nil : url.host
                        try sync.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: hostname))
                    }
                    try sync.addHTTPClientHandlers()
                    try sync.addHandler(HTTPResponseCollector(url: url, limit: limit, promise: promise))
                }
            }
        let timeout = eventLoop.scheduleTask(in: self.configuration.timeout) {
            promise.fail(HTTPDownloadError("\(url) did not answer within \(self.configuration.timeout.secondsDescription)"))
        }
        bootstrap.connect(host: url.host, port: url.port).whenComplete { result in
            switch result {
            case .success(let channel):
                promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                var headers = HTTPHeaders()
                headers.add(name: "Host", value: url.hostHeader)
                headers.add(name: "User-Agent", value: "openalgo-agent")
                headers.add(name: "Accept", value: "*/*")
                headers.add(name: "Connection", value: "close")
                let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.target, headers: headers)
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { promise.fail($0) }
            case .failure(let error):
                promise.fail(HTTPDownloadError("cannot connect to \(url): \(error)"))
            }
        }
        do {
            let response = try await promise.futureResult.get()
            timeout.cancel()
            return response
        } catch let error as HTTPDownloadError {
            timeout.cancel()
            throw error
        } catch {
            timeout.cancel()
            throw HTTPDownloadError("downloading \(url) failed: \(error)")
        }
    }
}

/// Why a download failed, as a sentence naming the URL (never its query, which may hold a token).
struct HTTPDownloadError: Error, Sendable, CustomStringConvertible {
    var message: String

    init(_ message: String) {
        self.message = message
    }

    var description: String { self.message }
}

struct HTTPDownloadResponse: Sendable {
    var head: HTTPResponseHead
    var body: [UInt8]
}

/// An `http://` or `https://` address, parsed with the same authority and target rules as
/// ``WebSocketURL``.
struct HTTPURL: Sendable, CustomStringConvertible {
    var isSecure: Bool
    var host: String
    var port: Int
    var target: String
    var hostHeader: String

    init(_ text: String) throws(HTTPDownloadError) {
        let lowered = text.lowercased()
        let webSocketForm: String
        if lowered.hasPrefix("https://") {
            webSocketForm = "wss://" + text.dropFirst(8)
        } else if lowered.hasPrefix("http://") {
            webSocketForm = "ws://" + text.dropFirst(7)
        } else {
            throw HTTPDownloadError("'\(text)' is not an http:// or https:// URL")
        }
        let parsed: WebSocketURL
        do {
            parsed = try WebSocketURL(webSocketForm)
        } catch {
            throw HTTPDownloadError("'\(text)' is not a usable URL: \(error.message)")
        }
        self.isSecure = parsed.isSecure
        self.host = parsed.host
        self.port = parsed.port
        self.target = parsed.target
        self.hostHeader = parsed.hostHeader
    }

    /// A redirect's `Location`: absolute, or a path on the same server.
    func resolving(_ location: String) throws(HTTPDownloadError) -> HTTPURL {
        if location.hasPrefix("/") {
            var next = self
            next.target = location
            return next
        }
        return try HTTPURL(location)
    }

    /// Scheme, host and path; the query is elided because it may carry credentials.
    var description: String {
        let path = self.target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "/"
        return "\(self.isSecure ? "https" : "http")://\(self.hostHeader)\(path)\(self.target.contains("?") ? "?…" : "")"
    }
}

/// Collects one response and completes the promise at its end (or with the reason it never came).
private final class HTTPResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let url: HTTPURL
    private let limit: Int
    private let promise: EventLoopPromise<HTTPDownloadResponse>
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []

    init(url: HTTPURL, limit: Int, promise: EventLoopPromise<HTTPDownloadResponse>) {
        self.url = url
        self.limit = limit
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length <= self.limit {
                self.body.reserveCapacity(length)
            }
        case .body(let bytes):
            guard self.body.count + bytes.readableBytes <= self.limit else {
                self.promise.fail(HTTPDownloadError("\(self.url) sent more than \(self.limit >> 20) MiB"))
                context.close(promise: nil)
                return
            }
            self.body.append(contentsOf: bytes.readableBytesView)
        case .end:
            guard let head = self.head else { return }
            self.promise.succeed(HTTPDownloadResponse(head: head, body: self.body))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.promise.fail(HTTPDownloadError("downloading \(self.url) failed: \(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.promise.fail(HTTPDownloadError("\(self.url) closed the connection before the response was complete"))
        context.fireChannelInactive()
    }
}

extension String {
    /// An IPv4 or IPv6 literal, which TLS must not send as SNI.
    fileprivate var isIPAddress: Bool {
        (try? SocketAddress(ipAddress: self, port: 0)) != nil
    }
}
