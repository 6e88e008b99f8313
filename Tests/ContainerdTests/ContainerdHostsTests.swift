import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import Containerd
@testable import TrustStore

/// containerd's folder and host selection, on a host root in a temporary folder. The same
/// layouts are pulled through by each release's real containerd in ContainerdHostsIntegrationTests.
final class ContainerdHostsTests: XCTestCase {
    var node: TemporaryHostRoot!
    var files: HostFiles { node.files }
    var root: String { node.directory }
    let registry = try! RegistryAddress("reg.ns.svc.cluster.local:443")
    let roots = [try! HostPath("/etc/containerd/certs.d"), try! HostPath("/etc/docker/certs.d")]

    override func setUpWithError() throws { node = try TemporaryHostRoot("hosts") }
    override func tearDown() { node = nil }

    func put(_ path: String, _ text: String = "") throws { try node.put(path, text) }
    func select(_ host: String = "reg.ns.svc.cluster.local:443") throws -> ContainerdHosts {
        try ContainerdHosts.select(files: files, roots: roots, host: host)
    }

    func testNoFolderIsTheReferencesHostOverHTTPSWithTheSystemRoots() throws {
        let s = try select()
        XCTAssertNil(s.folder)
        XCTAssertEqual(
            s.hosts,
            [
                .init(
                    scheme: "https", host: "reg.ns.svc.cluster.local:443", capabilities: ContainerdHosts.all, caFiles: nil, skipVerify: nil,
                    isServer: true)
            ])
        XCTAssertTrue(s.hosts[0].isEndpoint(of: registry))
    }

    func testFolderOrderUnderscoredThenHostPortThenDefaultNeverPortless() throws {
        try put("/etc/containerd/certs.d/reg.ns.svc.cluster.local/ca.crt")
        XCTAssertNil(try select().folder, "containerd never reads the port-less folder for a host:port reference")
        try put("/etc/containerd/certs.d/_default/hosts.toml", "server = \"https://elsewhere:5000\"\n")
        XCTAssertEqual(try select().folder?.path, "/etc/containerd/certs.d/_default")
        XCTAssertEqual(try select().hosts.map(\.host), ["elsewhere:5000"])
        try put("/etc/containerd/certs.d/reg.ns.svc.cluster.local:443/x.crt")
        XCTAssertEqual(try select().folder?.path, "/etc/containerd/certs.d/reg.ns.svc.cluster.local:443")
        try put("/etc/containerd/certs.d/reg.ns.svc.cluster.local_443_/y.crt")
        let s = try select()
        XCTAssertEqual(s.folder?.path, "/etc/containerd/certs.d/reg.ns.svc.cluster.local_443_")
        XCTAssertEqual(s.hosts.map(\.caFiles), [[try HostPath("/etc/containerd/certs.d/reg.ns.svc.cluster.local_443_/y.crt")]])
        // A reference without a port reads the port-less folder.
        XCTAssertEqual(try select("reg.ns.svc.cluster.local").folder?.path, "/etc/containerd/certs.d/reg.ns.svc.cluster.local")
    }

    func testTheFirstRootWithAnyMatchWinsItsDefaultIncluded() throws {
        try put("/etc/docker/certs.d/reg.ns.svc.cluster.local:443/ca.crt")
        XCTAssertEqual(try select().folder?.path, "/etc/docker/certs.d/reg.ns.svc.cluster.local:443")
        try put("/etc/containerd/certs.d/_default/hosts.toml", "skip_verify = true\n")
        let s = try select()
        XCTAssertEqual(s.folder?.path, "/etc/containerd/certs.d/_default")
        XCTAssertEqual(s.hosts.map(\.skipVerify), [true])
        XCTAssertEqual(s.hosts.map(\.host), ["reg.ns.svc.cluster.local:443"])
    }

    func testHostsInFileOrderThenTheServerEachWithItsOwnCAs() throws {
        try put(
            "/etc/containerd/certs.d/reg.ns.svc.cluster.local:443/hosts.toml",
            """
            server = "https://reg.ns.svc.cluster.local:443"
            ca = "top.crt"

            [host."https://zz-mirror:5000"]
              capabilities = ["pull", "resolve"]
              ca = ["/etc/pki/m.pem", "m2.crt"]
            [host."https://zz-mirror:5000".header]
              x-a = "b"
            [host."https://aa-mirror"]
              skip_verify = true
              capabilities = ["pull"]
            """)
        let s = try select()
        let dir = "/etc/containerd/certs.d/reg.ns.svc.cluster.local:443/"
        XCTAssertEqual(s.hostsTOML?.path, dir + "hosts.toml")
        XCTAssertEqual(s.hosts.map(\.host), ["zz-mirror:5000", "aa-mirror", "reg.ns.svc.cluster.local:443"])
        XCTAssertEqual(
            s.hosts.map(\.caFiles), [[try HostPath("/etc/pki/m.pem"), try HostPath(dir + "m2.crt")], nil, [try HostPath(dir + "top.crt")]])
        XCTAssertEqual(s.hosts.map(\.capabilities), [["pull", "resolve"], ["pull"], ContainerdHosts.all])
        XCTAssertEqual(s.hosts.map(\.skipVerify), [nil, true, nil])
        XCTAssertEqual(s.hosts.map { $0.isEndpoint(of: registry) }, [false, false, true])
    }

    func testTheAgentsOwnHostsTOMLReadsAsContainerdReadsIt() throws {
        let ca = try HostPath("/etc/containerd/certs.d/reg.ns.svc.cluster.local:443/ca.crt")
        try put("/etc/containerd/certs.d/reg.ns.svc.cluster.local:443/hosts.toml", TrustInstaller.hostsTOML(registry: registry, caFile: ca))
        let s = try select()
        XCTAssertEqual(s.hosts.map(\.caFiles), [[ca], nil])
        XCTAssertTrue(s.hosts.allSatisfy { $0.isEndpoint(of: registry) })
    }

    func testAFileThatDoesNotDecodeFallsBackToTheCrtFiles() throws {
        let dir = "/etc/containerd/certs.d/reg.ns.svc.cluster.local:443"
        for bad in [
            "server = \n", "capabilities = [\"pull\", \"fetch\"]\n", "skip_verify = \"yes\"\n", "ca = 5\n",
            "[host.\"https://m\"]\nca = 1\n",
        ] {
            try put(dir + "/hosts.toml", bad)
            try put(dir + "/ca.crt")
            let s = try select()
            XCTAssertNil(s.hostsTOML, bad)
            XCTAssertEqual(s.hosts.map(\.caFiles), [[try HostPath(dir + "/ca.crt")]], bad)
            XCTAssertTrue(s.notes.first?.contains("falls back to the folder's *.crt files") ?? false, "\(bad): \(s.notes)")
        }
        // An empty file is Docker's layout too, without a note.
        try put(dir + "/hosts.toml", "")
        XCTAssertEqual(try select().notes, [])
        XCTAssertEqual(try select().hosts.map(\.caFiles), [[try HostPath(dir + "/ca.crt")]])
    }

    /// containerd 1.x's parser wants a [host] table: without one, the file is Docker's layout.
    func testContainerd1ReadsAFileWithoutHostTablesAsDockersLayout() throws {
        let dir = "/etc/containerd/certs.d/reg.ns.svc.cluster.local:443"
        try put(dir + "/hosts.toml", "skip_verify = true\nca = \"ca.pem\"\n")
        try put(dir + "/x.crt")
        let two = try ContainerdHosts.select(files: files, roots: roots, host: registry.hostAndPort, major: 2)
        XCTAssertEqual(two.hosts.map(\.skipVerify), [true])
        XCTAssertEqual(two.hosts.map(\.caFiles), [[try HostPath(dir + "/ca.pem")]])
        let one = try ContainerdHosts.select(files: files, roots: roots, host: registry.hostAndPort, major: 1)
        XCTAssertNil(one.hostsTOML)
        XCTAssertEqual(one.hosts.map(\.skipVerify), [nil])
        XCTAssertEqual(one.hosts.map(\.caFiles), [[try HostPath(dir + "/x.crt")]])
        XCTAssertTrue(one.notes.first?.contains("containerd 1.x") ?? false, "\(one.notes)")
    }

    func testEndpointMatchingTakesTheSchemesDefaultPort() throws {
        func host(_ scheme: String, _ h: String) -> ContainerdHosts.Host {
            .init(scheme: scheme, host: h, capabilities: ContainerdHosts.all, caFiles: nil, skipVerify: nil, isServer: true)
        }
        XCTAssertTrue(host("https", "reg.ns.svc.cluster.local").isEndpoint(of: registry))
        XCTAssertTrue(host("https", "REG.ns.svc.cluster.local:443").isEndpoint(of: registry))
        XCTAssertFalse(host("http", "reg.ns.svc.cluster.local").isEndpoint(of: registry))
        XCTAssertFalse(host("https", "reg.ns.svc.cluster.local:5000").isEndpoint(of: registry))
    }

    func testGoPoolIsTheSystemRootsPlusTheCAsAndRefusesACAItCannotLoad() throws {
        let ca = try CertFixtures.bytes("ca.crt")
        let other = try CertFixtures.bytes("other-ca.crt")
        try put("/etc/ssl/certs/ca-certificates.crt", String(decoding: ca, as: UTF8.self))
        // A certificate put straight into the folder counts for Go; a hash link to a name in the
        // same folder is skipped (it would repeat one).
        try put("/usr/local/share/x/other.pem", String(decoding: other, as: UTF8.self))
        try FileManager.default.createSymbolicLink(
            atPath: root + "/etc/ssl/certs/other.pem", withDestinationPath: "/usr/local/share/x/other.pem")
        try FileManager.default.createSymbolicLink(atPath: root + "/etc/ssl/certs/1234.0", withDestinationPath: "other.pem")
        let system = GoTrustPool.systemRoots(files: files, environment: [:])
        XCTAssertEqual(system.certificates.count, 2, system.summary)
        XCTAssertTrue(system.summary.contains("/etc/ssl/certs/ca-certificates.crt and 2 files of /etc/ssl/certs"), system.summary)
        // SSL_CERT_FILE and SSL_CERT_DIR in containerd's environment replace Go's lists.
        let env = GoTrustPool.systemRoots(
            files: files, environment: ["SSL_CERT_FILE": "/usr/local/share/x/other.pem", "SSL_CERT_DIR": "/nowhere"])
        XCTAssertEqual(env.certificates.count, 1)

        try put("/etc/containerd/extra.crt", "junk\n" + String(decoding: other + ca, as: UTF8.self))
        let pool = GoTrustPool.build(files: files, environment: [:], caFiles: [try HostPath("/etc/containerd/extra.crt")])
        XCTAssertEqual(pool.certificates.count, 2, "duplicates count once")
        XCTAssertNil(pool.failure)
        let missing = GoTrustPool.build(files: files, environment: [:], caFiles: [try HostPath("/etc/containerd/missing.crt")])
        XCTAssertTrue(missing.failure?.contains("unable to read CA cert") ?? false, "\(missing.failure ?? "nil")")
        try put("/etc/containerd/empty.crt", "not a certificate\n")
        let empty = GoTrustPool.build(files: files, environment: [:], caFiles: [try HostPath("/etc/containerd/empty.crt")])
        XCTAssertTrue(empty.failure?.contains("unable to load CA cert") ?? false, "\(empty.failure ?? "nil")")
    }
}
