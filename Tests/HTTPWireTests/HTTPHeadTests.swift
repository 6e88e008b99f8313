import HTTPWire
import HostSystem
import Vocabulary
import XCTest

/// The one head parser under the client's responses and the endpoint's requests: the same
/// header block is taken or refused the same way by both; only the start lines differ.
final class HTTPHeadTests: XCTestCase {
    func request(_ fields: String) -> HTTPRequestParser.Result { HTTPRequestParser.parse(Array(("GET / HTTP/1.1\r\n" + fields).utf8)[...]) }
    func response(_ fields: String) -> HTTPResponseHead.Parsed { HTTPResponseHead.parse(Array(("HTTP/1.1 200 OK\r\n" + fields).utf8)) }

    func testTheSameFieldsAreTakenOrRefusedByBoth() {
        let taken: [(String, [String: String])] = [
            ("Host: x\r\nX-A:  spaced \t\r\n\r\n", ["host": "x", "x-a": "spaced"]),
            ("Host: x\nX-A: lf\n\n", ["host": "x", "x-a": "lf"]),
            ("Host: x\r\nX-Tab: a\tb\r\n\n", ["host": "x", "x-tab": "a\tb"]),
            ("X-Empty:\r\n\r\n", ["x-empty": ""]),
        ]
        for (fields, expected) in taken {
            guard case .request = request(fields) else {
                XCTFail("request refused: \(fields.debugDescription)")
                continue
            }
            guard case .head(let head) = response(fields) else {
                XCTFail("response refused: \(fields.debugDescription)")
                continue
            }
            XCTAssertEqual(Dictionary(head.headers, uniquingKeysWith: { a, _ in a }), expected, fields.debugDescription)
        }
        let refused: [(String, String)] = [
            ("no colon\r\n\r\n", "malformed header line"),
            (": empty name\r\n\r\n", "malformed header line"),
            ("Bad Name: x\r\n\r\n", "malformed header line"),
            ("X: a\u{1}b\r\n\r\n", "control character in a header"),
            ("X: a\rb\r\n\r\n", "control character in a header"),
            ("X: a\u{7F}\r\n\r\n", "control character in a header"),
            ("X: a\r\n folded\r\n\r\n", "obsolete line folding in a header"),
            ("X: a\r\n\tfolded\r\n\r\n", "obsolete line folding in a header"),
        ]
        for (fields, reason) in refused {
            XCTAssertEqual(request(fields), .invalid(status: 400, reason: reason), fields.debugDescription)
            guard case .invalid(let why) = response(fields) else {
                XCTFail("response taken: \(fields.debugDescription)")
                continue
            }
            XCTAssertEqual(why, "the server's response head is malformed: \(reason)", fields.debugDescription)
        }
    }

    func testTheHeadsLengthIsWhereTheBodyStarts() {
        for text in [
            "HTTP/1.1 401 Unauthorized\r\nA: b\r\n\r\nbody", "HTTP/1.1 401 Unauthorized\nA: b\n\nbody", "HTTP/1.0 401 x\r\nA: b\n\r\nbody",
        ] {
            guard case .head(let head) = HTTPResponseHead.parse(Array(text.utf8)) else {
                XCTFail(text.debugDescription)
                continue
            }
            XCTAssertEqual(head.status, 401)
            XCTAssertEqual(head.header("a"), "b")
            XCTAssertEqual(Array(text.utf8)[head.length...], Array("body".utf8)[...], text.debugDescription)
        }
    }

    func testStartLinesStayEachOnesOwn() {
        // A server skips empty lines before the request line; a client takes none before the status line.
        guard case .request = HTTPRequestParser.parse(Array("\r\nGET / HTTP/1.1\r\n\r\n".utf8)[...]) else { return XCTFail() }
        guard case .invalid(let why) = HTTPResponseHead.parse(Array("\r\nHTTP/1.1 200 OK\r\n\r\n".utf8)) else { return XCTFail() }
        XCTAssertEqual(why, "the server did not answer HTTP")
        // Whatever is not an HTTP/1.x status line is "not HTTP", even when its "fields" are malformed too.
        for text in ["SSH-2.0-OpenSSH_9.2\r\n\r\n", "\u{16}\u{3}\u{1}binary\nno colon\n\n", "HTTP/2 200\r\n\r\n", "HTTP/1.1 OK\r\n\r\n"] {
            guard case .invalid(let why) = HTTPResponseHead.parse(Array(text.utf8)) else {
                XCTFail(text.debugDescription)
                continue
            }
            XCTAssertEqual(why, "the server did not answer HTTP", text.debugDescription)
        }
        guard case .incomplete = HTTPResponseHead.parse(Array("HTTP/1.1 200 OK\r\nA: b\r\n".utf8)) else { return XCTFail() }
        guard case .incomplete = HTTPResponseHead.parse([]) else { return XCTFail() }
    }

    func testTheBoundCoversTheWholeHead() {
        let fields = "X: " + String(repeating: "a", count: 20) + "\r\n\r\n"
        let bytes = Array(("GET / HTTP/1.1\r\n" + fields).utf8)
        guard case .head(let head) = HTTPHead.parse(bytes[...], maxBytes: bytes.count, skippingEmptyLines: true) else { return XCTFail() }
        XCTAssertEqual(head.length, bytes.count)
        XCTAssertEqual(head.startLine, Array("GET / HTTP/1.1".utf8))
        guard case .tooLarge = HTTPHead.parse(bytes[...], maxBytes: bytes.count - 1, skippingEmptyLines: true) else { return XCTFail() }
        guard case .tooLarge = HTTPHead.parse(bytes.dropLast(2), maxBytes: 10, skippingEmptyLines: true) else { return XCTFail() }
        guard case .incomplete = HTTPHead.parse(bytes.dropLast(2), maxBytes: bytes.count, skippingEmptyLines: true) else {
            return XCTFail()
        }
    }
}
