import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import Containerd
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

/// k3s and RKE2 nodes from fixtures laid out as their releases lay them out (no k3s binary can
/// be had here: the version is in a file as k3s's binary carries it, among other bytes).
final class K3sTests: XCTestCase {
    let registry = try! RegistryAddress("registry-service.openfaas.svc.cluster.local:443")
    let k3sCertsD = "/var/lib/rancher/k3s/agent/etc/containerd/certs.d"
    let v2Generated = """
        # File generated by k3s. DO NOT EDIT. Use config.toml.tmpl instead.
        version = 2
        [plugins."io.containerd.grpc.v1.cri".registry]
          config_path = "/var/lib/rancher/k3s/agent/etc/containerd/certs.d"

        """

    func node(_ layout: [String: String], binaryVersion: String? = nil) throws -> HostFiles {
        let dir = try makeTemporaryDirectory("k3s")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let files = HostFiles(root: try HostRoot(dir))
        for (path, text) in layout.merging(["/etc/os-release": "ID=debian\nVERSION_ID=\"12\"\n"], uniquingKeysWith: { given, _ in given }) {
            try files.writeAtomically(try HostPath(path), text)
        }
        if let binaryVersion {
            // As in k3s's binary: the ldflags string among megabytes of other bytes, past the
            // first chunk the scan reads.
            var bytes = [UInt8](repeating: 0x2e, count: (1 << 20) - 3)
            bytes += Array("go1.23.1\u{0}\(binaryVersion)\u{0}v1.2.3 other".utf8)
            try files.writeAtomically(try HostPath("/usr/local/bin/k3s"), bytes, mode: 0o755)
        }
        return files
    }

    func testVersionsThatKeepForeignFolders() {
        func keeps(_ v: String) -> Bool? {
            K3sNode(distribution: .k3s, version: K3sNode.Version(v), registryHosts: [], registriesProblem: nil).keepsForeignFolders
        }
        XCTAssertEqual(keeps("v1.31.1+k3s1"), true)
        XCTAssertEqual(keeps("v1.31.0+k3s1"), false)
        XCTAssertEqual(keeps("v1.30.5+k3s1"), true)
        XCTAssertEqual(keeps("v1.30.4+k3s1"), false)
        XCTAssertEqual(keeps("v1.29.9-rke2r1"), true)
        XCTAssertEqual(keeps("v1.28.13+k3s1"), false)
        XCTAssertEqual(keeps("v1.28.14+k3s1"), true)
        XCTAssertEqual(keeps("v1.27.16+k3s1"), false)
        XCTAssertEqual(keeps("v1.34.2+k3s1"), true)
        XCTAssertNil(K3sNode.Version("1.31.1"))
        XCTAssertNil(keeps("nonsense"))
    }

    func testACurrentK3sGetsTheAgentsFolderInItsCertsD() throws {
        let files = try node(
            [
                "/var/lib/rancher/k3s/agent/etc/containerd/config.toml": v2Generated,
                "/etc/rancher/k3s/registries.yaml": "mirrors:\n  docker.io:\n    endpoint: [\"https://mirror.example.com\"]\n",
                // A Debian containerd config on the same node is not what k3s's containerd reads.
                "/etc/containerd/config.toml": "version = 2\n",
                "/etc/os-release": "ID=debian\nVERSION_ID=\"12\"\n",
            ], binaryVersion: "v1.31.1+k3s1")
        let k3s = try XCTUnwrap(try K3sNode.detect(files: files))
        XCTAssertEqual(k3s.version?.description, "v1.31.1+k3s1")
        XCTAssertEqual(k3s.registryHosts, ["docker.io"])
        let c = try ContainerdRegistryConfig.read(from: files, registry: registry)
        XCTAssertEqual(c.configPaths.map(\.path), [k3sCertsD])
        XCTAssertEqual(c.configFile?.path, "/var/lib/rancher/k3s/agent/etc/containerd/config.toml")
        XCTAssertTrue(c.note?.contains("k3s v1.31.1+k3s1 keeps certs.d folders without its header") == true, c.note ?? "")

        // The trust plan writes the agent's marked hosts.toml and CA there.
        let plan = try TrustInstaller.plan(
            try TrustFacts.gather(files: files, registry: registry), registry: registry,
            certificates: try CertificateParser.parseCAFile(try CertFixtures.bytes("ca.crt"), source: "ca.crt"), refreshMode: .native)
        let written = Set(plan.fileChanges.map(\.path.path).filter { $0.hasPrefix(k3sCertsD) })
        XCTAssertTrue(
            written.isSuperset(of: ["\(k3sCertsD)/\(registry.hostAndPort)/hosts.toml", "\(k3sCertsD)/\(registry.hostAndPort)/ca.crt"]),
            "\(written)")
    }

    func testAnOldK3sDeletesCertsDSoTheAgentWritesNothingAndSaysWhatToAdd() throws {
        let files = try node(
            ["/var/lib/rancher/k3s/agent/etc/containerd/config.toml": v2Generated], binaryVersion: "v1.30.4+k3s1")
        let c = try ContainerdRegistryConfig.read(from: files, registry: registry)
        // containerd still reads k3s's certs.d; the agent does not write there.
        XCTAssertEqual(c.configPaths.map(\.path), [k3sCertsD])
        XCTAssertFalse(c.agentWrites)
        let note = try XCTUnwrap(c.note)
        XCTAssertTrue(note.contains("k3s v1.30.4+k3s1 deletes every folder of \(k3sCertsD) at each start"), note)
        let remedy = try XCTUnwrap(c.remedy)
        XCTAssertTrue(
            remedy.contains(
                "configs:\n  \"registry-service.openfaas.svc.cluster.local:443\":\n    tls:\n      ca_file: /etc/ssl/certs/ca-certificates.crt"
            ),
            remedy)
        XCTAssertTrue(remedy.contains("restart k3s on each node (systemctl restart k3s, or k3s-agent on agents)"), remedy)
        let plan = try TrustInstaller.plan(
            try TrustFacts.gather(files: files, registry: registry), registry: registry,
            certificates: try CertificateParser.parseCAFile(try CertFixtures.bytes("ca.crt"), source: "ca.crt"), refreshMode: .native)
        XCTAssertEqual(plan.fileChanges.map(\.path.path).filter { $0.hasPrefix(k3sCertsD) }, [])
    }

    func testAnUnknownVersionIsTakenAsOne() throws {
        let files = try node(["/var/lib/rancher/k3s/agent/etc/containerd/config.toml": v2Generated])
        let c = try ContainerdRegistryConfig.read(from: files, registry: registry)
        XCTAssertEqual(c.configPaths.map(\.path), [k3sCertsD])
        XCTAssertFalse(c.agentWrites)
        XCTAssertTrue(c.note?.contains("k3s's version is not known") == true, c.note ?? "")
    }

    func testARegistryThatRegistriesYAMLNamesIsLeftToIt() throws {
        let files = try node(
            [
                "/var/lib/rancher/k3s/agent/etc/containerd/config.toml": v2Generated,
                "/etc/rancher/k3s/registries.yaml":
                    "configs:\n  \"registry-service.openfaas.svc.cluster.local:443\":\n    tls:\n      ca_file: /etc/k3s-ca.crt\n",
            ], binaryVersion: "v1.33.3+k3s1")
        let c = try ContainerdRegistryConfig.read(from: files, registry: registry)
        XCTAssertEqual(c.configPaths.map(\.path), [k3sCertsD])
        XCTAssertFalse(c.agentWrites)
        XCTAssertTrue(c.note?.contains("has an entry for registry-service.openfaas.svc.cluster.local:443") == true, c.note ?? "")
        // What to change in that entry, by the key it has.
        let remedy = try XCTUnwrap(c.remedy)
        XCTAssertTrue(
            remedy.contains(
                "/etc/rancher/k3s/registries.yaml's entry for registry-service.openfaas.svc.cluster.local:443: make that the OS bundle"),
            remedy)
        XCTAssertTrue(
            remedy.hasSuffix(
                "configs:\n  \"registry-service.openfaas.svc.cluster.local:443\":\n    tls:\n      ca_file: /etc/ssl/certs/ca-certificates.crt"
            ), remedy)
        // k3s's own folder is what containerd reads: its ca_file is the registry's CA file.
        try files.writeAtomically(
            try HostPath("\(k3sCertsD)/\(registry.hostAndPort)/hosts.toml"),
            "# File generated by k3s. DO NOT EDIT.\n[host.\"https://\(registry.hostAndPort)\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = [\"/etc/k3s-ca.crt\"]\n"
        )
        XCTAssertEqual(
            try RegistryTrustLocations.discover(files: files, registry: registry).runtimeCAFiles.map(\.path), ["/etc/k3s-ca.crt"])
        // Another registry still gets its folder.
        let other = try ContainerdRegistryConfig.read(from: files, registry: try RegistryAddress("registry.example.com:5000"))
        XCTAssertEqual(other.configPaths.map(\.path), [k3sCertsD])
        XCTAssertTrue(other.agentWrites)
    }

    func testRegistriesYAMLKeysAsK3sReadsThem() throws {
        let text = """
            # the k3s docs' example, with quoted and unquoted host:port keys
            mirrors:
              docker.io:
                endpoint:
                  - "https://mirror.example.com:5000"
              "*":
                endpoint: ["https://all.example.com"]
            configs:
              registry.example.com:5000:
                auth:
                  username: me # a comment
                  password: "a:b"
              'quoted.example.com:443':
                tls:
                  ca_file: /etc/ssl/ca.crt
            other:
              not-a-host: 1

            """
        XCTAssertEqual(
            try K3sNode.registryHosts(inRegistriesYAML: text), ["docker.io", "*", "registry.example.com:5000", "quoted.example.com:443"])
        XCTAssertEqual(try K3sNode.registryHosts(inRegistriesYAML: ""), [])
        for bad in [
            "configs: {\"a.example.com\": {}}\n", "mirrors:\n\tdocker.io:\n", "configs:\n    a.example.com:\n  b.example.com:\n",
            "configs:\n  &anchor a.example.com:\n",
        ] {
            XCTAssertThrowsError(try K3sNode.registryHosts(inRegistriesYAML: bad), bad)
        }
    }

    func testRegistriesYAMLThatDoesNotParseStopsTheWrite() throws {
        let files = try node(
            [
                "/var/lib/rancher/k3s/agent/etc/containerd/config.toml": v2Generated,
                "/etc/rancher/k3s/registries.yaml": "configs: [unclosed\n",
            ], binaryVersion: "v1.33.3+k3s1")
        let c = try ContainerdRegistryConfig.read(from: files, registry: registry)
        XCTAssertFalse(c.agentWrites)
        XCTAssertTrue(c.note?.contains("registries.yaml does not parse") == true, c.note ?? "")
    }

    func testRKE2TakesItsVersionFromItsDataFolderAndVersion3Config() throws {
        let files = try node([
            "/var/lib/rancher/rke2/agent/etc/containerd/config.toml":
                "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = \"/var/lib/rancher/rke2/agent/etc/containerd/certs.d\"\n",
            "/var/lib/rancher/rke2/data/v1.32.4-rke2r1-0123456789ab/bin/containerd": "",
        ])
        try FileManager.default.createSymbolicLink(
            atPath: files.root.directory + "/var/lib/rancher/rke2/bin",
            withDestinationPath: "/var/lib/rancher/rke2/data/v1.32.4-rke2r1-0123456789ab/bin")
        let rke2 = try XCTUnwrap(try K3sNode.detect(files: files))
        XCTAssertEqual(rke2.distribution, .rke2)
        XCTAssertEqual(rke2.version?.description, "v1.32.4-rke2r1-0123456789ab")
        let c = try ContainerdRegistryConfig.read(from: files, registry: registry)
        XCTAssertEqual(c.configPaths.map(\.path), ["/var/lib/rancher/rke2/agent/etc/containerd/certs.d"])
    }

    func testRunningContainerdFlagsAsItsCommandLineTakesThem() {
        let k3s = RunningContainerd.parse(
            pid: 7,
            [
                "containerd", "-c", "/srv/k3s/agent/etc/containerd/config.toml", "-a", "/run/k3s/containerd/containerd.sock",
                "--state", "/run/k3s/containerd", "--root", "/srv/k3s/agent/containerd",
            ])
        XCTAssertEqual(k3s.config?.path, "/srv/k3s/agent/etc/containerd/config.toml")
        XCTAssertEqual(k3s.address, "/run/k3s/containerd/containerd.sock")
        let long = RunningContainerd.parse(
            pid: 7, ["/usr/bin/containerd", "--config=/etc/containerd/other.toml", "--address", "/run/c.sock"])
        XCTAssertEqual(long.config?.path, "/etc/containerd/other.toml")
        XCTAssertEqual(long.address, "/run/c.sock")
        XCTAssertEqual(RunningContainerd.parse(pid: 7, ["containerd"]), RunningContainerd(pid: 7, config: nil, address: nil))
    }

    /// k3s started with --data-dir: found by the config its running containerd was started with
    /// (the process serving a socket in this network namespace; a containerd that serves none
    /// here, another node's, is not the node's), its socket that containerd's -a.
    func testAK3sDataDirIsFoundFromItsRunningContainerd() throws {
        let config = "/srv/k3s/agent/etc/containerd/config.toml"
        let files = try node(
            [
                config: v2Generated.replacingOccurrences(of: "/var/lib/rancher/k3s", with: "/srv/k3s"),
                "/srv/k3s/agent/etc/kubelet.conf.d/00-k3s-defaults.conf": "clusterDNS: [10.43.0.10]\n",
                "/proc/42/comm": "containerd\n", "/proc/43/comm": "containerd\n",
                "/proc/42/stat": "42 (containerd) S" + String(repeating: " 0", count: 30) + "\n",
                "/proc/43/stat": "43 (containerd) S" + String(repeating: " 0", count: 30) + "\n",
                "/proc/43/cmdline": "containerd\u{0}-c\u{0}/elsewhere/agent/etc/containerd/config.toml\u{0}",
                "/proc/42/cmdline": "containerd\u{0}-c\u{0}\(config)\u{0}-a\u{0}/run/k3s/containerd/containerd.sock\u{0}",
                "/proc/42/status": "Name:\tcontainerd\nUid:\t0\t0\t0\t0\n", "/proc/43/status": "Name:\tcontainerd\nUid:\t0\t0\t0\t0\n",
                // A user's process named containerd, serving a socket here, naming a config of its own.
                "/proc/44/comm": "containerd\n", "/proc/44/stat": "44 (containerd) S" + String(repeating: " 0", count: 30) + "\n",
                "/proc/44/status": "Name:\tcontainerd\nUid:\t1000\t1000\t1000\t1000\n",
                "/proc/44/cmdline": "containerd\u{0}-c\u{0}/home/u/config.toml\u{0}-a\u{0}/home/u/c.sock\u{0}",
                "/proc/net/unix":
                    "Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0001 01 4242 /run/k3s/containerd/containerd.sock\n"
                    + "0000000000000000: 00000002 00000000 00010000 0001 01 4444 /home/u/c.sock\n",
            ], binaryVersion: "v1.31.1+k3s1")
        let qualified = RunningContainerd.qualified(files)
        XCTAssertEqual(
            qualified.ignored,
            [.init(pid: 44, why: "a process named containerd (pid 44) runs as uid 1000: not the node's runtime, ignored")])
        try FileManager.default.createDirectory(atPath: files.root.directory + "/proc/42/fd", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: files.root.directory + "/proc/42/fd/3", withDestinationPath: "socket:[4242]")
        let running = RunningContainerd.find(files)
        XCTAssertEqual(running.map(\.pid), [42])
        // Without access to its file descriptors (the DaemonSet has no CAP_SYS_PTRACE), the
        // socket it names listening here has to do.
        try FileManager.default.removeItem(atPath: files.root.directory + "/proc/42/fd")
        XCTAssertEqual(RunningContainerd.find(files).map(\.pid), [42])
        try FileManager.default.createDirectory(atPath: files.root.directory + "/proc/42/fd", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: files.root.directory + "/proc/42/fd/3", withDestinationPath: "socket:[4242]")
        let k3s = try XCTUnwrap(try K3sNode.detect(files: files))
        XCTAssertEqual(k3s.dataDir, "/srv/k3s")
        XCTAssertEqual(k3s.socket, "/run/k3s/containerd/containerd.sock")
        XCTAssertEqual(k3s.version?.description, "v1.31.1+k3s1")
        let c = try ContainerdRegistryConfig.read(from: files, registry: registry)
        XCTAssertEqual(c.configPaths.map(\.path), ["/srv/k3s/agent/etc/containerd/certs.d"])
        XCTAssertTrue(c.agentWrites)
        // Not running: the default data folder only, which this node does not have.
        XCTAssertNil(try K3sNode.detect(files: files, running: []))
    }

    /// Two containerds in one network namespace, each in a mount namespace of its own, bind the
    /// same path (a nested cluster's, a CI runner's): /proc/net/unix lists two listening sockets
    /// there, in no order of theirs. The node's containerd holds the one listed second. Only the
    /// first was looked at before: the node's containerd was then "not serving", and the config
    /// files decided where the CA went (seen on a booted bookworm node in the sandbox's network).
    func testTheNodesContainerdIsFoundWhereTwoSocketsShareItsPath() throws {
        let files = try node([
            "/proc/42/comm": "containerd\n", "/proc/42/stat": "42 (containerd) S" + String(repeating: " 0", count: 30) + "\n",
            "/proc/42/cmdline": "containerd\u{0}-c\u{0}/etc/containerd-node/config.toml\u{0}",
            "/proc/42/status": "Name:\tcontainerd\nUid:\t0\t0\t0\t0\n",
            "/proc/net/unix":
                "Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0001 01 1111 /run/containerd/containerd.sock\n"
                + "0000000000000000: 00000002 00000000 00010000 0001 01 4242 /run/containerd/containerd.sock\n",
        ])
        try FileManager.default.createDirectory(atPath: files.root.directory + "/proc/42/fd", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: files.root.directory + "/proc/42/fd/3", withDestinationPath: "socket:[9999]")
        XCTAssertEqual(RunningContainerd.find(files), [], "held neither socket, yet taken")
        try FileManager.default.createSymbolicLink(atPath: files.root.directory + "/proc/42/fd/7", withDestinationPath: "socket:[4242]")
        XCTAssertEqual(RunningContainerd.find(files).map(\.config?.path), ["/etc/containerd-node/config.toml"])
    }

    /// Two root processes named containerd listen at the node's socket path, one in a mount
    /// namespace of its own (a pod's with the host's network, a nested cluster's): the socket in
    /// the node's root names its server (SO_PEERCRED), and only that one is the node's. Before,
    /// both were taken, the lower pid first, so the other's `-c` decided where the CA went once
    /// the node's containerd had restarted. This test process listens at the node's path and
    /// plays the node's containerd; pid 42 is the other.
    func testTheSocketInTheNodesRootNamesWhichContainerdIsTheNodes() throws {
        let me = Int(getpid())
        func process(_ pid: Int, _ config: String) -> [String: String] {
            [
                "/proc/\(pid)/comm": "containerd\n",
                "/proc/\(pid)/stat": "\(pid) (containerd) S" + String(repeating: " 0", count: 30) + "\n",
                "/proc/\(pid)/cmdline": "containerd\u{0}-c\u{0}\(config)\u{0}",
                "/proc/\(pid)/status": "Name:\tcontainerd\nUid:\t0\t0\t0\t0\n",
            ]
        }
        var layout = process(42, "/etc/containerd/nested.toml").merging(process(me, "/etc/containerd/config.toml")) { a, _ in a }
        layout["/proc/net/unix"] =
            "Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0001 01 1111 /run/containerd/containerd.sock\n"
            + "0000000000000000: 00000002 00000000 00010000 0001 01 4242 /run/containerd/containerd.sock\n"
        layout["/etc/containerd/config.toml"] =
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n"
        layout["/etc/containerd/nested.toml"] =
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/srv/nested/certs.d\"\n"
        let files = try node(layout)
        let root = files.root.directory
        let socket = "/run/containerd/containerd.sock"
        // A /proc of another PID namespace (its `self` is not this process): SO_PEERCRED's pid
        // would name none of its processes, and both are taken, as without ptrace access before.
        try FileManager.default.createSymbolicLink(atPath: root + "/proc/self", withDestinationPath: "1")
        XCTAssertEqual(RunningContainerd.find(files).map(\.pid), [42, me].sorted())
        // This process's namespace: nothing serves the path in the node's root, so both listen
        // in mount namespaces of their own.
        try FileManager.default.removeItem(atPath: root + "/proc/self")
        try FileManager.default.createSymbolicLink(atPath: root + "/proc/self", withDestinationPath: String(me))
        let nobody = RunningContainerd.qualified(files)
        XCTAssertEqual(nobody.found, [])
        XCTAssertEqual(
            nobody.ignored.map(\.why).sorted(),
            [42, me].map {
                "containerd (pid \($0)) listens at \(socket) in a mount namespace of its own: nothing serves \(socket) in the node's root; not the node's runtime, ignored"
            }.sorted())
        // This process listens there: it is the node's containerd, 42 is not.
        try FileManager.default.createDirectory(atPath: root + "/run/containerd", withIntermediateDirectories: true)
        let listener = try listeningUnixSocket(at: root + socket, backlog: 4)
        defer { close(listener) }
        let served = RunningContainerd.qualified(files)
        XCTAssertEqual(served.found.map(\.pid), [me])
        XCTAssertEqual(
            served.ignored.map(\.why),
            [
                "containerd (pid 42) listens at \(socket) in a mount namespace of its own: the node's \(socket) is served by pid \(me); not the node's runtime, ignored"
            ])
        XCTAssertEqual(try ContainerdRegistryConfig.read(from: files).configPaths.map(\.path), ["/etc/containerd/certs.d"])
        // A link in the socket's place is not followed: unknown, both taken.
        close(listener)
        try FileManager.default.removeItem(atPath: root + socket)
        let other = try listeningUnixSocket(at: root + "/run/containerd/other.sock", backlog: 4)
        defer { close(other) }
        try FileManager.default.createSymbolicLink(atPath: root + socket, withDestinationPath: "other.sock")
        XCTAssertEqual(RunningContainerd.find(files).map(\.pid), [42, me].sorted())
    }

    /// A containerd started with no -a serves the socket its config file names (`[grpc]
    /// address`, the last of the file and its imports that sets it): found there, where kubelet
    /// pulls through it. Before, only containerd's default socket was looked for, and this node's
    /// containerd was "not running": the default config file decided where the CA went.
    func testAContainerdServesTheSocketItsConfigNames() throws {
        let files = try node([
            "/etc/containerd-alt/config.toml":
                "version = 2\nimports = [\"conf.d/*.toml\"]\n[grpc]\n  address = \"/run/containerd-alt/main.sock\"\n",
            "/etc/containerd-alt/conf.d/10-socket.toml": "version = 2\n[grpc]\n  address = '/run/containerd-alt/containerd.sock'\n",
            "/etc/containerd-alt/conf.d/20-empty.toml": "version = 2\n[grpc]\n  address = \"\"\n",
            "/proc/42/comm": "containerd\n", "/proc/42/stat": "42 (containerd) S" + String(repeating: " 0", count: 30) + "\n",
            "/proc/42/cmdline": "containerd\u{0}--config=/etc/containerd-alt/config.toml\u{0}",
            "/proc/42/status": "Name:\tcontainerd\nUid:\t0\t0\t0\t0\n",
            "/proc/net/unix":
                "Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0001 01 4242 /run/containerd-alt/containerd.sock\n",
        ])
        let running = RunningContainerd.find(files)
        XCTAssertEqual(running.map(\.socket), ["/run/containerd-alt/containerd.sock"])
        XCTAssertEqual(running.first?.config?.path, "/etc/containerd-alt/config.toml")
        // With -a, the flag wins over the file, as containerd takes it.
        try "containerd\u{0}-c\u{0}/etc/containerd-alt/config.toml\u{0}-a\u{0}/run/elsewhere.sock\u{0}".write(
            toFile: files.root.directory + "/proc/42/cmdline", atomically: true, encoding: .utf8)
        XCTAssertEqual(RunningContainerd.find(files), [])
    }

    /// containerd 2.1+ pulls for CRI through its transfer service, which takes config_path as one
    /// folder (containerd#12808): with a list, no certs.d folder is read and the checks must not
    /// count on the first one. 1.x and 2.0 (local pull) search the list; so does 2.1 when its
    /// CRI config asks for the local pull (CheckLocalImagePullConfigs), in the file or an import.
    func testTheTransferServiceReadsAConfigPathListAsOneFolder() throws {
        let registry = try RegistryAddress("registry-service.openfaas.svc.cluster.local:443")
        let list = "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d:/etc/docker/certs.d\"\n"
        let folder = "/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local:443"
        func locations(_ config: String, _ version: String, imports: [String: String] = [:]) throws -> RegistryTrustLocations {
            var layout = [
                "/etc/os-release": "ID=debian\n", "/etc/containerd/config.toml": config,
                folder + "/hosts.toml":
                    "server = \"https://registry-service.openfaas.svc.cluster.local\"\n[host.\"https://registry-service.openfaas.svc.cluster.local\"]\n  ca = \"ca.crt\"\n",
                folder + "/ca.crt": "x",
            ]
            layout.merge(imports) { $1 }
            let word = RuntimeWord(version: version, reportsRegistry: false, configPath: nil)
            return try RegistryTrustLocations.discover(files: try node(layout), registry: registry, running: [], runtime: word)
        }
        let transfer = try locations("version = 2\n" + list, "2.1.9+unknown")
        XCTAssertEqual(transfer.runtimeCAFiles, [], "a folder of the list taken as read by containerd 2.1's transfer service")
        XCTAssertTrue(transfer.note?.contains("takes config_path \"/etc/containerd/certs.d:/etc/docker/certs.d\" as one folder") == true)
        for version in ["1.7.24~ds1", "2.0.7"] {
            XCTAssertEqual(try locations("version = 2\n" + list, version).runtimeCAFiles.map(\.path), [folder + "/ca.crt"], version)
        }
        for (name, config, imports) in [
            (
                "use_local_image_pull", "version = 2\n" + list + "[plugins.\"io.containerd.grpc.v1.cri\"]\n  use_local_image_pull = true\n",
                [:]
            ),
            (
                "a mirror in an import", "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n" + list,
                [
                    "/etc/containerd/conf.d/m.toml":
                        "[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  endpoint = [\"https://m\"]\n"
                ]
            ),
            (
                "max_concurrent_downloads",
                "version = 2\n" + list + "[plugins.\"io.containerd.grpc.v1.cri\"]\n  max_concurrent_downloads = 5\n", [:]
            ),
        ] {
            XCTAssertEqual(
                try locations(config, "2.1.9", imports: imports).runtimeCAFiles.map(\.path), [folder + "/ca.crt"],
                "\(name): the local pull searches the list")
        }
        let single = "version = 2\n" + list.replacingOccurrences(of: ":/etc/docker/certs.d", with: "")
        XCTAssertEqual(try locations(single, "2.1.9").runtimeCAFiles.map(\.path), [folder + "/ca.crt"], "one folder is read")
        XCTAssertFalse(ContainerdRegistryConfig.asksLocalPull("max_concurrent_downloads", value: "3"))
        XCTAssertTrue(ContainerdRegistryConfig.asksLocalPull("disable_snapshot_annotations", value: "false"))
    }

    /// A new node's first boot: k3s installed (its binary, its unit), not started, no containerd
    /// running. It is k3s's node (cluster DNS from its config), and nothing is written for a
    /// containerd that will read the OS bundle when it starts.
    func testAK3sInstalledAndNotStartedYet() throws {
        let files = try node(
            ["/etc/systemd/system/k3s-agent.service": "[Service]\nExecStart=/usr/local/bin/k3s agent\n"], binaryVersion: "v1.33.3+k3s1")
        let k3s = try XCTUnwrap(try K3sNode.detect(files: files, running: []))
        XCTAssertFalse(k3s.started)
        XCTAssertEqual(k3s.version?.description, "v1.33.3+k3s1")
        XCTAssertEqual(try k3s.clusterDNS(files: files).map(\.description), ["10.43.0.10"])
        let c = try ContainerdRegistryConfig.read(from: files, registry: registry, running: [])
        XCTAssertEqual(c.configPaths, [])
        XCTAssertTrue(c.note?.contains("k3s is installed and has not started on this node yet") == true, c.note ?? "")
        // A containerd of another kind runs: that is the node's runtime, not k3s.
        XCTAssertNil(try K3sNode.detect(files: files, running: [RunningContainerd(pid: 1, config: nil, address: nil)]))
        // The binary without its unit is not an installed k3s.
        let loose = try node([:], binaryVersion: "v1.33.3+k3s1")
        XCTAssertNil(try K3sNode.detect(files: loose, running: []))
    }

    /// A containerd started with -c: that file (and its imports, relative to its folder) is
    /// what it reads, not /etc/containerd/config.toml.
    func testAContainerdStartedWithItsOwnConfigFileIsReadFromIt() throws {
        let files = try node([
            "/etc/containerd/config.toml": "version = 2\n",
            "/opt/ctr/config.toml": "version = 2\nimports = [\"conf.d/*.toml\"]\n",
            "/opt/ctr/conf.d/10-registry.toml": "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/opt/ctr/certs.d\"\n",
        ])
        let running = [RunningContainerd(pid: 9, config: try HostPath("/opt/ctr/config.toml"), address: nil)]
        let c = try ContainerdRegistryConfig.read(from: files, major: 2, running: running)
        XCTAssertEqual(c.configPaths.map(\.path), ["/opt/ctr/certs.d"])
        XCTAssertEqual(c.configFile?.path, "/opt/ctr/config.toml")
        XCTAssertEqual(try ContainerdRegistryConfig.read(from: files, major: 2, running: []).configPaths, [])
    }
}
