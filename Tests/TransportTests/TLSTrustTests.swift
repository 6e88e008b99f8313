import Foundation
import TestSupport
import XCTest

@testable import Transport

/// The loaded trust is reused while its file is unchanged, and loaded again once it changes.
final class TLSTrustTests: XCTestCase {
    func testTrustIsReusedUntilItsFileChanges() throws {
        let dir = try makeTemporaryDirectory("trust")
        let bundle = dir + "/bundle.pem"
        try FileManager.default.copyItem(atPath: try CertFixtures.path("ca.crt"), toPath: bundle)
        let first = try TLSTrust.cached(bundle)
        XCTAssertTrue(first === (try TLSTrust.cached(bundle)), "an unchanged file was loaded again")
        // Replaced the way bundles are (a new file renamed over the old one).
        let two =
            try String(contentsOfFile: try CertFixtures.path("ca.crt"), encoding: .utf8)
            + String(contentsOfFile: try CertFixtures.path("other-ca.crt"), encoding: .utf8)
        try two.write(toFile: bundle, atomically: true, encoding: .utf8)
        XCTAssertFalse(first === (try TLSTrust.cached(bundle)), "a changed file was not loaded again")
        XCTAssertThrowsError(try TLSTrust.cached(dir + "/missing.pem"))
    }
}
