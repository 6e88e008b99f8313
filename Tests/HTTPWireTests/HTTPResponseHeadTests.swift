import HTTPWire
import XCTest

/// A response head as the registry probe and the proxy check read it.
final class HTTPResponseHeadTests: XCTestCase {
    func testStatusAndFieldsAreReadAndANonHTTPAnswerIsNot() {
        let head = HTTPResponseHead(
            parsing: Array(
                "HTTP/1.1 401 Unauthorized\r\nWww-Authenticate: Basic realm=\"x\"\r\nDocker-Distribution-Api-Version: registry/2.0\r\n\r\nbody"
                    .utf8))
        XCTAssertEqual(head?.status, 401)
        XCTAssertEqual(head?.header("www-authenticate"), "Basic realm=\"x\"")
        XCTAssertEqual(head?.header("docker-distribution-api-version"), "registry/2.0")
        XCTAssertNil(HTTPResponseHead(parsing: Array("SSH-2.0-OpenSSH\r\n\r\n".utf8)))
    }
}
