import Foundation
import HostSystem
import TestSupport
import XCTest

@testable import Transport

/// The loaded trust is reused while its file is unchanged, and loaded again once it changes: a
/// file named on this machine, and a host's bundle read inside its root.
final class TLSTrustTests: XCTestCase {
    func testTrustIsReusedUntilItsFileChanges() throws {
        let dir = try makeTemporaryDirectory("trust")
        try FileManager.default.createDirectory(atPath: dir + "/etc/ssl/certs", withIntermediateDirectories: true)
        let bundle = dir + "/etc/ssl/certs/bundle.pem"
        try FileManager.default.copyItem(atPath: try CertFixtures.path("ca.crt"), toPath: bundle)
        let files = HostFiles(root: try HostRoot(dir))
        // The host's path through a link, absolute as on the node: followed inside the root.
        try FileManager.default.createSymbolicLink(atPath: dir + "/etc/ssl/link.pem", withDestinationPath: "/etc/ssl/certs/bundle.pem")
        let sources: [TrustSource] = [.file(bundle), .hostFile(files, try HostPath("/etc/ssl/link.pem"))]
        let first = try sources.map { try TLSTrust.cached($0) }
        for (source, trust) in zip(sources, first) {
            XCTAssertTrue(trust === (try TLSTrust.cached(source)), "an unchanged file was loaded again: \(source)")
        }
        XCTAssertFalse(first[0] === first[1], "the machine's file and the host's are cached apart")
        // Replaced the way bundles are (a new file renamed over the old one).
        let two =
            try String(contentsOfFile: try CertFixtures.path("ca.crt"), encoding: .utf8)
            + String(contentsOfFile: try CertFixtures.path("other-ca.crt"), encoding: .utf8)
        try two.write(toFile: bundle, atomically: true, encoding: .utf8)
        for (source, trust) in zip(sources, first) {
            XCTAssertFalse(trust === (try TLSTrust.cached(source)), "a changed file was not loaded again: \(source)")
        }
        XCTAssertThrowsError(try TLSTrust.cached(.file(dir + "/missing.pem")))
        XCTAssertThrowsError(try TLSTrust.cached(.hostFile(files, try HostPath("/etc/ssl/missing.pem"))))
    }

    /// A bundle the index refuses (a TRUSTED CERTIFICATE block, as OpenSSL writes with -trustout)
    /// is loaded whole, as OpenSSL loads a CA file, from its bytes.
    func testABundleTheIndexRefusesIsLoadedAsOpenSSLLoadsIt() throws {
        let dir = try makeTemporaryDirectory("trust-whole")
        let trusted = dir + "/trusted.pem"
        _ = try sh(
            "/usr/bin/openssl", ["x509", "-in", try CertFixtures.path("ca.crt"), "-trustout", "-addtrust", "serverAuth", "-out", trusted])
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: trusted)))
        XCTAssertNil(TrustIndex(pem: bytes), "the index takes this bundle: the test does not reach the whole load")
        XCTAssertNoThrow(try TLSTrust(pem: bytes, naming: "trusted.pem"))
        XCTAssertThrowsError(try TLSTrust(pem: Array("not a bundle\n".utf8), naming: "junk"))
    }
}
