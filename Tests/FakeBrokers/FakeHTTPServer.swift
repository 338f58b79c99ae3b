import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A plain HTTP/1.1 server on 127.0.0.1 (ephemeral port) standing in for a broker's file
/// downloads (instrument masters) in tests: fixed answers per path, every request recorded.
public final class FakeHTTPServer: Sendable {
    /// One canned answer.
    public struct Response: Sendable {
        public var status: HTTPResponseStatus
        public var headers: [(String, String)]
        public var body: [UInt8]

        public init(status: HTTPResponseStatus = .ok, headers: [(String, String)] = [], body: [UInt8]) {
            self.status = status
            self.headers = headers
            self.body = body
        }

        public static func redirect(to location: String) -> Response {
            Response(status: .found, headers: [("Location", location)], body: [])
        }
    }

    public struct Request: Sendable {
        public var uri: String
        public var headers: HTTPHeaders
    }

    private struct State {
        var routes: [String: Response] = [:]
        var requests: [Request] = []
    }

    private let state: NIOLockedValueBox<State>
    private let serverChannel: any Channel

    private init(serverChannel: any Channel, state: NIOLockedValueBox<State>) {
        self.serverChannel = serverChannel
        self.state = state
    }

    public static func start() async throws -> FakeHTTPServer {
        let state = NIOLockedValueBox(State())
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(RouteHandler(state: state))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return FakeHTTPServer(serverChannel: channel, state: state)
    }

    public var port: Int { self.serverChannel.localAddress!.port! }

    /// `http://127.0.0.1:<port><path>`.
    public func url(_ path: String) -> String { "http://127.0.0.1:\(self.port)\(path)" }

    /// Answers `GET path` (the request target without its query) with `response`; unknown paths get 404.
    public func route(_ path: String, _ response: Response) {
        self.state.withLockedValue { $0.routes[path] = response }
    }

    public var requests: [Request] { self.state.withLockedValue { $0.requests } }

    public func shutdown() async {
        try? await self.serverChannel.close()
    }

    private final class RouteHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private let state: NIOLockedValueBox<State>
        private var head: HTTPRequestHead?

        init(state: NIOLockedValueBox<State>) {
            self.state = state
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
            case .body:
                return
            case .end:
                guard let head = self.head else { return }
                let path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "/")
                let response =
                    self.state.withLockedValue { state in
                        state.requests.append(Request(uri: head.uri, headers: head.headers))
                        return state.routes[path]
                    } ?? Response(status: .notFound, body: Array("no such file".utf8))
                var headers = HTTPHeaders(response.headers)
                headers.add(name: "Content-Length", value: "\(response.body.count)")
                headers.add(name: "Connection", value: "close")
                context.write(
                    self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))),
                    promise: nil
                )
                context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
                let channel = context.channel
                context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }
}
