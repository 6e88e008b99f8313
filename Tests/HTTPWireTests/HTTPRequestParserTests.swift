import HTTPWire
import XCTest

/// The health endpoint's request parser, one row per kind of input.
final class HTTPRequestParserTests: XCTestCase {
    func parse(_ text: String) -> HTTPRequestParser.Result { HTTPRequestParser.parse(Array(text.utf8)[...]) }

    func testRequestsAndTheirConnections() {
        let cases: [(String, String, String, Bool)] = [
            ("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/readyz", true),
            ("HEAD /metrics?x=1 HTTP/1.1\r\n\r\n", "HEAD", "/metrics", true),
            ("GET / HTTP/1.0\r\n\r\n", "GET", "/", false),
            ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", "GET", "/", true),
            ("GET / HTTP/1.1\r\nConnection: upgrade, close\r\n\r\n", "GET", "/", false),
            ("\r\nGET /healthz HTTP/1.1\nHost: x\n\n", "GET", "/healthz", true),
            ("DELETE /readyz HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "DELETE", "/readyz", true),
        ]
        for (text, method, path, keepAlive) in cases {
            guard case .request(let r) = parse(text) else { return XCTFail("not a request: \(text.debugDescription)") }
            XCTAssertEqual(r.method, method, text.debugDescription)
            XCTAssertEqual(r.path, path, text.debugDescription)
            XCTAssertEqual(r.keepAlive, keepAlive, text.debugDescription)
            XCTAssertEqual(r.length, text.utf8.count, text.debugDescription)
        }
    }

    func testPipelinedRequestsAreTakenOneAtATime() {
        let two = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"
        guard case .request(let first) = parse(two) else { return XCTFail() }
        XCTAssertEqual(first.path, "/a")
        guard case .request(let second) = HTTPRequestParser.parse(Array(two.utf8)[first.length...]) else { return XCTFail() }
        XCTAssertEqual(second.path, "/b")
        XCTAssertEqual(first.length + second.length, two.utf8.count)
    }

    func testIncompleteAndInvalidInput() {
        XCTAssertEqual(parse("GET /readyz HTTP/1.1\r\nHost: x\r\n"), .incomplete)
        XCTAssertEqual(parse(""), .incomplete)
        let invalid: [(String, Int)] = [
            ("GET /readyz HTTP/2.0\r\n\r\n", 400),
            ("GET readyz HTTP/1.1\r\n\r\n", 400),
            ("GET  /readyz HTTP/1.1\r\n\r\n", 400),
            ("G(T /readyz HTTP/1.1\r\n\r\n", 400),
            ("GET /readyz HTTP/1.1\r\nno colon\r\n\r\n", 400),
            ("GET /readyz HTTP/1.1\r\n: empty name\r\n\r\n", 400),
            ("GET /readyz HTTP/1.1\r\nX: a\u{1}b\r\n\r\n", 400),
            ("GET /readyz HTTP/1.1\r\n folded\r\n\r\n", 400),
            ("GET /readyz HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
            ("GET /readyz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 413),
            ("POST /readyz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 413),
            ("\r\n\r\n", 400),
        ]
        for (text, status) in invalid {
            guard case .invalid(let s, _) = parse(text) else {
                XCTFail("accepted: \(text.debugDescription)")
                continue
            }
            XCTAssertEqual(s, status, text.debugDescription)
        }
        // A head that never ends is refused once it passes the bound, not buffered for ever.
        let huge = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: HTTPRequestParser.maxHeadBytes)
        guard case .invalid(400, _) = parse(huge) else { return XCTFail("an endless head was buffered") }
        guard case .invalid(400, _) = parse(huge + "\r\n\r\n") else { return XCTFail("an oversized head was accepted") }
    }
}
