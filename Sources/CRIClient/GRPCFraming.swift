import NIOCore
import NIOHPACK
import NIOHTTP2

// gRPC's own layer over HTTP/2 (grpc/doc/PROTOCOL-HTTP2.md), for one unary call: the request's
// headers, the 5-byte length prefix of each message, and the response read back to one message
// or a status. HTTP/2 itself (frames, HPACK, flow control) is swift-nio-http2's. This is written
// here rather than taken from grpc-swift because the transport grpc-swift has for a unix socket
// always builds swift-nio-ssl and BoringSSL too (docs/evidence.md, "A leaner CRI transport").

package enum GRPCFraming {
    /// gRPC's usual bound on a received message (grpc-swift's and grpc-go's default, 4 MiB).
    package static let maxMessageBytes = 4 * 1024 * 1024

    /// The request's headers: `POST /service/method`, gRPC's content type, `te: trailers`, and the
    /// time left as `grpc-timeout` (milliseconds, at most 8 digits, else seconds).
    package static func requestHeaders(service: String, method: String, timeoutSeconds: Double) -> HPACKHeaders {
        let milliseconds = max(1, Int((min(max(timeoutSeconds, 0), 86_400) * 1000).rounded(.up)))
        let timeout = milliseconds <= 99_999_999 ? "\(milliseconds)m" : "\(milliseconds / 1000)S"
        return [
            ":method": "POST", ":scheme": "http", ":path": "/\(service)/\(method)", ":authority": "localhost",
            "content-type": "application/grpc", "te": "trailers", "grpc-timeout": timeout, "user-agent": "node-agent-cri",
        ]
    }

    /// A message as it travels: uncompressed (0), its length (4 bytes, big-endian), its bytes.
    package static func lengthPrefixed(_ message: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(5 + message.count)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(message.count))
        buffer.writeBytes(message)
        return buffer
    }
}

/// The response to a unary call, frame by frame: its headers (`:status` 200, a gRPC content
/// type), one length-prefixed message, its trailers. `consume` says the outcome once it is known:
/// the message (status OK), or the status the runtime or its stream ended the call with.
package struct GRPCResponseReader {
    package var maxMessageBytes = GRPCFraming.maxMessageBytes
    private var headersSeen = false
    private var received = ByteBuffer()

    package init(maxMessageBytes: Int = GRPCFraming.maxMessageBytes) { self.maxMessageBytes = maxMessageBytes }

    package mutating func consume(_ frame: HTTP2Frame.FramePayload) -> Result<[UInt8], GRPCStatus>? {
        switch frame {
        case .headers(let headers):
            if !headersSeen {
                let status = headers.headers.first(name: ":status")
                // Informational answers (1xx) may come before the response (RFC 9113 8.1): skipped;
                // one that ends the stream is no response at all.
                if let status, status.count == 3, status.hasPrefix("1") {
                    guard headers.endStream else { return nil }
                    return .failure(
                        GRPCStatus(
                            code: GRPCStatus.internalError,
                            message: "the runtime ended the call with an informational HTTP status \(status)"))
                }
                headersSeen = true
                if let status, status != "200" {
                    return .failure(GRPCStatus(httpStatus: status))
                }
                let type = headers.headers.first(name: "content-type") ?? ""
                guard type.hasPrefix("application/grpc") else {
                    return .failure(
                        GRPCStatus(code: GRPCStatus.unknown, message: "the runtime answered with content-type \"\(type)\", not gRPC's"))
                }
                // A trailers-only answer: the status in the headers, no message.
                return headers.endStream ? finish(trailers: headers.headers) : nil
            }
            return finish(trailers: headers.headers)
        case .data(let data):
            guard headersSeen else {
                return .failure(GRPCStatus(code: GRPCStatus.internalError, message: "the runtime sent data before headers"))
            }
            if case .byteBuffer(var bytes) = data.data { received.writeBuffer(&bytes) }
            if let tooLarge = checkSize() { return .failure(tooLarge) }
            return data.endStream
                ? .failure(GRPCStatus(code: GRPCStatus.internalError, message: "the runtime's answer ended without trailers")) : nil
        case .rstStream(let code):
            return .failure(GRPCStatus(reset: code))
        default:
            return nil
        }
    }

    /// The stream ended (or broke) before the outcome was known.
    package func ended() -> GRPCStatus {
        GRPCStatus(code: GRPCStatus.unavailable, message: "the runtime's connection closed before its answer was complete")
    }

    /// A message whose length prefix says more than `maxMessageBytes` is refused as soon as the
    /// prefix has come, before its bytes are buffered.
    private func checkSize() -> GRPCStatus? {
        guard received.readableBytes >= 5, let length = received.getInteger(at: received.readerIndex + 1, as: UInt32.self) else {
            return nil
        }
        guard Int(length) <= maxMessageBytes else {
            return GRPCStatus(
                code: GRPCStatus.resourceExhausted,
                message: "the runtime's answer is \(length) bytes, more than the \(maxMessageBytes) bytes allowed")
        }
        guard received.readableBytes <= 5 + Int(length) else {
            return GRPCStatus(code: GRPCStatus.internalError, message: "the runtime sent more than one message for a unary call")
        }
        return nil
    }

    private func finish(trailers: HPACKHeaders) -> Result<[UInt8], GRPCStatus> {
        let status = GRPCStatus(trailers: trailers)
        guard status.code == 0 else { return .failure(status) }
        var bytes = received
        guard let compressed = bytes.readInteger(as: UInt8.self), let length = bytes.readInteger(as: UInt32.self),
            bytes.readableBytes == Int(length)
        else {
            return .failure(
                GRPCStatus(
                    code: GRPCStatus.internalError,
                    message: "the runtime's answer is not one length-prefixed message (\(received.readableBytes) bytes)"))
        }
        guard compressed == 0 else {
            return .failure(
                GRPCStatus(code: GRPCStatus.internalError, message: "the runtime sent a compressed message, which was not asked for"))
        }
        return .success(bytes.readBytes(length: Int(length)) ?? [])
    }
}
