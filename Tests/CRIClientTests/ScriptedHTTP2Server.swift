import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix

/// An HTTP/2 server (swift-nio-http2) on a unix socket in a test's folder: it keeps each call's
/// request (headers and body) and answers it, once the request has ended, with the frames given.
final class ScriptedHTTP2Server: @unchecked Sendable {
    struct Request {
        var headers: HPACKHeaders
        var body: [UInt8]
    }

    let path: String
    private var channel: Channel?
    private let lock = NSLock()
    private var received: [Request] = []

    var requests: [Request] { lock.withLock { received } }

    private init(path: String) { self.path = path }

    static func start(folder: String, answer: [HTTP2Frame.FramePayload]) async throws -> ScriptedHTTP2Server {
        let server = ScriptedHTTP2Server(path: folder + "/h2-\(UUID().uuidString.prefix(6)).sock")
        server.channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { connection in
                connection.configureHTTP2Pipeline(
                    mode: .server, connectionConfiguration: .init(), streamConfiguration: .init()
                ) { stream in
                    stream.eventLoop.makeCompletedFuture {
                        try stream.pipeline.syncOperations.addHandler(Responder(answer: answer, server: server))
                    }
                }.map { _ in }
            }
            .bind(unixDomainSocketPath: server.path).get()
        return server
    }

    func stop() { try? channel?.close().wait() }

    func keep(_ request: Request) { lock.withLock { received.append(request) } }

    final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTP2Frame.FramePayload
        typealias OutboundOut = HTTP2Frame.FramePayload

        let answer: [HTTP2Frame.FramePayload]
        let server: ScriptedHTTP2Server
        var request = Request(headers: [:], body: [])

        init(answer: [HTTP2Frame.FramePayload], server: ScriptedHTTP2Server) {
            self.answer = answer
            self.server = server
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let ended: Bool
            switch unwrapInboundIn(data) {
            case .headers(let headers):
                request.headers.add(contentsOf: headers.headers)
                ended = headers.endStream
            case .data(let data):
                if case .byteBuffer(let bytes) = data.data { request.body += bytes.readableBytesView }
                ended = data.endStream
            default:
                ended = false
            }
            guard ended else { return }
            server.keep(request)
            for frame in answer { context.write(wrapOutboundOut(frame), promise: nil) }
            context.flush()
        }
    }
}
