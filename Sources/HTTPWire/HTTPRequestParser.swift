import Vocabulary

/// Reads one HTTP/1.x request head from the start of a buffer, for the health endpoint: small,
/// strict and bounded. It serves four fixed GET paths to kubelet and Prometheus, so a request
/// with a body, a header block over `maxHeadBytes` or anything that is not HTTP/1.x is answered
/// with an error and the connection closed.
public enum HTTPRequestParser {
    public static let maxHeadBytes = 16 * 1024

    public struct Request: Equatable, Sendable {
        public var method: String
        /// The path, without the query.
        public var path: String
        /// Whether the connection stays open after the answer (HTTP/1.1 unless `Connection:
        /// close`; HTTP/1.0 only with `Connection: keep-alive`).
        public var keepAlive: Bool
        /// Bytes of the buffer this request took.
        public var length: Int
    }

    public enum Result: Equatable, Sendable {
        /// The head has not all arrived yet.
        case incomplete
        case request(Request)
        /// Answer `status` with `reason`, then close.
        case invalid(status: Int, reason: String)
    }

    public static func parse(_ buffer: ArraySlice<UInt8>) -> Result {
        let head: HTTPHead
        switch HTTPHead.parse(buffer, maxBytes: maxHeadBytes, skippingEmptyLines: true) {
        case .incomplete: return .incomplete
        case .tooLarge: return .invalid(status: 400, reason: "request head larger than \(maxHeadBytes) bytes")
        case .malformed(let reason): return .invalid(status: 400, reason: reason)
        case .head(let h): head = h
        }
        let parts = head.startLine.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(HTTPHead.isTokenByte),
            let target = String(validating: parts[1], as: UTF8.self), target.hasPrefix("/") || target == "*",
            !target.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F })
        else {
            return .invalid(status: 400, reason: "malformed request line")
        }
        let version = String(decoding: parts[2], as: UTF8.self)
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else {
            return .invalid(status: 400, reason: "not HTTP/1.x")
        }
        var keepAlive = version == "HTTP/1.1"
        for (name, value) in head.fields {
            switch name {
            case "content-length":
                guard let n = Int(value), n >= 0 else { return .invalid(status: 400, reason: "bad Content-Length") }
                if n > 0 { return .invalid(status: 413, reason: "no request body is accepted") }
            case "transfer-encoding":
                return .invalid(status: 413, reason: "no request body is accepted")
            case "connection":
                let options = value.lowercased().split(separator: ",").map { $0.trimmingBlanks() }
                if options.contains("close") { keepAlive = false } else if options.contains("keep-alive") { keepAlive = true }
            default:
                break
            }
        }
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? target
        return .request(Request(method: String(decoding: parts[0], as: UTF8.self), path: path, keepAlive: keepAlive, length: head.length))
    }
}
