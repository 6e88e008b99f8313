import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix

/// One unary gRPC call on a connection of its own to a unix socket: HTTP/2 by swift-nio-http2,
/// gRPC's framing by `GRPCFraming` and `GRPCResponseReader`. The caller bounds the time
/// (`CRIClient.within`); cancelling the task closes the connection, so a call that never gets an
/// answer ends at once.
enum GRPCCall {
    typealias Stream = NIOAsyncChannel<HTTP2Frame.FramePayload, HTTP2Frame.FramePayload>

    /// The response's one message, or the status the call ended with. Throws when the socket
    /// could not be connected to or the HTTP/2 connection could not be set up.
    static func unary(
        socketPath: String, service: String, method: String, message: [UInt8], timeoutSeconds: Double,
        maxMessageBytes: Int = GRPCFraming.maxMessageBytes
    ) async throws -> Result<[UInt8], GRPCStatus> {
        let milliseconds = Int64(min(max(timeoutSeconds, 0.001), 86_400) * 1000)
        let (connection, multiplexer) = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.milliseconds(milliseconds))
            .connect(unixDomainSocketPath: socketPath) { channel in
                channel.configureAsyncHTTP2Pipeline(mode: .client) { stream in stream.eventLoop.makeSucceededVoidFuture() }
                    .map { (channel, $0) }
            }
        let headers = GRPCFraming.requestHeaders(service: service, method: method, timeoutSeconds: timeoutSeconds)
        let outcome: Result<[UInt8], GRPCStatus>
        do {
            outcome = try await withTaskCancellationHandler {
                let stream = try await multiplexer.openStream { channel in
                    channel.eventLoop.makeCompletedFuture { try Stream(wrappingChannelSynchronously: channel) }
                }
                return try await exchange(stream, headers, message, maxMessageBytes: maxMessageBytes)
            } onCancel: {
                connection.close(promise: nil)
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try? await connection.close()
        return outcome
    }

    /// Sends the request on `stream` and reads its response until the outcome is known. A stream
    /// the runtime reset or a connection that broke ends the call with a status, as grpc's own
    /// clients do (not the runtime's words, but its doing); cancellation is rethrown.
    static func exchange(
        _ stream: Stream, _ headers: HPACKHeaders, _ message: [UInt8], maxMessageBytes: Int
    ) async throws -> Result<[UInt8], GRPCStatus> {
        var reader = GRPCResponseReader(maxMessageBytes: maxMessageBytes)
        do {
            return try await stream.executeThenClose { inbound, outbound in
                try await outbound.write(.headers(.init(headers: headers)))
                try await outbound.write(.data(.init(data: .byteBuffer(GRPCFraming.lengthPrefixed(message)), endStream: true)))
                for try await frame in inbound {
                    if let outcome = reader.consume(frame) { return outcome }
                }
                return .failure(reader.ended())
            }
        } catch let closed as NIOHTTP2Errors.StreamClosed {
            return .failure(GRPCStatus(reset: closed.errorCode))
        } catch {
            try Task.checkCancellation()
            return .failure(reader.ended())
        }
    }
}
