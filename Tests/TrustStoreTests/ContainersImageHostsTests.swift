import Containerd
import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import TrustStore

/// containers/image's certificate folder and registries.conf rules, on a host root in a temporary
/// folder. skopeo's real pulls in a booted node check the same layouts (ContainersImageIntegrationTests).
final class ContainersImageHostsTests: XCTestCase {
    var node: TemporaryHostRoot!
    var files: HostFiles { node.files }
    var root: String { node.directory }
    let host = "reg.ns.svc.cluster.local:443"
    var repository: String { host + "/node-agent/pull-probe" }

    override func setUpWithError() throws { node = try TemporaryHostRoot("cimage") }
    override func tearDown() { node = nil }

    func put(_ path: String, _ text: String = "") throws { try node.put(path, text) }
    func select() throws -> ContainerdHosts { try ContainersImageHosts.select(files: files, host: host, repository: repository) }

    func testTheFirstCertsFolderThatExistsGivesItsCrtFiles() throws {
        XCTAssertNil(try select().folder)
        XCTAssertEqual(try select().hosts.map(\.caFiles), [nil])
        try put("/etc/docker/certs.d/\(host)/ca.crt")
        XCTAssertEqual(try select().folder?.path, "/etc/docker/certs.d/\(host)")
        try put("/etc/containers/certs.d/\(host)/a.crt")
        try put("/etc/containers/certs.d/\(host)/notes.txt")
        let s = try select()
        XCTAssertEqual(s.folder?.path, "/etc/containers/certs.d/\(host)")
        XCTAssertEqual(s.hosts.map(\.caFiles), [[try HostPath("/etc/containers/certs.d/\(host)/a.crt")]])
        XCTAssertNil(s.failure)
        // A client certificate without its key refuses every pull.
        try put("/etc/containers/certs.d/\(host)/client.cert")
        XCTAssertTrue(try select().failure?.contains("has no client.key") ?? false)
    }

    func testRegistriesConfLongestPrefixDropInsAndV1Lists() throws {
        try put(
            "/etc/containers/registries.conf",
            """
            unqualified-search-registries = ["docker.io"]
            [[registry]]
            prefix = "reg.ns.svc.cluster.local"
            insecure = true
            [[registry]]
            location = "\(host)/other"
            blocked = true
            """)
        // "reg.ns.svc.cluster.local" matches "reg.ns.svc.cluster.local:443/…" (containers/image says not to rely on it).
        XCTAssertEqual(try select().hosts.map(\.skipVerify), [true])
        try put("/etc/containers/registries.conf.d/50-x.conf", "[[registry]]\nprefix = \"reg.ns.svc.cluster.local\"\ninsecure = false\n")
        XCTAssertEqual(try select().hosts.map(\.skipVerify), [nil])
        try put("/etc/containers/registries.conf.d/60-y.conf", "[registries.block]\nregistries = [\"\(host)/node-agent\"]\n")
        XCTAssertTrue(try select().failure?.contains("blocks") ?? false)
        try put("/etc/containers/registries.conf.d/60-y.conf", "[[registry]\n")
        let broken = try select()
        XCTAssertTrue(broken.failure?.contains("does not decode") ?? false, "\(broken)")
        XCTAssertTrue(ContainersImageHosts.matches("a.b.example.com/x", prefix: "*.example.com"))
        XCTAssertFalse(ContainersImageHosts.matches("reg.ns.svc.cluster.local.evil/x", prefix: "reg.ns.svc.cluster.local"))
    }
}
