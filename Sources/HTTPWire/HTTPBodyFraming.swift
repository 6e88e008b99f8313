import Vocabulary

/// Why a response cannot be read: every way a server's bytes can fail the agent's client, named
/// so that the check that reads it can say what the server did.
public enum HTTPResponseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The bytes are not an HTTP/1.x response (another protocol, or nothing).
    case notHTTP
    /// A status line or header line that HTTP/1.1 does not allow.
    case malformedHead(String)
    /// The head did not end within the bound.
    case headTooLarge(limit: Int)
    /// The body's framing (Content-Length, Transfer-Encoding, chunks) is not HTTP/1.1's, or can
    /// be read two ways (RFC 9112 6.3: such a response "ought to be handled as an error").
    case malformedFraming(String)
    /// The body is (or says it is) larger than the caller takes.
    case bodyTooLarge(limit: Int)
    /// The connection ended before the body its framing announced.
    case cutShort(String)

    public var description: String {
        switch self {
        case .notHTTP: return "the server did not answer HTTP"
        case .malformedHead(let why): return "the server's response head is malformed: \(why)"
        case .headTooLarge(let limit): return "the response headers exceed \(limit) bytes"
        case .malformedFraming(let why): return "the server's response is malformed: \(why)"
        case .bodyTooLarge(let limit): return "the response body exceeds \(limit) bytes, the most this client takes"
        case .cutShort(let why): return "the response was cut short: \(why)"
        }
    }
}

/// How a response's body ends (RFC 9112 6.3), decided from its head before any of it is read.
public enum HTTPBodyFraming: Equatable, Sendable {
    /// No body: a HEAD request, 1xx, 204 or 304.
    case empty
    /// Exactly this many bytes.
    case length(Int)
    /// Chunked transfer coding.
    case chunked
    /// Whatever comes until the server closes the connection.
    case untilClose

    /// The framing of a response with `status` and `fields` (names lowercased) to a `method`
    /// request. Refused: a Content-Length that is not digits, several that disagree, one over
    /// `limit`; a Transfer-Encoding other than `chunked` (the client asks for no other coding)
    /// and one together with a Content-Length.
    public static func of(status: Int, fields: [(name: String, value: String)], method: String, limit: Int) throws(HTTPResponseError)
        -> HTTPBodyFraming
    {
        if method == "HEAD" || (100..<200).contains(status) || status == 204 || status == 304 { return .empty }
        let lengths = fields.filter { $0.name == "content-length" }.map(\.value)
        let encodings = fields.filter { $0.name == "transfer-encoding" }.flatMap { $0.value.split(separator: ",") }
            .map { $0.trimmingBlanks().lowercased() }
        if !encodings.isEmpty {
            guard lengths.isEmpty else {
                throw .malformedFraming("it has both Transfer-Encoding and Content-Length (a body that can be read two ways)")
            }
            guard encodings == ["chunked"] else {
                let shown = String(encodings.joined(separator: ", ").prefix(64))
                throw .malformedFraming("Transfer-Encoding '\(shown)': only a single 'chunked' is read (no other coding was asked for)")
            }
            return .chunked
        }
        guard !lengths.isEmpty else { return .untilClose }
        // Several fields, or one with a list, are accepted only when every value is the same
        // (RFC 9110 8.6); each is 1*DIGIT.
        var found: Int?
        for item in lengths.flatMap({ $0.split(separator: ",", omittingEmptySubsequences: false) }) {
            let text = item.trimmingBlanks()
            guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                throw .malformedFraming("Content-Length '\(String(text.prefix(32)))' is not a number of bytes")
            }
            guard let value = decimal(text.utf8, limit: limit) else { throw .bodyTooLarge(limit: limit) }
            if let found, found != value {
                throw .malformedFraming("Content-Length has different values (\(found) and \(value))")
            }
            found = value
        }
        return .length(found ?? 0)
    }

    /// Digits as a number, nil when it is over `limit` (checked before each step, so no overflow).
    static func decimal(_ digits: String.UTF8View, limit: Int) -> Int? {
        var value = 0
        for b in digits {
            let d = Int(b - UInt8(ascii: "0"))
            guard limit - d >= 0, value <= (limit - d) / 10 else { return nil }
            value = value * 10 + d
        }
        return value
    }
}

/// Reads a body by its framing, as the bytes arrive, holding at most `limit` bytes of it. Pure
/// (no I/O), so the framing is unit-tested and fuzzed as the client runs it.
public struct HTTPBodyDecoder: Sendable {
    /// The longest chunk-size line (size and extensions) and the most trailer bytes taken.
    public static let maximumChunkLineBytes = 4096
    public static let maximumTrailerBytes = 16 * 1024

    public let framing: HTTPBodyFraming
    public let limit: Int
    public private(set) var body: [UInt8] = []
    public private(set) var isComplete = false

    private enum Chunked: Sendable {
        case sizeLine
        case data(remaining: Int)
        case dataEnd(sawCR: Bool)
        case trailer
    }
    private var chunked = Chunked.sizeLine
    private var line: [UInt8] = []
    private var trailerBytes = 0
    /// Body bytes handed over by `drain()` and no longer held.
    private var drained = 0

    public init(framing: HTTPBodyFraming, limit: Int) {
        self.framing = framing
        self.limit = max(0, limit)
        switch framing {
        case .empty, .length(0): isComplete = true
        default: break
        }
    }

    /// Takes the next bytes of the stream and returns how many were the body's (any after its
    /// end belong to no message: the client closes the connection).
    @discardableResult
    public mutating func take(_ bytes: ArraySlice<UInt8>) throws(HTTPResponseError) -> Int {
        var i = bytes.startIndex
        while i < bytes.endIndex && !isComplete {
            switch framing {
            case .empty:
                isComplete = true
            case .length(let n):
                let count = min(n - drained - body.count, bytes.endIndex - i)
                body += bytes[i..<i + count]
                i += count
                isComplete = drained + body.count == n
            case .untilClose:
                guard bytes.endIndex - i <= limit - body.count else { throw .bodyTooLarge(limit: limit) }
                body += bytes[i...]
                i = bytes.endIndex
            case .chunked:
                i = try takeChunked(bytes, from: i)
            }
        }
        return i - bytes.startIndex
    }

    /// Hands over the body bytes taken so far and forgets them: the reader of a stream (a
    /// Kubernetes watch) takes each part as it comes, so `limit` bounds what is held between two
    /// drains, not the whole stream.
    public mutating func drain() -> [UInt8] {
        defer {
            drained += body.count
            body = []
        }
        return body
    }

    /// The peer closed the connection: the body, when that is how it ends; else why it is cut short.
    public mutating func finish() throws(HTTPResponseError) -> [UInt8] {
        if framing == .untilClose { isComplete = true }
        guard isComplete else {
            switch framing {
            case .length(let n): throw .cutShort("\(drained + body.count) of the \(n) bytes of Content-Length arrived")
            default: throw .cutShort("the chunked body ended without its last chunk (\(body.count) bytes arrived)")
            }
        }
        return body
    }

    private mutating func takeChunked(_ bytes: ArraySlice<UInt8>, from start: Int) throws(HTTPResponseError) -> Int {
        var i = start
        switch chunked {
        case .data(let remaining):
            let count = min(remaining, bytes.endIndex - i)
            body += bytes[i..<i + count]
            i += count
            chunked = remaining == count ? .dataEnd(sawCR: false) : .data(remaining: remaining - count)
        case .dataEnd(let sawCR):
            let b = bytes[i]
            i += 1
            if b == UInt8(ascii: "\r") && !sawCR {
                chunked = .dataEnd(sawCR: true)
            } else if b == UInt8(ascii: "\n") {
                chunked = .sizeLine
            } else {
                throw .malformedFraming("a chunk's data is not followed by CRLF (its size is wrong)")
            }
        case .sizeLine, .trailer:
            guard let lf = bytes[i...].firstIndex(of: UInt8(ascii: "\n")) else {
                line += bytes[i...]
                try checkLineBound()
                return bytes.endIndex
            }
            line += bytes[i..<lf]
            i = lf + 1
            try checkLineBound()
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            if case .sizeLine = chunked {
                let size = try chunkSize(line)
                chunked = size == 0 ? .trailer : .data(remaining: size)
            } else if line.isEmpty {
                isComplete = true
            } else {
                trailerBytes += line.count
            }
            line.removeAll(keepingCapacity: true)
        }
        return i
    }

    private mutating func checkLineBound() throws(HTTPResponseError) {
        if case .trailer = chunked {
            guard trailerBytes + line.count <= Self.maximumTrailerBytes else {
                throw .malformedFraming("the chunked trailer exceeds \(Self.maximumTrailerBytes) bytes")
            }
        } else if line.count > Self.maximumChunkLineBytes {
            throw .malformedFraming("a chunk-size line exceeds \(Self.maximumChunkLineBytes) bytes")
        }
    }

    /// `chunk-size [chunk-ext]` (RFC 9112 7.1): hex digits, each step checked against what the
    /// limit still allows, so no size can overflow an offset; extensions are ignored.
    private func chunkSize(_ line: [UInt8]) throws(HTTPResponseError) -> Int {
        var size = 0
        var digits = 0
        let room = limit - body.count
        for b in line {
            let d: Int
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = Int(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = Int(b - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = Int(b - UInt8(ascii: "A")) + 10
            default: d = -1
            }
            guard d >= 0 else { break }
            guard room - d >= 0, size <= (room - d) / 16 else { throw .bodyTooLarge(limit: limit) }
            size = size * 16 + d
            digits += 1
        }
        let rest = line.dropFirst(digits).drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        guard digits > 0, rest.isEmpty || rest.first == UInt8(ascii: ";"),
            !rest.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F })
        else {
            let shown = String(decoding: line.prefix(32), as: UTF8.self).unicodeScalars.map {
                $0.value < 0x20 || $0.value == 0x7F ? "?" : String($0)
            }
            throw .malformedFraming("the chunk size '\(shown.joined())' is not hexadecimal")
        }
        return size
    }
}
