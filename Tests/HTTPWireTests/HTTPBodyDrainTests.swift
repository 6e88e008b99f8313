import XCTest

@testable import HTTPWire

/// A stream's reader (the Kubernetes watch) takes the body as it comes: `limit` bounds what is
/// held between two drains, never the whole stream, and the framing still ends where it ends.
final class HTTPBodyDrainTests: XCTestCase {
    func testAChunkedStreamLongerThanTheLimitIsReadPartByPart() throws {
        var reader = HTTPResponseReader(bodyLimit: 16)
        try reader.take(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
        var got: [UInt8] = []
        for i in 0..<100 {
            try reader.take(Array("a\r\nline \(i % 10)...\n\r\n".utf8))
            got += reader.drainBody()
        }
        XCTAssertEqual(got.count, 1000, "100 chunks of 10 bytes, each under the limit of 16 held")
        XCTAssertFalse(reader.isComplete)
        try reader.take(Array("0\r\n\r\n".utf8))
        XCTAssertTrue(reader.isComplete)
        XCTAssertEqual(try reader.finish().body, [], "all of it was drained")
    }

    func testWhatIsHeldBetweenDrainsIsStillBounded() throws {
        var reader = HTTPResponseReader(bodyLimit: 16)
        try reader.take(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n".utf8))
        XCTAssertThrowsError(try reader.take(Array("a\r\n0123456789\r\n".utf8)), "20 bytes held, over 16")
        var big = HTTPResponseReader(bodyLimit: 16)
        XCTAssertThrowsError(try big.take(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n".utf8)), "a chunk of 17")
    }

    func testALengthIsCountedAcrossDrains() throws {
        var reader = HTTPResponseReader(bodyLimit: 16)
        try reader.take(Array("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n012345".utf8))
        XCTAssertEqual(reader.drainBody(), Array("012345".utf8))
        try reader.take(Array("6789ab".utf8))
        XCTAssertTrue(reader.isComplete)
        XCTAssertEqual(try reader.finish().body, Array("6789ab".utf8))
    }
}
