import NIOHPACK
import NIOHTTP2

/// A gRPC status as the runtime's trailers carry it (`grpc-status`, `grpc-message`), or as this
/// client sets it when the call ended otherwise (a reset stream, a timeout, a bad answer). The
/// codes and their names are gRPC's (grpc/doc/statuscodes.md); the names are those grpc-swift
/// printed, which the agent's messages have shown so far.
package struct GRPCStatus: Error, Equatable, Sendable, CustomStringConvertible {
    package var code: Int
    package var message: String

    package init(code: Int, message: String) {
        self.code = code
        self.message = message
    }

    package static let names = [
        "ok", "cancelled", "unknown", "invalidArgument", "deadlineExceeded", "notFound", "alreadyExists",
        "permissionDenied", "resourceExhausted", "failedPrecondition", "aborted", "outOfRange", "unimplemented",
        "internalError", "unavailable", "dataLoss", "unauthenticated",
    ]

    /// The code's name (`unavailable`), or its number when gRPC names none.
    package var name: String { Self.names.indices.contains(code) ? Self.names[code] : "code \(code)" }

    package var description: String { "\(name): \"\(message)\"" }

    package static let cancelled = 1, unknown = 2, deadlineExceeded = 4, resourceExhausted = 8, unimplemented = 12
    package static let internalError = 13, unavailable = 14
}

extension GRPCStatus {
    /// The status in a response's trailers (or a trailers-only response's headers): `grpc-status`
    /// as a number, `grpc-message` percent-decoded. A missing or malformed `grpc-status` is the
    /// server's fault, said as such (gRPC's spec leaves the code to the client: unknown here).
    package init(trailers: HPACKHeaders) {
        let message = trailers.first(name: "grpc-message").map(Self.percentDecoded) ?? ""
        guard let text = trailers.first(name: "grpc-status") else {
            self.init(code: Self.unknown, message: "the runtime's answer ended without a grpc-status")
            return
        }
        guard let code = Int(text), code >= 0, code <= 0xFFFF else {
            self.init(code: Self.unknown, message: "the runtime's answer ended with a malformed grpc-status \"\(text)\"")
            return
        }
        self.init(code: code, message: message)
    }

    /// A response whose `:status` is not 200 carries no gRPC status: the code gRPC's spec derives
    /// from the HTTP one (grpc/doc/http-grpc-status-mapping.md).
    package init(httpStatus: String) {
        let code: Int
        switch httpStatus {
        case "400": code = Self.internalError
        case "401": code = 16
        case "403": code = 7
        case "404": code = Self.unimplemented
        case "429", "502", "503", "504": code = Self.unavailable
        default: code = Self.unknown
        }
        self.init(code: code, message: "the runtime answered with HTTP status \(httpStatus), not 200")
    }

    /// A stream the runtime reset: the code gRPC's spec derives from the HTTP/2 error code.
    package init(reset errorCode: HTTP2ErrorCode) {
        let code: Int
        switch errorCode {
        case .refusedStream: code = Self.unavailable
        case .cancel: code = Self.cancelled
        case .enhanceYourCalm: code = Self.resourceExhausted
        case .inadequateSecurity: code = 7
        default: code = Self.internalError
        }
        self.init(code: code, message: "the runtime reset the call's stream (HTTP/2 error \(errorCode.networkCode))")
    }

    /// `grpc-message`'s percent-encoding undone (%XX of UTF-8 bytes; anything else kept as sent).
    package static func percentDecoded(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count, let high = hexValue(bytes[i + 1]), let low = hexValue(bytes[i + 2]) {
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
