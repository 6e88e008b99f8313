/// The status line and headers of an HTTP/1.x response: the shared `HTTPHead` with a status line.
public struct HTTPResponseHead: Sendable {
    /// The most a response head may take: a registry's or a proxy's answer is far smaller.
    public static let maximumBytes = 16 * 1024

    public var status: Int
    public var headers: [(String, String)]
    public var length: Int

    public enum Parsed: Sendable {
        case incomplete
        /// Why the bytes are not an HTTP/1.x response head.
        case invalid(String)
        case head(HTTPResponseHead)
    }

    /// Parses the head at the start of `bytes` (up to and including the empty line).
    public static func parse(_ bytes: [UInt8]) -> Parsed {
        switch parse(bytes, maxBytes: maximumBytes) {
        case .incomplete: return .incomplete
        case .invalid(let error): return .invalid(error.description)
        case .head(let h): return .head(h)
        }
    }

    public enum Outcome: Sendable {
        case incomplete
        case invalid(HTTPResponseError)
        case head(HTTPResponseHead)
    }

    /// The head at the start of `bytes`, at most `maxBytes` long. The status is three digits
    /// (RFC 9112 4): a status line that does not have them is not HTTP's.
    public static func parse(_ bytes: [UInt8], maxBytes: Int) -> Outcome {
        let head: HTTPHead
        switch HTTPHead.parse(bytes[...], maxBytes: maxBytes, skippingEmptyLines: false) {
        case .incomplete: return .incomplete
        case .tooLarge: return .invalid(.headTooLarge(limit: maximumBytes))
        case .malformed(let reason):
            return .invalid(bytes.starts(with: "HTTP/1.".utf8) ? .malformedHead(reason) : .notHTTP)
        case .head(let h): head = h
        }
        let statusLine = head.startLine.split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: false)
        guard statusLine.count >= 2, statusLine[0].starts(with: "HTTP/1.".utf8), statusLine[0].count == 8 else { return .invalid(.notHTTP) }
        let code = statusLine[1]
        // 100-999: a status below 100 ("041", found by the http-response fuzz target) has no class.
        guard code.count == 3, code.first! >= UInt8(ascii: "1"), code.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else {
            return .invalid(.notHTTP)
        }
        let status = code.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        return .head(HTTPResponseHead(status: status, headers: head.fields.map { ($0.name, $0.value) }, length: head.length))
    }

    public init?(parsing bytes: [UInt8]) {
        guard case .head(let head) = Self.parse(bytes) else { return nil }
        self = head
    }

    public init(status: Int, headers: [(String, String)], length: Int) {
        self.status = status
        self.headers = headers
        self.length = length
    }

    public func header(_ name: String) -> String? { headers.first { $0.0 == name }?.1 }
}
