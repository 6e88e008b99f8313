import COpenSSL
import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import Transport

/// The bundle index reads each certificate's names as OpenSSL does, and a handshake verified with
/// the roots it picks gets the same code and chain as one verified with the whole file loaded.
final class TrustIndexTests: XCTestCase {
    func testNamesAreTheOnesOpenSSLDecodes() throws {
        var bundle = try String(contentsOfFile: try CertFixtures.path("two-cas.pem"), encoding: .utf8)
        for name in [
            "chain-root.crt", "chain-root-printable.crt", "chain-cross-root.crt", "chain-intermediate.crt", "chain-leaf.crt",
            "expired-ca.crt",
        ] {
            bundle += try String(contentsOfFile: try CertFixtures.path(name), encoding: .utf8)
        }
        // A real node's bundle, when this machine has one (Debian's, ~140 roots of every shape).
        if let system = try? String(contentsOfFile: "/etc/ssl/certs/ca-certificates.crt", encoding: .utf8) { bundle += system }
        let index = try XCTUnwrap(TrustIndex(pem: Array(bundle.utf8)))
        XCTAssertEqual(index.entries.count, bundle.components(separatedBy: "-----BEGIN CERTIFICATE-----").count - 1)
        for entry in index.entries {
            let x = try XCTUnwrap(
                entry.der.withUnsafeBufferPointer { b -> OpaquePointer? in
                    var p: UnsafePointer<UInt8>? = b.baseAddress
                    return d2i_X509(nil, &p, b.count)
                })
            defer { X509_free(x) }
            XCTAssertEqual(Array(entry.subject), TLSTrust.der(X509_get_subject_name(x)))
            XCTAssertEqual(Array(entry.issuer), TLSTrust.der(X509_get_issuer_name(x)))
        }
    }

    func testAnythingButPlainCertificatesIsLeftToOpenSSL() throws {
        for name in ["with-key.pem", "garbage.txt", "empty.crt", "public-key.pem"] {
            XCTAssertNil(TrustIndex(pem: try CertFixtures.bytes(name)), name)
        }
        let ca = try String(contentsOfFile: try CertFixtures.path("ca.crt"), encoding: .utf8)
        let trusted = ca.replacingOccurrences(of: "CERTIFICATE", with: "TRUSTED CERTIFICATE")
        XCTAssertNil(TrustIndex(pem: Array(trusted.utf8)), "TRUSTED CERTIFICATE carries OpenSSL trust settings")
        XCTAssertNil(TrustIndex(pem: Array(ca.dropLast(30).utf8)), "a block without its END line")
        var corrupt = Array(ca.utf8)
        corrupt[100] = UInt8(ascii: "*")
        XCTAssertNil(TrustIndex(pem: corrupt), "a character outside base64")
        XCTAssertNotNil(TrustIndex(pem: Array(("# comment\r\n" + ca.replacingOccurrences(of: "\n", with: "\r\n")).utf8)))
    }

    func testRootsAreFollowedThroughCrossSigning() throws {
        let bundle = try ["ca.crt", "other-ca.crt", "chain-cross-root.crt"].map {
            try String(contentsOfFile: try CertFixtures.path($0), encoding: .utf8)
        }.joined()
        let index = try XCTUnwrap(TrustIndex(pem: Array(bundle.utf8)))
        let cross = index.entries[2]
        let picked = index.certificates(named: [Array(cross.subject)])
        XCTAssertEqual(
            picked.map { p in index.entries.firstIndex { $0.der == p.der } }, [1, 2], "Other CA and the cross-signed root, in file order")
        XCTAssertTrue(index.certificates(named: [[0x30, 0x00]]).isEmpty)
    }

    /// A real handshake with `openssl s_server` serving leaf + intermediate, verified with bundles of
    /// every shape, indexed and loaded whole: same verify code, same verified chain.
    func testHandshakesVerifyAsWithTheWholeFileLoaded() throws {
        let dir = try makeTemporaryDirectory("trust-index")
        let port = UInt16.random(in: 20000...29999)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        server.arguments = [
            "s_server", "-quiet", "-accept", "127.0.0.1:\(port)", "-cert", try CertFixtures.path("chain-leaf.crt"),
            "-key", try CertFixtures.path("chain-leaf.key"), "-cert_chain", try CertFixtures.path("chain-intermediate.crt"),
        ]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { server.terminate() }

        let system = (try? String(contentsOfFile: "/etc/ssl/certs/ca-certificates.crt", encoding: .utf8)) ?? ""
        func pem(_ names: String...) throws -> String {
            try names.map { try String(contentsOfFile: try CertFixtures.path($0), encoding: .utf8) }.joined()
        }
        let cases: [(String, String, String, Int?)] = [
            ("root among many", system + (try pem("ca.crt", "chain-root.crt")), "localhost", 0),
            ("no root", system + (try pem("ca.crt", "other-ca.crt")), "localhost", 20),
            ("intermediate only", try pem("chain-intermediate.crt"), "localhost", nil),
            ("cross-signed root and its issuer", try pem("other-ca.crt", "chain-cross-root.crt"), "localhost", 0),
            ("cross-signed root alone", try pem("chain-cross-root.crt"), "localhost", nil),
            ("wrong name", try pem("chain-root.crt"), "registry.example", 62),
            ("IP in the SAN", try pem("chain-root.crt"), "127.0.0.1", 0),
            ("root named in another encoding", system + (try pem("chain-root-printable.crt")), "localhost", 0),
        ]
        for (label, bundle, serverName, expected) in cases {
            let file = dir + "/bundle.pem"
            try bundle.write(toFile: file, atomically: true, encoding: .utf8)
            let trust = try TLSTrust(trustFile: file)
            let indexed = try handshake(port: port, trust: trust, serverName: serverName)
            let whole = try handshake(port: port, trust: try TLSTrust(trustFile: file, indexed: false), serverName: serverName)
            XCTAssertEqual(indexed.code, whole.code, label)
            XCTAssertEqual(indexed.chain, whole.chain, label)
            if let expected { XCTAssertEqual(indexed.code, expected, label) } else { XCTAssertNotEqual(indexed.code, 0, label) }
            // Verified with the few roots its names lead to, never the whole bundle.
            XCTAssertLessThanOrEqual(trust.lastDecoded, 2, label)
        }
    }

    private func handshake(port: UInt16, trust: TLSTrust, serverName: String) throws -> (code: Int, chain: [String]) {
        let deadline = Date().addingTimeInterval(5)
        while true {
            do {
                let socket = try Socket.connect(
                    to: try IPAddress("127.0.0.1"), port: port, type: Int32(SOCK_STREAM.rawValue), timeoutMilliseconds: 2000)
                let connection = try TLSConnection(
                    socket: socket, trust: trust, serverName: serverName, serverIsIP: serverName == "127.0.0.1")
                try connection.handshake()
                return (connection.verifyCode, connection.verifiedChain.map(\.subject))
            } catch  where Date() < deadline {
                usleep(50_000)  // the server is still starting
            }
        }
    }

    /// The decoder as it was (a switch a byte), the oracle for the table it reads now.
    static func switchDecode(_ text: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var accumulator: UInt32 = 0
        var bits = 0
        var padding = 0
        for c in text {
            let v: UInt32
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt32(c - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "+"): v = 62
            case UInt8(ascii: "/"): v = 63
            case UInt8(ascii: "="):
                padding += 1
                continue
            case UInt8(ascii: " "), UInt8(ascii: "\t"): continue
            default: return nil
            }
            guard padding == 0 else { return nil }
            accumulator = (accumulator << 6) | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return padding <= 2 && !out.isEmpty ? out : nil
    }

    func testTheBase64TableDecodesAsTheSwitchDid() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("ABCXYZabcxyz0189+/= \t-_:\r\n".utf8) + [0, 0x80, 0xFF]
        for length in 0..<40 {
            for _ in 0..<200 {
                let text = (0..<length).map { _ in alphabet.randomElement(using: &rng)! }
                XCTAssertEqual(TrustIndex.base64Decode(text), Self.switchDecode(text), "\(text)")
            }
        }
        for b in 0...255 {
            let text = Array("QUJD".utf8) + [UInt8(b)] + Array("RA==".utf8)
            XCTAssertEqual(TrustIndex.base64Decode(text), Self.switchDecode(text), "byte \(b)")
        }
    }
}
