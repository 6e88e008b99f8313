import HostSystem

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
        guard let end = headEnd(buffer) else {
            return buffer.count > maxHeadBytes ? .invalid(status: 400, reason: "request head larger than \(maxHeadBytes) bytes") : .incomplete
        }
        guard end.upperBound - buffer.startIndex <= maxHeadBytes else {
            return .invalid(status: 400, reason: "request head larger than \(maxHeadBytes) bytes")
        }
        var lines = buffer[buffer.startIndex..<end.lowerBound].split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .map { $0.last == UInt8(ascii: "\r") ? $0.dropLast() : $0 }
        // RFC 9112 2.2: empty lines before the request line are ignored.
        while lines.first?.isEmpty == true { lines.removeFirst() }
        guard let first = lines.first else { return .invalid(status: 400, reason: "no request line") }
        let parts = first.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(isTokenByte),
              let target = String(validating: parts[1], as: UTF8.self), target.hasPrefix("/") || target == "*",
              !target.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            return .invalid(status: 400, reason: "malformed request line")
        }
        let version = String(decoding: parts[2], as: UTF8.self)
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else {
            return .invalid(status: 400, reason: "not HTTP/1.x")
        }
        var keepAlive = version == "HTTP/1.1"
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon != line.startIndex,
                  line[line.startIndex..<colon].allSatisfy(isTokenByte) else {
                return .invalid(status: 400, reason: "malformed header line")
            }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self).lowercased()
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingBlanks()
            guard !value.utf8.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) else {
                return .invalid(status: 400, reason: "control character in a header")
            }
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
        return .request(Request(method: String(decoding: parts[0], as: UTF8.self), path: path, keepAlive: keepAlive,
                                length: end.upperBound - buffer.startIndex))
    }

    /// The blank line that ends the head (CRLF CRLF, or a bare LF LF as lenient servers accept).
    private static func headEnd(_ buffer: ArraySlice<UInt8>) -> Range<Int>? {
        var i = buffer.startIndex
        while i < buffer.endIndex {
            if buffer[i] == UInt8(ascii: "\n") {
                let next = i + 1
                if next < buffer.endIndex, buffer[next] == UInt8(ascii: "\n") { return i..<next + 1 }
                if next + 1 < buffer.endIndex, buffer[next] == UInt8(ascii: "\r"), buffer[next + 1] == UInt8(ascii: "\n") {
                    return i..<next + 2
                }
            }
            i += 1
        }
        return nil
    }

    /// RFC 9110 token characters (methods, header names).
    private static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(b)
        }
    }
}
