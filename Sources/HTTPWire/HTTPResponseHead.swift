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
        let head: HTTPHead
        switch HTTPHead.parse(bytes[...], maxBytes: maximumBytes, skippingEmptyLines: false) {
        case .incomplete: return .incomplete
        case .tooLarge: return .invalid("the response headers exceed \(maximumBytes) bytes")
        case .malformed(let reason):
            return .invalid(
                bytes.starts(with: "HTTP/1.".utf8) ? "the server's response head is malformed: \(reason)" : "the server did not answer HTTP"
            )
        case .head(let h): head = h
        }
        let statusLine = String(decoding: head.startLine, as: UTF8.self).split(separator: " ")
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
            return .invalid("the server did not answer HTTP")
        }
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
