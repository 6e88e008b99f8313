import Containerd
import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// The agent reads containerd's configuration as containerd itself reads it. For each Debian
/// release's containerd (1.6.20, 1.7.24, 2.1.9, from the booted nodes' cached roots) and each
/// configuration a node may have, the agent's effective `config_path` equals what that
/// containerd's own `containerd config dump` prints: Debian's shipped file, the file
/// `containerd config default` writes (TOML as containerd writes it, single quotes in 2.x),
/// config_path set in either (one folder, or a colon-separated list), the 2.x plugin names (version 3), `imports` drop-ins that override
/// the main file or drop certs.d, and no file at all.
final class ContainerdConfigIntegrationTests: XCTestCase {
    func testBookwormContainerd16() throws { try agreement("bookworm") }
    func testTrixieContainerd17() throws { try agreement("trixie") }
    func testSidContainerd21() throws { try agreement("sid") }

    func agreement(_ suite: String) throws {
        try requireRoot()
        let cache = ProcessInfo.processInfo.environment["NODE_AGENT_CACHE"] ?? "/var/cache/node-agent-sandbox"
        let base = cache + "/booted-root-" + suite
        guard FileManager.default.fileExists(atPath: base + "/usr/bin/containerd") else {
            throw XCTSkip("no \(suite) root with containerd: run NODE_AGENT_SUITE=\(suite) Tests/nodes/booted-node deps")
        }
        let version = try sh("/usr/sbin/chroot", [base, "containerd", "--version"]).stdout
        let v2x = version.contains("containerd/v2 ")
        let shipped = try String(contentsOfFile: base + "/etc/containerd/config.toml", encoding: .utf8)
        let defaults = try sh("/usr/sbin/chroot", [base, "containerd", "config", "default"]).stdout
        XCTAssertFalse(defaults.isEmpty)
        let criTable = v2x ? "[plugins.'io.containerd.cri.v1.images'.registry]" : "[plugins.\"io.containerd.grpc.v1.cri\".registry]"
        let set = "/etc/containerd/certs.d"
        // containerd config default writes config_path = '' (2.x) or "" (1.x): as a user edits it.
        let defaultsSet = defaults.replacingOccurrences(
            of: "\(criTable)\n      config_path = \(v2x ? "''" : "\"\"")",
            with: "\(criTable)\n      config_path = \(v2x ? "'\(set)'" : "\"\(set)\"")")
        XCTAssertNotEqual(defaultsSet, defaults, "\(suite): config default has no \(criTable) config_path line")
        let v2Table = "  [plugins.\"io.containerd.grpc.v1.cri\".registry]\n    config_path = \"\(set)\"\n"
        let dropIn = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n"
        let dropInWithout = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  enable_selinux = false\n"
        var variants: [(String, [String: String])] = [
            ("no config file", [:]),
            ("Debian's shipped file", ["config.toml": shipped]),
            ("Debian's file with config_path", ["config.toml": shipped + v2Table]),
            ("config default", ["config.toml": defaults]),
            ("config default with config_path", ["config.toml": defaultsSet]),
            (
                "a colon-separated config_path list",
                ["config.toml": shipped + v2Table.replacingOccurrences(of: set, with: set + ":/etc/docker/certs.d")]
            ),
            (
                "an import sets config_path",
                ["config.toml": "imports = [\"/etc/containerd/conf.d/*.toml\"]\n" + shipped, "conf.d/10-certs.toml": dropIn]
            ),
            (
                "an import of the CRI plugin without config_path",
                ["config.toml": "imports = [\"/etc/containerd/conf.d/*.toml\"]\n" + shipped + v2Table, "conf.d/10-cri.toml": dropInWithout]
            ),
        ]
        // The gRPC socket (`[grpc] address`): where a containerd started without -a serves.
        let socketTable = "[grpc]\n  address = \"/run/containerd-alt/containerd.sock\"\n"
        variants += [
            ("a grpc address in the main file", ["config.toml": shipped + socketTable]),
            (
                "config default with another grpc address",
                [
                    "config.toml": defaults.replacingOccurrences(
                        of: "address = \(v2x ? "'/run/containerd/containerd.sock'" : "\"/run/containerd/containerd.sock\"")",
                        with: "address = '/run/containerd-alt/containerd.sock'")
                ]
            ),
            (
                "an import sets the grpc address",
                [
                    "config.toml": "imports = [\"/etc/containerd/conf.d/*.toml\"]\n" + shipped + socketTable,
                    "conf.d/10-socket.toml": "version = 2\n[grpc]\n  address = \"/run/containerd-alt/imported.sock\"\n",
                ]
            ),
            (
                "an import with an empty grpc address",
                [
                    "config.toml": "imports = [\"/etc/containerd/conf.d/*.toml\"]\n" + shipped + socketTable,
                    "conf.d/10-socket.toml": "version = 2\n[grpc]\n  address = \"\"\n",
                ]
            ),
        ]
        if v2x {
            variants.append(
                (
                    "version 3 with the images plugin",
                    ["config.toml": "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '\(set)'\n"]
                ))
            variants.append(
                (
                    "version 3, double quotes",
                    ["config.toml": "version = 3\n[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"\(set)\"\n"]
                ))
        }
        let major = ContainerdRegistryConfig.binaryMajor(HostFiles(root: try HostRoot(base)))
        XCTAssertEqual(major, v2x ? 2 : 1, "\(suite): the agent reads containerd's major version from its binary")
        var rows: [String] = []
        for (name, files) in variants {
            let dir = try makeTemporaryDirectory("containerd-\(suite)")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let etc = dir + "/etc/containerd"
            try FileManager.default.createDirectory(atPath: etc + "/conf.d", withIntermediateDirectories: true)
            for (path, text) in files { try text.write(toFile: etc + "/" + path, atomically: true, encoding: .utf8) }
            let theirs = try dumped(base: base, etc: etc, hasFile: files["config.toml"] != nil)
            // The agent reads the version from the release's binary, as on the node.
            let node = HostFiles(root: try HostRoot(dir))
            let ours = try ContainerdRegistryConfig.read(from: node, major: major).configPaths.map(\.path).joined(separator: ":")
            XCTAssertEqual(ours, theirs.configPath, "\(suite), \(name): the agent reads config_path '\(ours)', containerd '\(theirs)'")
            let socket = ContainerdRegistryConfig.grpcAddress(configFile: nil, files: node) ?? RunningContainerd.defaultSocket
            XCTAssertEqual(socket, theirs.socket, "\(suite), \(name): the agent reads the gRPC socket '\(socket)', containerd '\(theirs)'")
            rows.append("\(name): containerd '\(theirs.configPath)' at \(theirs.socket), agent '\(ours)' at \(socket)")
        }
        print("containerd \(suite) (\(version.trimmingCharacters(in: .whitespacesAndNewlines))):\n  " + rows.joined(separator: "\n  "))
    }

    /// `containerd config dump` of the release's own containerd, with `etc` as its
    /// /etc/containerd (bound over the cached root's in a mount namespace of its own: the cache
    /// is not changed): the CRI registry's effective config_path and the gRPC socket.
    /// Without a config file the daemon runs with its defaults, where containerd 1.x's `config
    /// dump` refuses the missing file: an empty file gives those defaults to every version.
    func dumped(base: String, etc: String, hasFile: Bool) throws -> (configPath: String, socket: String) {
        if !hasFile { try "".write(toFile: etc + "/empty.toml", atomically: true, encoding: .utf8) }
        let config = hasFile ? "/etc/containerd/config.toml" : "/etc/containerd/empty.toml"
        let dump = try sh(
            "/usr/bin/unshare",
            [
                "-m", "--propagation", "private", "sh", "-c",
                "mount --bind \"$1\" \"$0/etc/containerd\" && exec chroot \"$0\" containerd --config \"$2\" config dump",
                base, etc, config,
            ])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let read = try sh(
            "/usr/bin/env",
            [
                "python3", "-c",
                """
                import sys, tomllib
                c = tomllib.loads(open(sys.argv[1]).read())
                p = c.get("plugins", {})
                path = ""
                for name in ("io.containerd.cri.v1.images", "io.containerd.grpc.v1.cri"):
                    r = p.get(name, {}).get("registry")
                    if r is not None and "config_path" in r:
                        path = r["config_path"]; break
                print(path)
                print(c.get("grpc", {}).get("address", ""))
                """,
                try writeTemporary(dump.stdout),
            ])
        XCTAssertEqual(read.status, 0, read.stderr)
        let lines = read.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        return (lines.first ?? "", lines.count > 1 ? lines[1] : "")
    }

    func writeTemporary(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "containerd-dump-\(UUID().uuidString.prefix(8)).toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }
}
