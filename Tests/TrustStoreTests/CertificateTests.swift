import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import TrustStore

final class CertificateTests: XCTestCase {
    func testParsesCAAndMatchesOpenSSLSubjectHashAndFingerprint() throws {
        let certs = try CertificateParser.parseCAFile(try CertFixtures.bytes("ca.crt"), source: "ca.crt")
        XCTAssertEqual(certs.count, 1)
        let c = certs[0]
        XCTAssertTrue(c.isCA)
        XCTAssertTrue(c.subject.contains("CN=Test CA"))
        let hash = try sh("/usr/bin/openssl", ["x509", "-in", try CertFixtures.path("ca.crt"), "-noout", "-hash"])
        XCTAssertEqual(c.subjectHash, hash.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        let fp = try sh("/usr/bin/openssl", ["x509", "-in", try CertFixtures.path("ca.crt"), "-noout", "-fingerprint", "-sha256"])
        XCTAssertTrue(fp.stdout.contains(c.sha256Fingerprint), "\(fp.stdout) vs \(c.sha256Fingerprint)")
        XCTAssertTrue(c.pem.hasPrefix("-----BEGIN CERTIFICATE-----"))
    }

    func testDERAndBundles() throws {
        let der = try CertificateParser.parseCAFile(try CertFixtures.bytes("ca.der"), source: "ca.der")
        let pem = try CertificateParser.parseCAFile(try CertFixtures.bytes("ca.crt"), source: "ca.crt")
        XCTAssertEqual(der, pem)
        let two = try CertificateParser.parseCAFile(try CertFixtures.bytes("two-cas.pem"), source: "two-cas.pem")
        XCTAssertEqual(two.count, 2)
        XCTAssertNotEqual(two[0].subjectHash, two[1].subjectHash)
    }

    func testRefusals() throws {
        let cases: [(String, String)] = [
            ("leaf.crt", "is not a CA certificate"),
            ("expired-ca.crt", "expired on"),
            ("future-ca.crt", "is not valid before"),
            ("with-key.pem", "contains a private key"),
            ("garbage.txt", "neither a PEM nor a DER certificate"),
            ("empty.crt", "is empty"),
            ("public-key.pem", "'PUBLIC KEY' PEM block"),
        ]
        for (file, phrase) in cases {
            XCTAssertThrowsError(try CertificateParser.parseCAFile(try CertFixtures.bytes(file), source: file), file) {
                XCTAssertEqual(($0 as? AgentError)?.code, .invalidCertificate, file)
                XCTAssertTrue("\($0)".contains(phrase), "\(file): \($0)")
            }
        }
        XCTAssertThrowsError(try CertificateParser.parse([UInt8](repeating: 0x30, count: (1 << 20) + 1), source: "big"))
    }
}
