import Foundation
import HostSystem
import TestSupport
import TrustStore
import Vocabulary
import XCTest

@testable import Probes
@testable import Transport

/// Go's `crypto/x509` (containerd's verifier) treats every certificate of its pool as an anchor;
/// OpenSSL by default wants the chain to reach a self-signed root. A registry whose leaf is signed
/// by an intermediate, with only the intermediate given as the CA: containerd pulls, so the
/// runtime's TLS check must verify it; OpenSSL's own view (the OS tools') does not. A real
/// handshake with `openssl s_server` sending the leaf alone.
final class TLSAnchorTests: XCTestCase {
    func probe(_ source: TrustSource) throws -> CheckResult {
        let (server, port) = try startOpenSSLServer(
            cert: try CertFixtures.path("chain-leaf.crt"), key: try CertFixtures.path("chain-leaf.key"))
        defer { server.terminate() }
        let target = ProbeTarget(registry: try RegistryAddress("localhost:\(port)"), address: try IPAddress("127.0.0.1"))
        return untilListening { TLSProbe.run(name: "tls-runtime-trust", target: target, trust: source, trustLabel: "the CA file") }
    }

    /// Go's pool of exactly the certificates of `file` (its SSL_CERT_FILE, no SSL_CERT_DIR).
    func pool(of file: String) throws -> TrustSource {
        let empty = try makeTemporaryDirectory("no-cert-dir")
        defer { try? FileManager.default.removeItem(atPath: empty) }
        return .pool(
            GoTrustPool.systemRoots(files: HostFiles(root: try HostRoot("/")), environment: ["SSL_CERT_FILE": file, "SSL_CERT_DIR": empty]))
    }

    func testAnIntermediateGivenAsTheCAIsAnAnchorAsInGo() throws {
        let intermediate = try CertFixtures.path("chain-intermediate.crt")
        let go = try probe(try pool(of: intermediate))
        XCTAssertEqual(go.outcome, .pass, go.reason)
        XCTAssertEqual(go.details["verify_code"], "0", "\(go.details)")
        let openssl = try probe(.file(intermediate))
        XCTAssertEqual(openssl.outcome, .fail, openssl.reason)
        XCTAssertEqual(openssl.details["verify_code"], "2", "\(openssl.details)")
        // An unrelated CA is no anchor for it either way.
        let other = try probe(try pool(of: try CertFixtures.path("other-ca.crt")))
        XCTAssertEqual(other.outcome, .fail, other.reason)
    }

    /// containerd's pool on a node whose system roots lack the registry's CA: with hosts.toml's
    /// `ca` naming the intermediate, the system roots plus it verify (each an anchor); the
    /// system roots alone do not.
    func testContainerdsPoolOfSystemRootsPlusTheHostsCAVerifies() throws {
        let root = try makeTemporaryDirectory("pool")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/etc/ssl/certs", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: try CertFixtures.path("other-ca.crt"), toPath: root + "/etc/ssl/certs/ca-certificates.crt")
        try FileManager.default.createDirectory(atPath: root + "/etc/containerd/certs.d/r", withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: try CertFixtures.path("chain-intermediate.crt"), toPath: root + "/etc/containerd/certs.d/r/ca.crt")
        let files = HostFiles(root: try HostRoot(root))
        let pool = GoTrustPool.build(files: files, environment: [:], caFiles: [try HostPath("/etc/containerd/certs.d/r/ca.crt")])
        XCTAssertEqual(pool.certificates.count, 2)
        let with = try probe(.pool(pool))
        XCTAssertEqual(with.outcome, .pass, with.reason)
        let without = try probe(.pool(GoTrustPool.build(files: files, environment: [:], caFiles: nil)))
        XCTAssertEqual(without.outcome, .fail, without.reason)
    }
}
