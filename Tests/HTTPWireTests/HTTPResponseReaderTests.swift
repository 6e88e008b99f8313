import HTTPWire
import XCTest

/// A response's framing as the agent's client reads it (RFC 9112 6.3, 7.1): every length and
/// size from the wire checked against the caller's limit, and the same answer whether the bytes
/// arrive at once or one at a time.
final class HTTPResponseReaderTests: XCTestCase {
    func read(_ text: String, limit: Int = 1024, method: String = "GET") -> Result<[UInt8], HTTPResponseError> {
        let whole = Result { () throws(HTTPResponseError) in
            try HTTPResponseReader.read(Array(text.utf8), method: method, bodyLimit: limit).body
        }
        // Byte by byte: the same outcome.
        var reader = HTTPResponseReader(method: method, bodyLimit: limit)
        let dripped = Result { () throws(HTTPResponseError) -> [UInt8] in
            for b in text.utf8 where !reader.isComplete { try reader.take([b]) }
            return try reader.finish().body
        }
        XCTAssertEqual(whole, dripped, text.debugDescription)
        return whole
    }

    func testContentLengthIsDigitsOneValueAndWithinTheLimit() {
        let ok = "HTTP/1.1 200 OK\r\n"
        XCTAssertEqual(read(ok + "Content-Length: 2\r\n\r\n{}"), .success(Array("{}".utf8)))
        XCTAssertEqual(read(ok + "Content-Length: 2\r\n\r\n{}trailing"), .success(Array("{}".utf8)))
        XCTAssertEqual(read(ok + "Content-Length: 2, 2\r\nContent-Length: 2\r\n\r\n{}"), .success(Array("{}".utf8)))
        XCTAssertEqual(read(ok + "Content-Length: 0\r\n\r\n"), .success([]))
        XCTAssertEqual(read(ok + "Content-Length: 1024\r\n\r\n" + String(repeating: "x", count: 1024)).map(\.count), .success(1024))
        for bad in ["-1", "+2", "0x2", "2 2", "", "1e3", "٢"] {
            XCTAssertEqual(
                read(ok + "Content-Length: \(bad)\r\n\r\n{}"),
                .failure(.malformedFraming("Content-Length '\(bad)' is not a number of bytes")), bad)
        }
        XCTAssertEqual(
            read(ok + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
            .failure(.malformedFraming("Content-Length has different values (2 and 3)")))
        XCTAssertEqual(read(ok + "Content-Length: 1025\r\n\r\n"), .failure(.bodyTooLarge(limit: 1024)))
        XCTAssertEqual(read(ok + "Content-Length: 99999999999999999999999999\r\n\r\n"), .failure(.bodyTooLarge(limit: 1024)))
        XCTAssertEqual(
            read(ok + "Content-Length: 9223372036854775807\r\n\r\n", limit: Int.max),
            .failure(.cutShort("0 of the 9223372036854775807 bytes of Content-Length arrived")))
        XCTAssertEqual(read(ok + "Content-Length: 5\r\n\r\n{}"), .failure(.cutShort("2 of the 5 bytes of Content-Length arrived")))
    }

    func testChunksAreDecodedWithCheckedSizes() {
        let ok = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        XCTAssertEqual(read(ok + "4\r\nWiki\r\n5;x=\"y\"\r\npedia\r\n0\r\nExpires: never\r\n\r\n"), .success(Array("Wikipedia".utf8)))
        XCTAssertEqual(read(ok + "4 ; ext\nWiki\n0\n\n"), .success(Array("Wiki".utf8)))
        XCTAssertEqual(read(ok + "0000000000000000000000004\r\nWiki\r\n0\r\n\r\n"), .success(Array("Wiki".utf8)))
        for huge in ["7fffffffffffffff", "ffffffffffffffff", "10000000000000000", "401"] {
            XCTAssertEqual(read(ok + huge + "\r\n{}\r\n0\r\n\r\n"), .failure(.bodyTooLarge(limit: 1024)), huge)
        }
        // The limit counts every chunk: two of 600 bytes are over 1024.
        let six = String(repeating: "x", count: 600)
        XCTAssertEqual(read(ok + "258\r\n\(six)\r\n258\r\n\(six)\r\n0\r\n\r\n"), .failure(.bodyTooLarge(limit: 1024)))
        XCTAssertEqual(read(ok + "zz\r\n"), .failure(.malformedFraming("the chunk size 'zz' is not hexadecimal")))
        XCTAssertEqual(read(ok + "\r\n"), .failure(.malformedFraming("the chunk size '' is not hexadecimal")))
        XCTAssertEqual(read(ok + "4x\r\nWiki\r\n"), .failure(.malformedFraming("the chunk size '4x' is not hexadecimal")))
        XCTAssertEqual(
            read(ok + "1\r\nWiki\r\n"), .failure(.malformedFraming("a chunk's data is not followed by CRLF (its size is wrong)")))
        XCTAssertEqual(read(ok + "64\r\n{\"a"), .failure(.cutShort("the chunked body ended without its last chunk (3 bytes arrived)")))
        XCTAssertEqual(
            read(ok + "4\r\nWiki\r\n0\r\n"), .failure(.cutShort("the chunked body ended without its last chunk (4 bytes arrived)")))
        XCTAssertEqual(
            read(ok + String(repeating: "0", count: 5000) + "\r\n"),
            .failure(.malformedFraming("a chunk-size line exceeds 4096 bytes")))
        XCTAssertEqual(
            read(ok + "0\r\n" + String(repeating: "X-T: aaaaaaaaaa\r\n", count: 2000)),
            .failure(.malformedFraming("the chunked trailer exceeds 16384 bytes")))
    }

    func testFramingThatCanBeReadTwoWaysIsRefused() {
        let ok = "HTTP/1.1 200 OK\r\n"
        XCTAssertEqual(
            read(ok + "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
            .failure(.malformedFraming("it has both Transfer-Encoding and Content-Length (a body that can be read two ways)")))
        XCTAssertEqual(
            read(ok + "Transfer-Encoding: gzip, chunked\r\n\r\n"),
            .failure(
                .malformedFraming("Transfer-Encoding 'gzip, chunked': only a single 'chunked' is read (no other coding was asked for)")))
        XCTAssertEqual(
            read(ok + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
            .failure(
                .malformedFraming("Transfer-Encoding 'chunked, chunked': only a single 'chunked' is read (no other coding was asked for)")))
    }

    func testBodiesEndingAtCloseAndResponsesWithoutBodies() {
        XCTAssertEqual(read("HTTP/1.1 200 OK\r\n\r\nuntil close"), .success(Array("until close".utf8)))
        XCTAssertEqual(read("HTTP/1.0 200 OK\r\n\r\n" + String(repeating: "x", count: 1025)), .failure(.bodyTooLarge(limit: 1024)))
        XCTAssertEqual(read("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"), .success([]))
        XCTAssertEqual(read("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"), .success([]))
        XCTAssertEqual(read("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", method: "HEAD"), .success([]))
        XCTAssertEqual(
            read("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"),
            .success(Array("{}".utf8)))
        XCTAssertEqual(
            read(String(repeating: "HTTP/1.1 100 Continue\r\n\r\n", count: 9) + "HTTP/1.1 200 OK\r\n\r\n"),
            .failure(.malformedHead("more than 8 interim (1xx) responses")))
        XCTAssertEqual(
            read("HTTP/1.1 101 Switching Protocols\r\n\r\n"), .failure(.malformedHead("101 Switching Protocols, which was not asked for")))
    }

    func testHeadsThatAreNotHTTPOrNeverEnd() {
        XCTAssertEqual(read(""), .failure(.notHTTP))
        XCTAssertEqual(read("SSH-2.0-OpenSSH_9.2\r\n\r\n"), .failure(.notHTTP))
        XCTAssertEqual(read("HTTP/1.1 20 OK\r\n\r\n"), .failure(.notHTTP))
        XCTAssertEqual(read("HTTP/1.1 2000 OK\r\n\r\n"), .failure(.notHTTP))
        XCTAssertEqual(read("HTTP/1.1 +20 OK\r\n\r\n"), .failure(.notHTTP))
        XCTAssertEqual(read("HTTP/1.1 041 OK\r\n\r\n"), .failure(.notHTTP))  // found by the fuzzer: taken as 41
        XCTAssertEqual(read("HTTP/1.1 200 OK\r\nA: b\r\n"), .failure(.cutShort("the connection ended inside the response head")))
        XCTAssertEqual(read("HTTP/1.1 200 OK\r\n" + String(repeating: "A: b\r\n", count: 3000)), .failure(.headTooLarge(limit: 16384)))
        // Interim heads count towards the same bound.
        XCTAssertEqual(
            read(
                String(repeating: "HTTP/1.1 100 Continue\r\nA: \(String(repeating: "b", count: 2100))\r\n\r\n", count: 8)
                    + "HTTP/1.1 200 OK\r\n\r\n"),
            .failure(.headTooLarge(limit: 16384)))
    }
}
