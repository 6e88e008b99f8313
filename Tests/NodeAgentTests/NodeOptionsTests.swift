import AgentCore
import Containerd
import Foundation
import HostSystem
import Probes
import TestSupport
import Vocabulary
import XCTest

@testable import NodeAgent

final class NodeOptionsTests: XCTestCase {
    func options(_ extra: [String] = []) throws -> NodeOptions {
        try NodeOptions.parse(
            [
                "--host-root", NSTemporaryDirectory(), "--registry", "registry-service.openfaas.svc.cluster.local:443",
                "--cluster-dns", "10.96.0.10",
            ] + extra)
    }

    func config(
        registry: String = "registry-service.openfaas.svc.cluster.local:443", dns: String = "10.96.0.10",
        domain: String = "svc.cluster.local", ca: String = "ca.crt", timeout: Double = 5
    ) throws -> NodeConfig {
        try NodeConfig(
            try options(["--registry", registry, "--cluster-dns", dns, "--domain", domain, "--timeout", String(timeout)]),
            caFile: try CertFixtures.path(ca), dryRun: false)
    }

    func testValidConfigDefaultsTheBusToTheHostRoot() throws {
        let c = try config()
        XCTAssertEqual(c.certificates.count, 1)
        XCTAssertTrue(c.dbusAddress.hasSuffix("/run/dbus/system_bus_socket"))
    }

    func testRegistryOutsideTheDomainIsRefused() throws {
        XCTAssertThrowsError(try config(registry: "registry.example.com")) { XCTAssertTrue("\($0)".contains("is not under the domain")) }
        XCTAssertNoThrow(try config(registry: "10.0.0.5:5000"))
    }

    func testEachBadInputNamesTheProblem() throws {
        assertAgentError(try config(dns: "10.96.0.x"), .invalidInput, "'10.96.0.x' is not an IP address")
        assertAgentError(
            try config(domain: "svc.cluster.local\n[Resolve]"), .invalidInput, "domain 'svc.cluster.local\\n[Resolve]' contains a newline",
            "use letters, digits, '-' and '.' only")
        // The range is the fix: what the option accepts.
        assertAgentError(try config(timeout: 0), .invalidInput, "--timeout 0.0 is out of range (0.001-120.0)")
        assertAgentError(try config(timeout: 121), .invalidInput, "--timeout 121.0 is out of range (0.001-120.0)")
        // A missing CA file is reported under the certificate's code (what == "CA file").
        assertAgentError(
            try NodeConfig(try options(), caFile: "/nonexistent/ca.crt", dryRun: false), .invalidCertificate,
            "CA file /nonexistent/ca.crt does not exist")
    }

    func testClusterDNSDefaultsToKubeletsConfigAndIsRequiredOtherwise() throws {
        let dir = try makeTemporaryDirectory("kubelet")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = ["--host-root", dir, "--registry", "r.svc.cluster.local"]
        XCTAssertThrowsError(try NodeConfig(try NodeOptions.parse(base), caFile: nil, dryRun: false)) {
            XCTAssertTrue("\($0)".contains("the cluster DNS is not known"))
        }
        try FileManager.default.createDirectory(atPath: dir + "/var/lib/kubelet", withIntermediateDirectories: true)
        try "clusterDNS:\n  - 10.43.0.10\nresolvConf: /etc/k8s-resolv.conf\n".write(
            toFile: dir + "/var/lib/kubelet/config.yaml", atomically: true, encoding: .utf8)
        let c = try NodeConfig(try NodeOptions.parse(base), caFile: nil, dryRun: false)
        XCTAssertEqual(c.clusterDNS.description, "10.43.0.10")
        XCTAssertEqual(c.kubeletResolvConf, "/etc/k8s-resolv.conf")
    }

    /// k3s and RKE2: their kubelet.conf.d where they write one (its files by name, a person's
    /// over theirs), else their own config.yaml and config.yaml.d as they merge them, else the
    /// tenth address of their service CIDR.
    func testClusterDNSOnK3sAndRKE2FollowsWhatTheirKubeletGets() throws {
        for program in ["k3s", "rke2"] {
            let dir = try makeTemporaryDirectory(program)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            func write(_ path: String, _ text: String) throws {
                try FileManager.default.createDirectory(
                    atPath: dir + (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try text.write(toFile: dir + path, atomically: true, encoding: .utf8)
            }
            func dns() throws -> String {
                try NodeConfig(
                    try NodeOptions.parse(["--host-root", dir, "--registry", "r.svc.cluster.local"]), caFile: nil, dryRun: false
                )
                .clusterDNS.description
            }
            try write("/var/lib/rancher/\(program)/agent/etc/containerd/config.toml", "version = 2\n")
            XCTAssertEqual(try dns(), "10.43.0.10", "\(program): the default service CIDR's")
            try write(
                "/etc/rancher/\(program)/config.yaml", "# a server\nservice-cidr: \"10.45.0.0/16,fd00:45::/112\"\nnode-label:\n  - a=b\n")
            XCTAssertEqual(try dns(), "10.45.0.10", "\(program): the first service CIDR's")
            try write("/etc/rancher/\(program)/config.yaml.d/50-ipv6.yaml", "service-cidr: [\"fd00:46::/112\"]\n")
            XCTAssertEqual(try dns(), "fd00:46::a", "\(program): a drop-in replaces the key")
            try write("/etc/rancher/\(program)/config.yaml", "cluster-dns: 10.45.0.53\n")
            try write("/etc/rancher/\(program)/config.yaml.d/60-more.yml", "cluster-dns+:\n- 10.45.0.54\n")
            XCTAssertEqual(try dns(), "10.45.0.53", "\(program): cluster-dns, with a drop-in's + appended after it")
            try write("/etc/rancher/\(program)/config.yaml.d/10-first.yaml", "cluster-dns: 10.45.0.99\n")
            XCTAssertEqual(try dns(), "10.45.0.99", "\(program): config.yaml.d is read after config.yaml")
            let node = try XCTUnwrap(try K3sNode.detect(files: HostFiles(root: try HostRoot(dir))))
            XCTAssertEqual(try node.setting("cluster-dns", files: HostFiles(root: try HostRoot(dir))), ["10.45.0.99", "10.45.0.54"])
            // v1.31.0 and later: kubelet's drop-ins say it, a person's after theirs.
            let conf = "/var/lib/rancher/\(program)/agent/etc/kubelet.conf.d/"
            try write(
                conf + "00-\(program)-defaults.conf", "kind: KubeletConfiguration\nclusterDNS:\n- 10.45.0.10\nresolvConf: /run/k.conf\n")
            XCTAssertEqual(try dns(), "10.45.0.10", "\(program): kubelet.conf.d")
            try write(conf + "10-cli-config.conf", "clusterDNS: [10.45.0.11]\n")
            try write(conf + "notes.txt", "clusterDNS: [10.45.0.12]\n")
            XCTAssertEqual(try dns(), "10.45.0.11", "\(program): a later .conf wins")
        }
    }

    func testAK3sClusterDNSThatIsNotAnAddressNamesTheFile() throws {
        let dir = try makeTemporaryDirectory("k3s")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (path, text) in [
            "/var/lib/rancher/k3s/agent/etc/containerd/config.toml": "version = 2\n",
            "/etc/rancher/k3s/config.yaml": "cluster-dns: 10.43.0.x\n",
        ] {
            try FileManager.default.createDirectory(
                atPath: dir + (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: dir + path, atomically: true, encoding: .utf8)
        }
        let base = ["--host-root", dir, "--registry", "r.svc.cluster.local"]
        XCTAssertThrowsError(try NodeConfig(try NodeOptions.parse(base), caFile: nil, dryRun: false)) {
            XCTAssertTrue(
                "\($0)".contains(
                    "/etc/rancher/k3s/config.yaml (or config.yaml.d) sets cluster-dns '10.43.0.x', which is not an IP address"), "\($0)")
        }
        // --cluster-dns settles it.
        XCTAssertEqual(
            try NodeConfig(try NodeOptions.parse(base + ["--cluster-dns", "10.43.0.10"]), caFile: nil, dryRun: false).clusterDNS
                .description,
            "10.43.0.10")
    }

    func testRegistryAuthMustHoldTheRegistry() throws {
        let dir = try makeTemporaryDirectory("auth")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"auths":{"other:443":{"auth":"eDp5"}}}"#.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try NodeConfig(try options(["--registry-auth", dir + "/config.json"]), caFile: nil, dryRun: false)) {
            XCTAssertTrue("\($0)".contains("has no credentials for"))
        }
        try "not json".write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try NodeConfig(try options(["--registry-auth", dir + "/config.json"]), caFile: nil, dryRun: false)) {
            XCTAssertTrue("\($0)".contains("is not a Docker config.json"))
        }
    }

    func testEnvironmentFillsOptionsTheCommandLineLacks() {
        let merged = EnvironmentOptions.merge(
            arguments: ["bootstrap", "--registry", "cli.svc.cluster.local"],
            environment: [
                "NODE_AGENT_REGISTRY": "env.svc.cluster.local", "NODE_AGENT_CLUSTER_DNS": "10.96.0.10",
                "NODE_AGENT_DRY_RUN": "true",
            ])
        XCTAssertEqual(merged, ["bootstrap", "--registry", "cli.svc.cluster.local", "--cluster-dns", "10.96.0.10", "--dry-run"])
    }

    func testRunReadsItsOptionsFromTheEnvironmentAsTheDaemonSetSetsThem() throws {
        let merged = EnvironmentOptions.merge(
            arguments: ["run"],
            environment: [
                "NODE_AGENT_REGISTRY": "registry-service.openfaas.svc.cluster.local:443", "NODE_AGENT_HOST_ROOT": "/host",
                "NODE_AGENT_CA": "/etc/node-agent/ca/ca.crt", "NODE_AGENT_LISTEN": "0.0.0.0:9808", "NODE_AGENT_RESTART_RUNTIME": "yes",
            ])
        XCTAssertEqual(
            Set(merged),
            Set([
                "run", "--host-root", "/host", "--registry", "registry-service.openfaas.svc.cluster.local:443",
                "--ca", "/etc/node-agent/ca/ca.crt", "--listen", "0.0.0.0:9808", "--restart-runtime",
            ]))
        let parsed = try RunCommand.parse(Array(merged.dropFirst()))
        XCTAssertEqual(parsed.listen, "0.0.0.0:9808")
        XCTAssertTrue(parsed.change.restartRuntime)
    }

    func testConfigFileFillsWhatTheEnvironmentAndCommandLineLeave() throws {
        let dir = try makeTemporaryDirectory("config")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/node-agent.env"
        try
            "# node-agent\nNODE_AGENT_REGISTRY=\"file.svc.cluster.local\"\nexport NODE_AGENT_CLUSTER_DNS=10.96.0.10\nNODE_AGENT_TIMEOUT='3'\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let args = try EnvironmentOptions.arguments(
            ["probe", "--config", file, "--timeout", "7"], environment: ["NODE_AGENT_CLUSTER_DNS": "10.43.0.10"])
        XCTAssertEqual(Set(args), Set(["probe", "--timeout", "7", "--registry", "file.svc.cluster.local", "--cluster-dns", "10.43.0.10"]))
        try "REGISTRY=x\n".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try EnvironmentOptions.arguments(["probe"], environment: ["NODE_AGENT_CONFIG": file])) {
            XCTAssertTrue("\($0)".contains("node-agent.env:1: expected NODE_AGENT_<OPTION>=value"), "\($0)")
        }
    }

    /// `--config`, `--ca` and `--registry-auth` go through HostSystem's reader: a FIFO is refused
    /// at once, naming the file (read as it was before, `--config` waited for a writer for ever).
    func testFilesOnTheCommandLineThatAreFIFOsAreRefusedAtOnce() throws {
        let dir = try makeTemporaryDirectory("fifo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/node-agent.env"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        // A writer after 3 s ends the wait of a reader that opened it: the test then fails on its time.
        DispatchQueue.global().asyncAfter(deadline: .now() + 3) {
            let fd = open(fifo, O_WRONLY | O_NONBLOCK)
            if fd >= 0 { close(fd) }
        }
        let start = Date()
        XCTAssertThrowsError(try EnvironmentOptions.arguments(["probe", "--config", fifo], environment: [:])) {
            XCTAssertEqual(($0 as? AgentError)?.code, .invalidInput)
            XCTAssertEqual(($0 as? AgentError)?.message, "config file \(fifo) is not a regular file (a FIFO, socket or device)")
        }
        XCTAssertThrowsError(try EnvironmentOptions.arguments(["probe"], environment: ["NODE_AGENT_CONFIG": dir + "/absent"])) {
            XCTAssertEqual(($0 as? AgentError)?.message, "config file \(dir)/absent does not exist")
            XCTAssertEqual(($0 as? AgentError)?.hint, "check --config or NODE_AGENT_CONFIG")
        }
        XCTAssertThrowsError(try NodeConfig(try options(), caFile: fifo, dryRun: false)) {
            XCTAssertEqual(($0 as? AgentError)?.code, .invalidCertificate)
            XCTAssertEqual(($0 as? AgentError)?.message, "CA file \(fifo) is not a regular file (a FIFO, socket or device)")
        }
        XCTAssertThrowsError(try NodeConfig(try options(["--registry-auth", fifo]), caFile: nil, dryRun: false)) {
            XCTAssertEqual(($0 as? AgentError)?.code, .invalidInput)
            XCTAssertEqual(($0 as? AgentError)?.message, "registry auth file \(fifo) is not a regular file (a FIFO, socket or device)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
    }

    /// Every flag of every command is in docs/CONFIGURATION.md and can come from the environment.
    func testEveryFlagIsDocumentedAndReadFromTheEnvironment() throws {
        let doc = try String(contentsOf: packageRoot.appendingPathComponent("docs/CONFIGURATION.md"), encoding: .utf8)
        let commands: [(String, String)] = [
            ("bootstrap", BootstrapCommand.helpMessage()), ("probe", ProbeCommand.helpMessage()),
            ("uninstall", UninstallCommand.helpMessage()), ("run", RunCommand.helpMessage()),
            ("status", StatusCommand.helpMessage()),
        ]
        for (name, help) in commands {
            let flags = Set(
                help.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "," })
                    .filter { $0.hasPrefix("--") }.map { "--" + String($0.dropFirst(2).prefix { $0.isLetter || $0.isNumber || $0 == "-" }) }
                    .filter { $0 != "--help" && $0 != "--" })
            XCTAssertFalse(flags.isEmpty, name)
            for flag in flags {
                XCTAssertTrue(doc.contains("| `\(flag)` |"), "\(flag) of \(name) is not in docs/CONFIGURATION.md")
                let option = String(flag.dropFirst(2))
                // --config is read from NODE_AGENT_CONFIG by EnvironmentOptions.resolve itself.
                let known = (EnvironmentOptions.options[name] ?? []) + (EnvironmentOptions.flags[name] ?? []) + ["config"]
                XCTAssertTrue(known.contains(option), "\(flag) of \(name) is not read from NODE_AGENT_\(option.uppercased())")
            }
        }
    }
}
