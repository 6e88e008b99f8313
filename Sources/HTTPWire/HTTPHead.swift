import Vocabulary

/// The head of an HTTP/1.x message (RFC 9112 section 2): a start line, header field lines, and
/// the empty line that ends them. The agent's client reads responses and the health endpoint
/// reads requests with it; only their start lines differ, which each checks itself.
///
/// Shared rules: a line ends with CRLF or a bare LF (RFC 9112 2.2 lets a recipient accept it);
/// the whole head, empty line included, is at most `maxBytes`; a field line is a token, a colon
/// and a value without control characters (HTAB aside), its blanks trimmed; obsolete line
/// folding (a line starting with a blank, RFC 9112 5.2) is refused, as is any other line.
public struct HTTPHead: Sendable {
    /// The request line or status line, without its line end.
    public var startLine: [UInt8]
    /// Field names lowercased, values without surrounding blanks, in order.
    public var fields: [(name: String, value: String)]
    /// Bytes of the buffer the head took, the empty line included: the body starts there.
    public var length: Int

    public enum Parsed: Sendable {
        /// The empty line has not arrived and the bound is not passed.
        case incomplete
        /// Over `maxBytes` without its end, or ending past it.
        case tooLarge
        case malformed(String)
        case head(HTTPHead)
    }

    /// The value of the first field named `name` (lowercase).
    public func field(_ name: String) -> String? { fields.first { $0.name == name }?.value }

    /// Parses the head at the start of `buffer`. `skippingEmptyLines`: a server ignores empty
    /// lines before a request line (RFC 9112 2.2); a client takes none before a status line.
    public static func parse(_ buffer: ArraySlice<UInt8>, maxBytes: Int, skippingEmptyLines: Bool) -> Parsed {
        guard let end = headEnd(buffer) else { return buffer.count > maxBytes ? .tooLarge : .incomplete }
        guard end.upperBound - buffer.startIndex <= maxBytes else { return .tooLarge }
        var lines = buffer[buffer.startIndex..<end.lowerBound].split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .map { $0.last == UInt8(ascii: "\r") ? $0.dropLast() : $0 }
        if skippingEmptyLines { while lines.first?.isEmpty == true { lines.removeFirst() } }
        guard let first = lines.first, !first.isEmpty else { return .malformed("no start line") }
        var fields: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            if let lead = line.first, lead == UInt8(ascii: " ") || lead == UInt8(ascii: "\t") {
                return .malformed("obsolete line folding in a header")
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon != line.startIndex,
                line[line.startIndex..<colon].allSatisfy(isTokenByte)
            else {
                return .malformed("malformed header line")
            }
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingBlanks()
            guard !value.utf8.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) else {
                return .malformed("control character in a header")
            }
            fields.append((String(decoding: line[line.startIndex..<colon], as: UTF8.self).lowercased(), value))
        }
        return .head(HTTPHead(startLine: Array(first), fields: fields, length: end.upperBound - buffer.startIndex))
    }

    /// The empty line that ends the head: the LF of the last field line (or start line) and the
    /// LF or CRLF after it.
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

    /// RFC 9110 token characters (methods, field names).
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(b)
        }
    }
}
