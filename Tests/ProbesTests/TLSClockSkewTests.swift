import Foundation
import TestSupport
import Vocabulary
import XCTest

@testable import Probes

/// The registry's certificate a little ahead of the node's clock (issued a minute ago on a
/// machine whose clock runs ahead): the TLS check verifies it within the notBefore tolerance and
/// warns, naming the clock; hours ahead, it still fails as not yet valid. A real handshake with
/// `openssl s_server`, certificates made by Python's `cryptography` with the validity wanted.
final class TLSClockSkewTests: XCTestCase {
    func makeCertificates(_ dir: String, leafNotBeforeAhead seconds: Int) throws {
        let script = """
            import datetime, sys
            from cryptography import x509
            from cryptography.x509.oid import NameOID
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import ec
            d, ahead = sys.argv[1], int(sys.argv[2])
            now = datetime.datetime.now(datetime.timezone.utc)
            def name(cn): return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
            ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
            ca = (x509.CertificateBuilder().subject_name(name("Skew CA")).issuer_name(name("Skew CA"))
                  .public_key(ca_key.public_key()).serial_number(1)
                  .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
                  .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                  .sign(ca_key, hashes.SHA256()))
            leaf = (x509.CertificateBuilder().subject_name(name("localhost")).issuer_name(ca.subject)
                    .public_key(key.public_key()).serial_number(2)
                    .not_valid_before(now + datetime.timedelta(seconds=ahead)).not_valid_after(now + datetime.timedelta(days=30))
                    .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
                    .sign(ca_key, hashes.SHA256()))
            open(d + "/ca.pem", "wb").write(ca.public_bytes(serialization.Encoding.PEM))
            open(d + "/leaf.pem", "wb").write(leaf.public_bytes(serialization.Encoding.PEM))
            open(d + "/leaf.key", "wb").write(key.private_bytes(serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
            """
        let r = try sh("/usr/bin/python3", ["-c", script, dir, String(seconds)])
        guard r.status == 0 else { throw XCTSkip("Python's cryptography is needed (Tests/nodes/sandbox-node deps): \(r.stderr)") }
    }

    func probe(leafNotBeforeAhead seconds: Int) throws -> CheckResult {
        let dir = try makeTemporaryDirectory("tls-skew")
        try makeCertificates(dir, leafNotBeforeAhead: seconds)
        let (server, port) = try startOpenSSLServer(cert: dir + "/leaf.pem", key: dir + "/leaf.key")
        defer { server.terminate() }
        let target = ProbeTarget(registry: try RegistryAddress("localhost:\(port)"), address: try IPAddress("127.0.0.1"))
        return untilListening { TLSProbe.run(name: "tls", target: target, trust: .file(dir + "/ca.pem"), trustLabel: "the test CA") }
    }

    func testACertificateTwoMinutesAheadVerifiesWithAWarning() throws {
        let r = try probe(leafNotBeforeAhead: 120)
        XCTAssertEqual(r.outcome, .warn, r.reason)
        XCTAssertEqual(r.details["verify_code"], "0", "\(r.details)")
        XCTAssertTrue(r.reason.contains("verified with the test CA"), r.reason)
        XCTAssertTrue(r.reason.contains("s ahead of this node's clock"), r.reason)
        XCTAssertTrue(r.reason.contains("containerd refuse"), r.reason)
    }

    func testACertificateAnHourAheadIsNotYetValid() throws {
        let r = try probe(leafNotBeforeAhead: 3600)
        XCTAssertEqual(r.outcome, .fail, r.reason)
        XCTAssertEqual(r.details["verify_code"], "9", "\(r.details)")
        XCTAssertTrue(r.reason.contains("not yet valid"), r.reason)
    }
}
