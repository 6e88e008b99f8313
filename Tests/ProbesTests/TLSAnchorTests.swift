import Foundation
import TestSupport
import Vocabulary
import XCTest

@testable import Probes

/// Go's `crypto/x509` (containerd's verifier) treats every certificate of its pool as an anchor;
/// OpenSSL by default wants the chain to reach a self-signed root. A registry whose leaf is signed
/// by an intermediate, with only the intermediate given as the CA: containerd pulls, so the
/// runtime's TLS check must verify it; OpenSSL's own view (the OS tools') does not. A real
/// handshake with `openssl s_server` sending the leaf alone.
final class TLSAnchorTests: XCTestCase {
    func probe(anyTrustedIsAnAnchor: Bool, trust: String) throws -> CheckResult {
        let (server, port) = try startOpenSSLServer(
            cert: try CertFixtures.path("chain-leaf.crt"), key: try CertFixtures.path("chain-leaf.key"))
        defer { server.terminate() }
        let target = ProbeTarget(registry: try RegistryAddress("localhost:\(port)"), address: try IPAddress("127.0.0.1"))
        return untilListening {
            TLSProbe.run(
                name: "tls-runtime-trust", target: target, trustFile: trust, trustLabel: "the CA file",
                anyTrustedIsAnAnchor: anyTrustedIsAnAnchor)
        }
    }

    func testAnIntermediateGivenAsTheCAIsAnAnchorAsInGo() throws {
        let intermediate = try CertFixtures.path("chain-intermediate.crt")
        let go = try probe(anyTrustedIsAnAnchor: true, trust: intermediate)
        XCTAssertEqual(go.outcome, .pass, go.reason)
        XCTAssertEqual(go.details["verify_code"], "0", "\(go.details)")
        let openssl = try probe(anyTrustedIsAnAnchor: false, trust: intermediate)
        XCTAssertEqual(openssl.outcome, .fail, openssl.reason)
        XCTAssertEqual(openssl.details["verify_code"], "2", "\(openssl.details)")
        // An unrelated CA is no anchor for it either way.
        let other = try probe(anyTrustedIsAnAnchor: true, trust: try CertFixtures.path("other-ca.crt"))
        XCTAssertEqual(other.outcome, .fail, other.reason)
    }
}
