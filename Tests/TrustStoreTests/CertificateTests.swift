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

final class ContainerdConfigTests: XCTestCase {
    func testConfigPathOfContainerd2AndVersion2Layouts() {
        let v3 = ContainerdRegistryConfig.parse(
            """
            version = 3
            [plugins."io.containerd.cri.v1.images".registry]
              config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"
            """)
        XCTAssertEqual(v3.configPaths.map(\.path), ["/etc/containerd/certs.d", "/etc/docker/certs.d"])
        let v2 = ContainerdRegistryConfig.parse(
            """
            version = 2
            [plugins."io.containerd.grpc.v1.cri".registry]
              config_path = '/etc/containerd/certs.d' # comment
            """)
        XCTAssertEqual(v2.configPaths.map(\.path), ["/etc/containerd/certs.d"])
        XCTAssertNil(v2.note)
    }

    func testMissingConfigPathIsSaidPlainly() {
        let c = ContainerdRegistryConfig.parse(
            """
            version = 2
            [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
              endpoint = ["https://mirror"]
            [plugins."other".registry]
              config_path = "/elsewhere"
            """)
        XCTAssertEqual(c.configPaths, [])
        XCTAssertTrue(c.note?.contains("ignores certs.d") == true)
    }
}

/// containerd's `imports`, as containerd 1.x and 2.x read them.
final class ContainerdImportsTests: XCTestCase {
    func read(_ files: [String: String]) throws -> ContainerdRegistryConfig {
        let dir = try makeTemporaryDirectory("containerd-imports")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let host = HostFiles(root: try HostRoot(dir))
        for (path, text) in files { try host.writeAtomically(try HostPath(path), text) }
        return try ContainerdRegistryConfig.read(from: host)
    }

    let main = """
        version = 2
        imports = ["/etc/containerd/conf.d/*.toml", "extra.toml"]
        [plugins."io.containerd.grpc.v1.cri".registry]
          config_path = "/etc/containerd/certs.d"
        """

    func testAnImportOfTheCRITableReplacesItWholeInVersion2() throws {
        let c = try read([
            "/etc/containerd/config.toml": main,
            "/etc/containerd/conf.d/10-cri.toml": "[plugins.\"io.containerd.grpc.v1.cri\"]\n  enable_selinux = false\n",
        ])
        XCTAssertEqual(c.configPaths, [])
        XCTAssertTrue(c.note?.contains("dropped by /etc/containerd/conf.d/10-cri.toml") == true, c.note ?? "")
        // A dotted key of the plugin counts as its table too.
        let dotted = try read([
            "/etc/containerd/config.toml": main,
            "/etc/containerd/extra.toml": "plugins.\"io.containerd.grpc.v1.cri\".enable_selinux = false\n",
        ])
        XCTAssertEqual(dotted.configPaths, [])
    }

    func testImportsThatLeaveTheCRITableOrSetConfigPathThemselves() throws {
        let other = try read([
            "/etc/containerd/config.toml": main,
            "/etc/containerd/conf.d/10-runc.toml": "[plugins.\"io.containerd.runtime.v1.linux\"]\n  shim_debug = true\n",
        ])
        XCTAssertEqual(other.configPaths.map(\.path), ["/etc/containerd/certs.d"])
        XCTAssertNil(other.note)
        // Later imports win: conf.d in name order, then extra.toml (relative to /etc/containerd).
        let later = try read([
            "/etc/containerd/config.toml": main,
            "/etc/containerd/conf.d/20-b.toml": "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/b\"\n",
            "/etc/containerd/conf.d/10-a.toml": "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/a\"\n",
            "/etc/containerd/conf.d/.hidden.toml": "[plugins.\"io.containerd.grpc.v1.cri\"]\n",
            "/etc/containerd/extra.toml": "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/extra:/more\"\n",
        ])
        XCTAssertEqual(later.configPaths.map(\.path), ["/extra", "/more"])
        XCTAssertEqual(later.note, "config_path from /etc/containerd/extra.toml, imported by /etc/containerd/config.toml")
        // A missing import is skipped, as containerd skips a pattern that matches nothing.
        XCTAssertEqual(try read(["/etc/containerd/config.toml": main]).configPaths.map(\.path), ["/etc/containerd/certs.d"])
    }

    func testVersion3MergesKeys() throws {
        let v3 = main.replacingOccurrences(of: "version = 2", with: "version = 3")
            .replacingOccurrences(of: "io.containerd.grpc.v1.cri", with: "io.containerd.cri.v1.images")
        let c = try read([
            "/etc/containerd/config.toml": v3,
            "/etc/containerd/conf.d/10-cri.toml": "[plugins.\"io.containerd.cri.v1.images\"]\n  snapshotter = \"native\"\n",
        ])
        XCTAssertEqual(c.configPaths.map(\.path), ["/etc/containerd/certs.d"])
    }
}

final class K3sTests: XCTestCase {
    func testK3sCertsDIsLeftToK3s() throws {
        let dir = try makeTemporaryDirectory("k3s")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = HostFiles(root: try HostRoot(dir))
        try files.writeAtomically(try HostPath("/var/lib/rancher/k3s/agent/etc/containerd/config.toml"), "version = 2\n")
        try files.writeAtomically(
            try HostPath("/etc/containerd/config.toml"),
            "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n")
        let c = try ContainerdRegistryConfig.read(from: files)
        XCTAssertEqual(c.configPaths, [])
        XCTAssertTrue(c.note?.contains("/etc/rancher/k3s/registries.yaml") == true)
    }
}

final class RuntimeTrustTests: XCTestCase {
    func testHostsTOMLCAPathsAbsoluteRelativeAndLists() throws {
        let dir = try HostPath("/etc/containerd/certs.d/r:443")
        let paths = RegistryTrustLocations.caPaths(
            inHostsTOML: """
                server = "https://r:443"
                [host."https://r:443"]
                  ca = "/etc/pki/r.pem"
                [host."https://mirror:443"]
                  ca = ["ca.crt", "/x/y.crt"]
                  capabilities = ["pull"]
                """, dir: dir)
        XCTAssertEqual(paths.map(\.path), ["/etc/pki/r.pem", "/etc/containerd/certs.d/r:443/ca.crt", "/x/y.crt"])
    }
}
