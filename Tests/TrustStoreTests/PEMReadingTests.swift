import Foundation
import TestSupport
import XCTest

@testable import TrustStore

/// The PEM readers read bytes a line at a time (they read a String per line before, which was
/// most of the trust facts' and tls-runtime-trust's time on a node's ~280 certificates): the
/// same certificates and bodies as the String readers they replace, kept here as the oracle.
final class PEMReadingTests: XCTestCase {
    /// GoTrustPool.pemCertificates as it read before (a String per line).
    static func stringPEMCertificates(_ bytes: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var body: String?
        var hasHeaders = false
        for raw in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            let line = String(decoding: raw.last == UInt8(ascii: "\r") ? raw.dropLast() : raw, as: UTF8.self)
            if line.hasPrefix("-----BEGIN ") {
                body = line == "-----BEGIN CERTIFICATE-----" ? "" : nil
                hasHeaders = false
            } else if line.hasPrefix("-----END ") {
                if let b = body, !hasHeaders, line == "-----END CERTIFICATE-----",
                    let data = Data(base64Encoded: b, options: .ignoreUnknownCharacters), DERWalk.isOneElement(Array(data))
                {
                    out.append(Array(data))
                }
                body = nil
            } else if body != nil {
                if line.contains(":") { hasHeaders = true }
                body! += line
            }
        }
        return out
    }

    /// DebianTrustStore.certificateBodies as it read before (a String per line).
    static func stringBodies(_ text: String) -> [String] {
        var out: [String] = []
        var current: [Substring]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let trimmed = line.hasSuffix("\r") ? line.dropLast() : line
            if trimmed == "-----BEGIN CERTIFICATE-----" {
                current = []
            } else if trimmed == "-----END CERTIFICATE-----" {
                if let lines = current { out.append(lines.joined()) }
                current = nil
            } else if current != nil {
                current!.append(trimmed.drop(while: { $0 == " " }))
            }
        }
        return out
    }

    /// PEM texts of the shapes the readers meet: several certificates, a block with headers,
    /// other block types, a truncated block, an END without BEGIN, text around the blocks, body
    /// lines indented, a body that is not base64, one whose DER does not walk, non-UTF-8 bytes.
    func shapes() throws -> [[UInt8]] {
        let a = String(decoding: try CertFixtures.bytes("ca.crt"), as: UTF8.self)
        let b = String(decoding: try CertFixtures.bytes("other-ca.crt"), as: UTF8.self)
        func lines(_ pem: String) -> [String] { pem.split(separator: "\n").map(String.init) }
        let la = lines(a)
        let texts = [
            a + b,
            "subject=CN a\n" + a + "\n\n" + b + "trailing text\n",
            la[0] + "\nProc-Type: 4,ENCRYPTED\n" + la.dropFirst().joined(separator: "\n") + "\n" + b,
            // A header line that adds nothing to the base64: only the header rule skips the block.
            la[0] + "\n-:-\n" + la.dropFirst().joined(separator: "\n") + "\n" + b,
            "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n" + a,
            "-----BEGIN TRUSTED CERTIFICATE-----\n" + la.dropFirst().dropLast().joined(separator: "\n")
                + "\n-----END TRUSTED CERTIFICATE-----\n" + b,
            la.dropLast().joined(separator: "\n") + "\n" + b,
            "-----END CERTIFICATE-----\n" + a,
            la[0] + "\n" + la.dropFirst().dropLast().map { "   " + $0 }.joined(separator: "\n") + "\n" + la.last! + "\n",
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n" + b,
            "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n",
            "", "\n\n", "-----BEGIN CERTIFICATE-----\n",
        ]
        var out = texts.map { Array($0.utf8) }
        out.append(Array(a.utf8) + [0xFF, 0xFE, 0x0A] + Array(b.utf8))
        if let system = FileManager.default.contents(atPath: "/etc/ssl/certs/ca-certificates.crt") { out.append(Array(system)) }
        return out
    }

    func testGoPoolReadsTheSameCertificatesAsTheStringReader() throws {
        for (i, bytes) in try shapes().enumerated() {
            XCTAssertEqual(GoTrustPool.pemCertificates(bytes), Self.stringPEMCertificates(bytes), "shape \(i)")
        }
        // CRLF lines: the same certificates as LF.
        let a = String(decoding: try CertFixtures.bytes("ca.crt"), as: UTF8.self)
        let crlf = Array(a.replacingOccurrences(of: "\n", with: "\r\n").utf8)
        XCTAssertEqual(GoTrustPool.pemCertificates(crlf), GoTrustPool.pemCertificates(Array(a.utf8)))
        XCTAssertEqual(GoTrustPool.pemCertificates(crlf).count, 1)
    }

    func testTheStoreCheckReadsTheSameBodiesAsTheStringReader() throws {
        for (i, bytes) in try shapes().enumerated() {
            let text = String(decoding: bytes, as: UTF8.self)
            XCTAssertEqual(DebianTrustStore.certificateBodies(text), Self.stringBodies(text), "shape \(i)")
        }
        // CRLF files give their bodies (the String reader split them at no line: "\r\n" is one
        // character), the same as LF: a CRLF source and the bundle that holds it agree.
        let a = String(decoding: try CertFixtures.bytes("ca.crt"), as: UTF8.self)
        let crlf = a.replacingOccurrences(of: "\n", with: "\r\n")
        XCTAssertEqual(Self.stringBodies(crlf), [])
        XCTAssertEqual(DebianTrustStore.certificateBodies(crlf), DebianTrustStore.certificateBodies(a))
        XCTAssertEqual(DebianTrustStore.certificateBodies(a).count, 1)
    }

    /// The store check's fast path (DebianTrustStore.bundleDamage): a bundle that is byte for
    /// byte the concatenation of its sources holds their certificates, each as many times, when
    /// no source ends inside a block. Every pair of shapes: where the rule lets the fast path
    /// answer, the bodies of the whole are the bodies of the parts; and a source that ends inside
    /// a block is caught (its lines run on into the next file's, so the two differ).
    func testTheStoreCheckAnswersWithoutParsingOnlyWhereParsingAgrees() throws {
        let shapes = try shapes()
        var caught = 0
        for (i, a) in shapes.enumerated() {
            for (j, b) in shapes.enumerated() {
                let whole = DebianTrustStore.certificateBodies(DebianTrustStore.concatenation([a, b]))
                let parts = DebianTrustStore.certificateBodies(a) + DebianTrustStore.certificateBodies(b)
                if DebianTrustStore.endsOutsideABlock(a) && DebianTrustStore.endsOutsideABlock(b) {
                    XCTAssertEqual(whole, parts, "shapes \(i), \(j)")
                } else if whole != parts {
                    caught += 1
                }
            }
        }
        XCTAssertGreaterThan(caught, 0)
        let open = Array("-----BEGIN CERTIFICATE-----\nMIIB\n".utf8)
        XCTAssertFalse(DebianTrustStore.endsOutsideABlock(open))
        XCTAssertFalse(DebianTrustStore.endsOutsideABlock(Array("-----BEGIN CERTIFICATE-----\r\n".utf8)))
        XCTAssertTrue(DebianTrustStore.endsOutsideABlock(open + Array("-----END CERTIFICATE-----\r\n\n".utf8)))
        XCTAssertTrue(DebianTrustStore.endsOutsideABlock([]))
    }

    /// The `<name>.pem` link names update-ca-certificates gives (its sed: spaces and commas to
    /// `_`, parentheses to `=`), which the native rebuild and the store's checks compare with.
    func testLinkNamesAreTheToolsNames() {
        XCTAssertEqual(DebianTrustStore.pemName("mozilla/A (B), C.crt".split(separator: "/").last.map(String.init)!), "A_=B=__C.pem")
        XCTAssertEqual(DebianTrustStore.pemName("ISRG_Root_X1.crt"), "ISRG_Root_X1.pem")
        XCTAssertEqual(DebianTrustStore.pemName("no-suffix"), "no-suffix.pem")
        XCTAssertEqual(DebianTrustStore.pemName("é (é).crt"), "é_=é=.pem")
    }
}
