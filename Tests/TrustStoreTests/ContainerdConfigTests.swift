import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import TrustStore

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

    func testTablesAsContainerd2WritesThemWithSingleQuotes() {
        let c = ContainerdRegistryConfig.parse(
            """
            version = 3
            [plugins]
              [plugins.'io.containerd.cri.v1.images'.registry]
                config_path = '/etc/containerd/certs.d'
            """)
        XCTAssertEqual(c.configPaths.map(\.path), ["/etc/containerd/certs.d"])
    }

    func testTheMajorVersionIsInTheGoPath() {
        XCTAssertEqual(ContainerdRegistryConfig.majorVersion(goPath: "github.com/containerd/containerd/v2/cmd/containerd"), 2)
        XCTAssertEqual(ContainerdRegistryConfig.majorVersion(goPath: "github.com/containerd/containerd/cmd/containerd"), 1)
        XCTAssertEqual(ContainerdRegistryConfig.majorVersion(goPath: "github.com/containerd/containerd"), 1)
        XCTAssertNil(ContainerdRegistryConfig.majorVersion(goPath: "github.com/k3s-io/k3s/cmd/server"))
        XCTAssertNil(ContainerdRegistryConfig.majorVersion(goPath: nil))
    }

    func testNoConfigFileMeansCertsDIsIgnored() throws {
        let dir = try makeTemporaryDirectory("containerd-none")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for major in [1, 2] {
            let c = try ContainerdRegistryConfig.read(from: HostFiles(root: try HostRoot(dir)), major: major)
            XCTAssertEqual(c.configPaths, [], "containerd \(major).x")
            XCTAssertTrue(
                c.note?.hasPrefix("no /etc/containerd/config.toml: containerd's config_path is empty, so it ignores certs.d") == true,
                c.note ?? "")
        }
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
    /// containerd 1.x's reading unless `major` says otherwise (the folder has no binary).
    func read(_ files: [String: String], major: Int? = 1) throws -> ContainerdRegistryConfig {
        let dir = try makeTemporaryDirectory("containerd-imports")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let host = HostFiles(root: try HostRoot(dir))
        for (path, text) in files { try host.writeAtomically(try HostPath(path), text) }
        return try ContainerdRegistryConfig.read(from: host, major: major)
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

    func testContainerd2MergesKeysEvenIntoAVersion2File() throws {
        let cri = "[plugins.\"io.containerd.grpc.v1.cri\"]\n  enable_selinux = false\n"
        let files = ["/etc/containerd/config.toml": main, "/etc/containerd/conf.d/10-cri.toml": cri]
        XCTAssertEqual(try read(files, major: 2).configPaths.map(\.path), ["/etc/containerd/certs.d"])
        XCTAssertEqual(try read(files, major: 1).configPaths, [])
    }

    func testVersion3MergesKeys() throws {
        let v3 = main.replacingOccurrences(of: "version = 2", with: "version = 3")
            .replacingOccurrences(of: "io.containerd.grpc.v1.cri", with: "io.containerd.cri.v1.images")
        let c = try read(
            [
                "/etc/containerd/config.toml": v3,
                "/etc/containerd/conf.d/10-cri.toml": "[plugins.\"io.containerd.cri.v1.images\"]\n  snapshotter = \"native\"\n",
            ], major: 2)
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
