import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// `node-agent bootstrap` against a real node: every effect is checked with an independent tool.
final class BootstrapIntegrationTests: XCTestCase {
    var node: SandboxNode!

    override func setUpWithError() throws {
        node = try SandboxNode()
    }

    override func tearDown() {
        node?.down()
    }

    func testBootstrapMakesTheNodeReadyAndASecondRunChangesNothing() throws {
        let first = try node.agent(node.bootstrapArguments(extra: ["--output", "json"]))
        XCTAssertEqual(first.status, 0, first.stdout + first.stderr)
        let report = try JSONReport.decode(first.stdout)
        XCTAssertTrue(report.ready)
        XCTAssertEqual(
            report.checks.map(\.name),
            [
                "dns-cluster", "dns-host", "dns-resolved", "runtime-proxy", "tcp", "tls-os-trust", "tls-runtime-trust",
                "registry-api", "runtime-config", "certs-d", "runtime-restart-pending", "coredns-loop-hazard", "runtime-pull",
            ])
        for check in report.checks where !["runtime-restart-pending", "runtime-proxy"].contains(check.name) {
            XCTAssertEqual(check.outcome, "pass", "\(check.name): \(check.reason)")
        }
        XCTAssertEqual(report.check("dns-host")?.details["source"], "127.0.0.53")
        XCTAssertFalse(report.changes.isEmpty)
        let facts =
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])["certificates"]
            as? [[String: Any]]
        XCTAssertEqual(facts?.count, 1)
        XCTAssertEqual(facts?.first?["ca"] as? Bool, true)
        XCTAssertEqual((facts?.first?["sha256"] as? String)?.count, 95)

        // The OS bundle the node's tool built trusts the registry's certificate (openssl verify).
        let bundle = node.hostRoot + "/etc/ssl/certs/ca-certificates.crt"
        let verify = try sh("/usr/bin/openssl", ["verify", "-CAfile", bundle, node.folder + "/pki/registry.crt"])
        XCTAssertEqual(verify.status, 0, verify.stderr)
        // ... with the node-correct links: <hash>.0 -> our .pem -> /usr/local/share/... (inside the root).
        let hash = try sh("/usr/bin/openssl", ["x509", "-in", node.caFile, "-noout", "-hash"]).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines)
        let pem = try FileManager.default.destinationOfSymbolicLink(atPath: node.hostRoot + "/etc/ssl/certs/\(hash).0")
        XCTAssertEqual(pem, "registry-service.openfaas.svc.cluster.local_443-1.pem")
        XCTAssertEqual(
            try FileManager.default.destinationOfSymbolicLink(atPath: node.hostRoot + "/etc/ssl/certs/" + pem),
            "/usr/local/share/ca-certificates/node-agent/registry-service.openfaas.svc.cluster.local_443-1.crt")

        // curl resolves the name through the node's resolver (the resolved stub) and pulls /v2/.
        let curl = try node.exec([
            "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{remote_ip}", "--cacert", bundle,
            "-u", "\(node.vars["REGISTRY_USER"]!):\(node.vars["REGISTRY_PASSWORD"]!)",
            "https://registry-service.openfaas.svc.cluster.local/v2/",
        ])
        XCTAssertEqual(curl.stdout, "200 127.0.0.20", curl.stderr)
        // containerd's certs.d CA verifies the registry too.
        let certsD = node.hostRoot + "/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local:443"
        XCTAssertEqual(try sh("/usr/bin/openssl", ["verify", "-CAfile", certsD + "/ca.crt", node.folder + "/pki/registry.crt"]).status, 0)
        XCTAssertTrue(
            FileManager.default.fileExists(
                atPath: node.hostRoot + "/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local/hosts.toml"))

        // resolved answers the registry; other names never reach the cluster DNS.
        let query = try node.exec(node.resolvectl + ["query", "registry-service.openfaas.svc.cluster.local"])
        XCTAssertTrue(query.stdout.contains("127.0.0.20"), query.stdout + query.stderr)
        let foreign = "probe-\(UUID().uuidString.prefix(8).lowercased()).example.org"
        let miss = try node.exec(node.resolvectl + ["query", foreign])
        XCTAssertNotEqual(miss.status, 0)
        XCTAssertFalse(node.log("kube-dns-queries.log").contains(foreign), "a foreign name reached the cluster DNS")
        XCTAssertTrue(node.log("upstream-dns-queries.log").contains(foreign), "the foreign name did not go upstream")
        // The cluster DNS stays out of the resolv.conf that kubelet hands to CoreDNS.
        let uplink = try node.exec(["cat", "/run/systemd/resolve/resolv.conf"])
        XCTAssertFalse(uplink.stdout.contains("127.0.0.10"), uplink.stdout)
        let link = try node.exec(node.resolvectl + ["status", "nodeagent0"])
        XCTAssertTrue(link.stdout.contains("~svc.cluster.local"), link.stdout)
        XCTAssertTrue(link.stdout.contains("-DefaultRoute"), link.stdout)

        // Idempotent: the second run changes nothing, on disk or in resolved.
        let after = node.snapshot()
        let second = try node.agent(node.bootstrapArguments(extra: ["--output", "json"]))
        XCTAssertEqual(second.status, 0, second.stdout + second.stderr)
        XCTAssertEqual(try JSONReport.decode(second.stdout).changes, [])
        XCTAssertEqual(node.snapshot().difference(from: after), [])
    }

    func testDryRunPrintsThePlanAndChangesNothing() throws {
        let before = node.snapshot()
        let run = try node.agent(node.bootstrapArguments(extra: ["--dry-run"]))
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("Would change:"), run.stdout)
        XCTAssertTrue(run.stdout.contains("hosts.toml"))
        XCTAssertTrue(run.stdout.contains("natively: what update-ca-certificates writes"), run.stdout)
        XCTAssertTrue(run.stdout.contains("Domains=~svc.cluster.local DefaultRoute=no"))
        XCTAssertEqual(node.snapshot().difference(from: before), [])
        XCTAssertNotEqual(try node.exec(["ip", "link", "show", "nodeagent0"]).status, 0, "dry run created the link")
    }

    /// A plan sends nothing on the network: in hosts mode a run asks the cluster DNS for the
    /// registry's address, a dry run does not. A DNS listener in the node counts the questions.
    func testAHostsModeDryRunAsksNoDNSServer() throws {
        let listener = """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.77", 53))
            print("listening 127.0.0.77:53", flush=True)
            s.settimeout(3)
            n = 0
            try:
                while True:
                    s.recvfrom(512)
                    n += 1
            except socket.timeout:
                pass
            print(n)
            """
        // The agent runs once the listener says it is bound (up to 10 s), not after a fixed wait.
        let ready =
            "for _ in $(seq 200); do grep -q '^listening' /tmp/questions && break; sleep 0.05; done;"
            + " grep -q '^listening' /tmp/questions || { echo 'the DNS listener on 127.0.0.77:53 did not listen within 10 s'; exit 1; };"
        func questions(_ extra: [String]) throws -> (count: String, agent: String) {
            let script =
                "python3 -c \"$0\" > /tmp/questions & \(ready) \"$@\"; echo \"exit $?\"; wait; echo \"questions $(tail -n 1 /tmp/questions)\""
            let args = node.bootstrapArguments(clusterDNS: "127.0.0.77", extra: ["--dns-mode", "hosts", "--timeout", "0.5"] + extra)
            let run = try node.exec(["bash", "-c", script, listener, SandboxNode.binary] + args)
            let count = run.stdout.split(separator: "\n").last { $0.hasPrefix("questions ") }.map { String($0.dropFirst(10)) } ?? ""
            return (count, run.stdout + run.stderr)
        }
        let before = node.snapshot()
        let dry = try questions(["--dry-run"])
        XCTAssertEqual(dry.count, "0", dry.agent)
        XCTAssertTrue(dry.agent.contains("the cluster DNS is not asked in a dry run"), dry.agent)
        XCTAssertTrue(dry.agent.contains("exit 0"), dry.agent)
        XCTAssertEqual(node.snapshot().difference(from: before), [])
        // The same command without --dry-run asks it (and, with no answer, writes no hosts line).
        let real = try questions([])
        XCTAssertNotEqual(real.count, "0", real.agent)
        XCTAssertNotEqual(real.count, "", real.agent)
    }

    func testNotReadyWhenTheClusterDNSDoesNotAnswer() throws {
        let run = try node.agent(node.bootstrapArguments(clusterDNS: "127.0.0.99", extra: ["--output", "json", "--timeout", "0.5"]))
        XCTAssertEqual(run.status, 1, run.stdout + run.stderr)
        let report = try JSONReport.decode(run.stdout)
        XCTAssertFalse(report.ready)
        XCTAssertEqual(report.check("dns-cluster")?.outcome, "fail")
        XCTAssertTrue(
            report.check("dns-cluster")?.reason.contains("did not answer (nothing listens for DNS there") == true,
            report.check("dns-cluster")?.reason ?? "")
        XCTAssertEqual(report.check("dns-host")?.outcome, "fail")
    }

    func testNotReadyWhenTheCAIsNotTheRegistrysSigner() throws {
        let run = try node.agent(node.bootstrapArguments(ca: try CertFixtures.path("other-ca.crt"), extra: ["--output", "json"]))
        XCTAssertEqual(run.status, 1, run.stdout + run.stderr)
        let report = try JSONReport.decode(run.stdout)
        XCTAssertEqual(report.check("dns-host")?.outcome, "pass")
        XCTAssertEqual(report.check("tls-runtime-trust")?.outcome, "fail")
        XCTAssertEqual(report.check("tls-runtime-trust")?.details["verify_code"], "20")
        XCTAssertTrue(report.check("tls-runtime-trust")?.reason.contains("does not trust") == true)
        XCTAssertEqual(report.check("registry-api")?.outcome, "fail")
    }
}

/// Bad input: a one-line error that names the problem, exit status 2, and the host untouched.
final class BadInputIntegrationTests: XCTestCase {
    func testEachBadInputIsRefusedAndChangesNothing() throws {
        let node = try SandboxNode()
        defer { node.down() }
        let big = node.folder + "/big.crt"
        try Data(count: 2 << 20).write(to: URL(fileURLWithPath: big))
        let before = node.snapshot()
        let cases: [(args: [String], phrase: String)] = [
            (node.bootstrapArguments(ca: try CertFixtures.path("future-ca.crt")), "is not valid before"),
            (node.bootstrapArguments(ca: big), "larger than"),
            (node.bootstrapArguments(ca: try CertFixtures.path("public-key.pem")), "'PUBLIC KEY' PEM block"),
            (node.bootstrapArguments(extra: ["--alias", "bad name"]), "a space"),
            (node.bootstrapArguments(extra: ["--timeout", "0"]), "out of range"),
            (node.bootstrapArguments(ca: "/nonexistent/ca.crt"), "does not exist"),
            (node.bootstrapArguments(ca: try CertFixtures.path("garbage.txt")), "neither a PEM nor a DER"),
            (node.bootstrapArguments(ca: try CertFixtures.path("leaf.crt")), "is not a CA certificate"),
            (node.bootstrapArguments(ca: try CertFixtures.path("expired-ca.crt")), "expired on"),
            (node.bootstrapArguments(ca: try CertFixtures.path("with-key.pem")), "contains a private key"),
            (node.bootstrapArguments(clusterDNS: "10.96.0.10; rm -rf /"), "is not an IP address"),
            (node.bootstrapArguments(clusterDNS: "kube-dns"), "is not an IP address"),
            (
                [
                    "bootstrap", "--host-root", node.hostRoot, "--ca", node.caFile, "--registry", "registry service.svc.cluster.local",
                    "--cluster-dns", node.clusterDNS,
                ], "a space"
            ),
            (
                [
                    "bootstrap", "--host-root", node.hostRoot, "--ca", node.caFile, "--registry", "registry.svc.cluster.local\nDNS=1.1.1.1",
                    "--cluster-dns", node.clusterDNS,
                ], "a newline"
            ),
            (node.bootstrapArguments(extra: ["--domain", "~svc.cluster.local"]), "starts with '~'"),
            (node.bootstrapArguments(extra: ["--domain", "svc..local"]), "empty label"),
        ]
        for c in cases {
            let run = try node.agent(c.args)
            XCTAssertEqual(run.status, 2, "\(c.args): \(run.stdout) \(run.stderr)")
            let lines = run.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "not one line: \(run.stderr)")
            XCTAssertTrue(run.stderr.contains(c.phrase), "\(run.stderr) lacks \(c.phrase)")
            XCTAssertTrue(run.stdout.isEmpty)
        }
        XCTAssertEqual(node.snapshot().difference(from: before), [])
        XCTAssertNotEqual(try node.exec(["ip", "link", "show", "nodeagent0"]).status, 0, "bad input created the link")
    }

    /// A symlink in the host root that leads out of it is refused, and nothing outside is written.
    func testASymlinkOutOfTheHostRootIsRefused() throws {
        let node = try SandboxNode()
        defer { node.down() }
        let outside = try makeTemporaryDirectory("outside")
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try FileManager.default.createDirectory(atPath: node.hostRoot + "/etc/containerd", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: node.hostRoot + "/etc/containerd/certs.d", withDestinationPath: "../../../../../../../../.." + outside)
        let before = node.snapshot()
        let run = try node.agent(node.bootstrapArguments())
        XCTAssertEqual(run.status, 3, run.stdout + run.stderr)
        XCTAssertTrue(run.stderr.contains("leads out of the host root"), run.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outside), [])
        XCTAssertEqual(node.snapshot().difference(from: before), [])
    }
}
