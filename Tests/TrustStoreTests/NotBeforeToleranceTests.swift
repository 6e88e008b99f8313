import Foundation
import TestSupport
import Vocabulary
import XCTest

@testable import TrustStore

/// A CA whose notBefore is a little ahead of the node's clock (a CA issued a minute ago on a
/// machine whose clock runs ahead, a node at boot before time sync) is installed with a warning,
/// not refused; beyond the tolerance it is refused with the clock named.
final class NotBeforeToleranceTests: XCTestCase {
    func testACAFromTwoMinutesAheadIsTakenWithAWarning() throws {
        let bytes = try CertFixtures.bytes("ca.crt")
        let ca = try XCTUnwrap(try CertificateParser.parse(bytes, source: "ca.crt").first)
        let twoMinutesEarly = ca.notBefore.addingTimeInterval(-120)
        let taken = try CertificateParser.parseCAFile(bytes, source: "ca.crt", now: twoMinutesEarly)
        XCTAssertEqual(taken, [ca])
        let warning = try XCTUnwrap(CertificateParser.earlyWarning(ca, what: "CA", now: twoMinutesEarly))
        XCTAssertTrue(warning.contains("120 s ahead of this node's clock"), warning)
        XCTAssertTrue(warning.contains("5-minute tolerance"), warning)
        XCTAssertTrue(warning.contains("time sync"), warning)
        XCTAssertNil(CertificateParser.earlyWarning(ca, what: "CA", now: ca.notBefore), "valid now: nothing to say")
        XCTAssertNil(CertificateParser.earlyWarning(ca, what: "CA", now: ca.notBefore.addingTimeInterval(1)))

        // Exactly at the tolerance: taken. A second beyond it: refused, the clock named.
        XCTAssertNoThrow(try CertificateParser.parseCAFile(bytes, source: "ca.crt", now: ca.notBefore.addingTimeInterval(-300)))
        XCTAssertThrowsError(try CertificateParser.parseCAFile(bytes, source: "ca.crt", now: ca.notBefore.addingTimeInterval(-301))) {
            XCTAssertEqual(($0 as? AgentError)?.code, .invalidCertificate)
            XCTAssertTrue("\($0)".contains("is not valid before"), "\($0)")
            XCTAssertTrue("\($0)".contains("more than 5 minutes ahead of this node's clock"), "\($0)")
        }
    }
}
