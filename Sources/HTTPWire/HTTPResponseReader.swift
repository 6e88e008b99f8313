/// One HTTP/1.x response as the bytes of a connection arrive: the head (interim 1xx answers
/// skipped), then the body by its framing, holding at most `bodyLimit` bytes of body and
/// `HTTPResponseHead.maximumBytes` of heads. Pure, so the client's whole reading of a server's
/// bytes is unit-tested and fuzzed (FuzzParsers' `http-response`) exactly as it runs.
public struct HTTPResponseReader: Sendable {
    /// At most this many interim (1xx) responses before the final one.
    public static let maximumInterimResponses = 8

    public let method: String
    public let bodyLimit: Int
    /// Set once the final response's head has arrived.
    public private(set) var head: HTTPResponseHead?
    private var pending: [UInt8] = []
    private var headBytes = 0
    private var interim = 0
    private var decoder: HTTPBodyDecoder?

    public init(method: String = "GET", bodyLimit: Int) {
        self.method = method
        self.bodyLimit = bodyLimit
    }

    /// The response is whole: the connection need not be read further.
    public var isComplete: Bool { decoder?.isComplete ?? false }

    /// Takes the next bytes read from the connection.
    public mutating func take(_ bytes: [UInt8]) throws(HTTPResponseError) {
        guard decoder == nil else {
            try decoder!.take(bytes[...])
            return
        }
        pending += bytes
        // A head ends with a line feed: without a new one, parsing again finds nothing new (a
        // server that drips a byte at a time would otherwise cost a parse of the whole per byte).
        guard bytes.contains(UInt8(ascii: "\n")) || pending.count > HTTPResponseHead.maximumBytes - headBytes else { return }
        while decoder == nil {
            let parsed: HTTPResponseHead
            switch HTTPResponseHead.parse(pending, maxBytes: HTTPResponseHead.maximumBytes - headBytes) {
            case .incomplete: return
            case .invalid(let error): throw error
            case .head(let h): parsed = h
            }
            headBytes += parsed.length
            pending.removeFirst(parsed.length)
            if (100..<200).contains(parsed.status) {
                // 101 switches protocols, which the client never asks for; others precede the answer.
                guard parsed.status != 101 else { throw .malformedHead("101 Switching Protocols, which was not asked for") }
                interim += 1
                guard interim <= Self.maximumInterimResponses else {
                    throw .malformedHead("more than \(Self.maximumInterimResponses) interim (1xx) responses")
                }
                continue
            }
            let framing = try HTTPBodyFraming.of(
                status: parsed.status, fields: parsed.headers.map { (name: $0.0, value: $0.1) }, method: method, limit: bodyLimit)
            head = parsed
            decoder = HTTPBodyDecoder(framing: framing, limit: bodyLimit)
            let rest = pending
            pending = []
            try decoder!.take(rest[...])
        }
    }

    /// The body bytes arrived since the last call (a stream's reader takes them as they come;
    /// `bodyLimit` then bounds what is held between two calls).
    public mutating func drainBody() -> [UInt8] {
        decoder?.drain() ?? []
    }

    /// The connection ended (or the response is complete): the head and body, or why there are none.
    public mutating func finish() throws(HTTPResponseError) -> (head: HTTPResponseHead, body: [UInt8]) {
        guard let head, decoder != nil else {
            throw pending.isEmpty && headBytes == 0 ? .notHTTP : .cutShort("the connection ended inside the response head")
        }
        return (head, try decoder!.finish())
    }

    /// A whole response in one buffer, as if the connection ended after it.
    public static func read(_ bytes: [UInt8], method: String = "GET", bodyLimit: Int) throws(HTTPResponseError) -> (
        head: HTTPResponseHead, body: [UInt8]
    ) {
        var reader = HTTPResponseReader(method: method, bodyLimit: bodyLimit)
        try reader.take(bytes)
        return try reader.finish()
    }
}
