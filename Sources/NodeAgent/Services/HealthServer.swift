import FoundationEssentials
import Glibc
import HostSystem
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// The health endpoint: `/healthz` (the agent works), `/readyz` (the node can pull), `/status`
/// (JSON: every check with its reason and timings), `/metrics` (Prometheus text). It serves what
/// the last reconcile found; requests never trigger probes. Bounded: GET and HEAD only, no
/// request body, at most `maxConnections` at once, and a client that sends nothing for a few
/// seconds is cut off. (NIO's HTTP parser bounds the header block.)
struct HealthServer: Service {
    let host: String
    let port: Int
    let cache: StatusCache
    let logger: Logger
    static let maxConnections = 64
    static let idleTimeout = TimeAmount.seconds(5)

    func run() async throws {
        // One event-loop thread, whatever the node's size: NIO's shared group has one per core
        // (96 threads and their stacks on a 96-core node) for an endpoint polled every few seconds.
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            try await serve(on: loops)
        } catch {
            try? await loops.shutdownGracefully()
            throw error
        }
        try await loops.shutdownGracefully()
    }

    func serve(on loops: MultiThreadedEventLoopGroup) async throws {
        let counter = ConnectionCounter()
        let channel = try await ServerBootstrap(group: loops)
            .serverChannelOption(.backlog, value: 128)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [cache] channel in
                guard counter.open() else { return channel.close() }
                channel.closeFuture.whenComplete { _ in counter.close() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandlers([IdleStateHandler(readTimeout: Self.idleTimeout), HealthHandler(cache: cache)])
                }
            }
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port).get()
        logger.info("health endpoint listening", metadata: ["address": "\(host):\(port)"])
        // Closing the channel from the shutdown handler: awaiting closeFuture alone ignored SIGTERM (SWIFT-NOTES).
        try await withGracefulShutdownHandler {
            try await channel.closeFuture.get()
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
    }
}

/// Counts open connections; refuses past the bound.
final class ConnectionCounter: @unchecked Sendable {
    private let lock = PlainLock()
    private var count = 0
    func open() -> Bool { lock.withLock { guard count < HealthServer.maxConnections else { return false }; count += 1; return true } }
    func close() { lock.withLock { count -= 1 } }
}

final class HealthHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let cache: StatusCache
    private var head: HTTPRequestHead?
    private var bodyBytes = 0

    init(cache: StatusCache) { self.cache = cache }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            bodyBytes = 0
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
            if bodyBytes > 0, head != nil {
                respond(context, .payloadTooLarge, "text/plain", Data("no request body is accepted\n".utf8), close: true)
                head = nil
            }
        case .end:
            guard let h = head else { return }
            head = nil
            route(context, h)
        }
    }

    func route(_ context: ChannelHandlerContext, _ h: HTTPRequestHead) {
        guard h.method == .GET || h.method == .HEAD else {
            respond(context, .methodNotAllowed, "text/plain", Data("GET or HEAD\n".utf8), close: false, headOnly: false)
            return
        }
        let path = h.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? h.uri
        let s = cache.current
        let headOnly = h.method == .HEAD
        switch path {
        case "/healthz":
            respond(context, s.live ? .ok : .serviceUnavailable, "text/plain", Data("ok\n".utf8), close: !h.isKeepAlive, headOnly: headOnly)
        case "/readyz":
            respond(context, s.ready ? .ok : .serviceUnavailable, "text/plain", Data((s.readyReason + "\n").utf8), close: !h.isKeepAlive, headOnly: headOnly)
        case "/status":
            respond(context, .ok, "application/json", s.status, close: !h.isKeepAlive, headOnly: headOnly)
        case "/metrics":
            respond(context, .ok, "text/plain; version=0.0.4", s.metrics, close: !h.isKeepAlive, headOnly: headOnly)
        default:
            respond(context, .notFound, "text/plain", Data("not found: /healthz, /readyz, /status, /metrics\n".utf8), close: !h.isKeepAlive, headOnly: headOnly)
        }
    }

    func respond(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ type: String, _ body: Data,
                 close: Bool, headOnly: Bool = false) {
        var headers = HTTPHeaders([("Content-Type", type), ("Content-Length", String(body.count)), ("Cache-Control", "no-store")])
        if close { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if !headOnly {
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if close { done.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) } }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
    }
}
