import Foundation
import TestSupport
import XCTest

/// containerd's own word on which certs.d folder, which hosts and which CAs it uses, against the
/// agent's `tls-runtime-trust`: on each release's real containerd (1.6, 1.7, 2.1, booted), every
/// layout below is pulled through the CRI and probed by the agent (its own pull off, so that
/// the check is not settled by it), and the two must agree. The layouts are those where the
/// agent's earlier model (its own folder order, the first CA file alone, OpenSSL's anchors)
/// disagreed with the pull, and the rules around them: the port-less folder, `host_port_`,
/// `_default`, Docker's `*.crt` layout, a hosts.toml that does not decode, `skip_verify`, a
/// host that fails before one that verifies, a CA file missing or empty, an intermediate as the
/// CA, and a foreign CA beside system roots that verify.
extension ReleaseNodeIntegrationTests {
    func testContainerdHostsLayoutsOnBookwormContainerd16() throws { try hostsLayouts("bookworm") }
    func testContainerdHostsLayoutsOnTrixieContainerd17() throws { try hostsLayouts("trixie") }
    func testContainerdHostsLayoutsOnSidContainerd21() throws { try hostsLayouts("sid") }

    struct Layout {
        var name: String
        var files: [String: String]
        var pulls: Bool
        var outcome: String
        var chained = false
        /// What the check's reason must say.
        var says: String? = nil
    }

    func hostsLayouts(_ suite: String) throws {
        let (sandbox, node) = try bootWithCertsD(suite)
        // The route to the cluster DNS and the CA, by the agent; then every layout replaces
        // certs.d's contents and decides whether the system roots hold the CA.
        let bootstrap = try node.agent(["bootstrap", "--host-root", node.root, "--registry", sandbox.registry, "--ca", sandbox.caFile])
        XCTAssertEqual(bootstrap.status, 0, bootstrap.output)

        let ca = try String(contentsOfFile: sandbox.caFile, encoding: .utf8)
        let other = try String(contentsOfFile: try CertFixtures.path("other-ca.crt"), encoding: .utf8)
        let inter = try String(contentsOfFile: (sandbox.caFile as NSString).deletingLastPathComponent + "/inter-ca.crt", encoding: .utf8)
        let r = sandbox.registry  // host:443
        let h = String(r.dropLast(4))
        let chained = "chained-registry.openfaas.svc.cluster.local:443"
        let two = suite == "sid"  // containerd 2.1; bookworm and trixie have 1.6 and 1.7

        // The node's files are written in its own mount view (node.exec), from a folder of this
        // machine's /tmp that the view shares.
        let stage = try makeTemporaryDirectory("layout")
        defer { try? FileManager.default.removeItem(atPath: stage) }
        func systemRoots(withCA: Bool) throws {
            let local = node.root + "/usr/local/share/ca-certificates"
            let put = try node.exec([
                "sh", "-c", "rm -rf \"$0\"/* && if [ \"$1\" = yes ]; then cp \"$2\" \"$0/sandbox-test.crt\"; fi", local,
                withCA ? "yes" : "no",
                sandbox.caFile,
            ])
            XCTAssertEqual(put.status, 0, put.stderr)
            XCTAssertEqual(try node.inside("update-ca-certificates --fresh >/dev/null 2>&1").status, 0)
            // containerd's Go reads the system roots once per process.
            XCTAssertEqual(try node.systemctl(["restart", "containerd.service"]).status, 0)
            try node.waitForCRI()
        }

        func run(_ layout: Layout) throws {
            try? FileManager.default.removeItem(atPath: stage + "/certs.d")
            try FileManager.default.createDirectory(atPath: stage + "/certs.d", withIntermediateDirectories: true)
            for (path, text) in layout.files {
                let full = stage + "/certs.d/" + path
                try FileManager.default.createDirectory(
                    atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try text.write(toFile: full, atomically: true, encoding: .utf8)
            }
            let certsD = node.root + "/etc/containerd/certs.d"
            let put = try node.exec(["sh", "-c", "rm -rf \"$0\" && cp -a \"$1\" \"$0\"", certsD, stage + "/certs.d"])
            XCTAssertEqual(put.status, 0, put.stderr)
            let registry = layout.chained ? chained : r
            let pull = try node.pull(
                layout.chained ? "\(chained)/node-agent/pull-probe:absent" : sandbox.testImage,
                user: sandbox.vars["REGISTRY_USER"]!, password: sandbox.vars["REGISTRY_PASSWORD"]!)
            // An absent image that the registry reports not found got through TLS.
            let pulled = pull.ok || (layout.chained && pull.error.contains("not found"))
            let probe = try node.agent([
                "probe", "--host-root", node.root, "--registry", registry, "--runtime-pull", "off", "--output", "json",
            ])
            let check = try JSONReport.decode(probe.stdout).check("tls-runtime-trust")
            let said = check?.outcome ?? "none"
            XCTAssertEqual(pulled, layout.pulls, "\(suite), \(layout.name): containerd \(pulled ? "pulled" : "failed: \(pull.error)")")
            XCTAssertEqual(
                pulled, said == "pass" || said == "warn",
                "\(suite), \(layout.name): the agent said \(said) (\(check?.reason ?? probe.output)) where containerd \(pulled ? "pulled" : "failed: \(pull.error)")"
            )
            XCTAssertEqual(said, layout.outcome, "\(suite), \(layout.name): \(check?.reason ?? probe.output)")
            if let says = layout.says {
                XCTAssertTrue(check?.reason.contains(says) ?? false, "\(suite), \(layout.name): \(check?.reason ?? probe.output)")
            }
        }

        let agentStyle = { (folder: String) in
            "server = \"https://\(r)\"\n[host.\"https://\(r)\"]\n  ca = \"/etc/containerd/certs.d/\(folder)/ca.crt\"\n"
        }
        try systemRoots(withCA: false)
        for layout in [
            Layout(name: "no folder", files: [:], pulls: false, outcome: "fail"),
            Layout(
                name: "the port-less folder only", files: ["\(h)/hosts.toml": agentStyle(h), "\(h)/ca.crt": ca], pulls: false,
                outcome: "fail"),
            Layout(
                name: "a foreign host:port folder without ca, beside the port-less one",
                files: ["\(r)/hosts.toml": "server = \"https://\(r)\"\n", "\(h)/ca.crt": ca], pulls: false, outcome: "fail",
                says: "is not the agent's (another program"),
            Layout(
                name: "host_443_ before host:port", files: ["\(h)_443_/ca.crt": other, "\(r)/ca.crt": ca], pulls: false, outcome: "fail"),
            Layout(name: "Docker's layout", files: ["\(r)/ca.crt": ca], pulls: true, outcome: "pass"),
            // containerd 1.x reads a hosts.toml without a [host] table as Docker's layout (its
            // parser wants one): the top-level ca and skip_verify count from 2.0 only.
            Layout(
                name: "_default, top-level ca", files: ["_default/hosts.toml": "ca = \"ca.pem\"\n", "_default/ca.pem": ca], pulls: two,
                outcome: two ? "pass" : "fail"),
            Layout(
                name: "_default, a host table's ca",
                files: ["_default/hosts.toml": "[host.\"https://\(r)\"]\n  ca = \"ca.pem\"\n", "_default/ca.pem": ca],
                pulls: true, outcome: "pass"),
            Layout(
                name: "a hosts.toml that does not decode, beside a .crt", files: ["\(r)/hosts.toml": "server = \n", "\(r)/ca.crt": ca],
                pulls: true, outcome: "pass"),
            Layout(
                name: "top-level skip_verify", files: ["\(r)/hosts.toml": "skip_verify = true\n"], pulls: two,
                outcome: two ? "warn" : "fail"),
            Layout(
                name: "a host table's skip_verify", files: ["\(r)/hosts.toml": "[host.\"https://\(r)\"]\n  skip_verify = true\n"],
                pulls: true,
                outcome: "warn"),
            Layout(
                name: "a host with another CA before the server with the CA",
                files: [
                    "\(r)/hosts.toml": "server = \"https://\(r)\"\nca = \"ca.pem\"\n[host.\"https://\(r)\"]\n  ca = \"other.crt\"\n",
                    "\(r)/ca.pem": ca, "\(r)/other.crt": other,
                ], pulls: true, outcome: "pass"),
            Layout(
                name: "a CA file that is missing", files: ["\(r)/hosts.toml": "ca = \"missing.crt\"\n", "\(r)/other.crt": other],
                pulls: false,
                outcome: "fail"),
            Layout(
                name: "an intermediate given as the CA",
                files: ["\(chained)/hosts.toml": "ca = \"inter.crt\"\n", "\(chained)/inter.crt": inter],
                pulls: true, outcome: "pass", chained: true),
        ] {
            try run(layout)
        }
        // The runtime's own word on its config: config_path changed in the file, containerd not
        // restarted. 1.x says over the CRI what it runs with, and the checks follow it (the
        // folder it reads holds the CA: it pulls); 2.x does not say, and the files decide.
        try run(Layout(name: "Docker's layout, before the change", files: ["\(r)/ca.crt": ca], pulls: true, outcome: "pass"))
        let config = node.root + "/etc/containerd/config.toml"
        let edit = try node.exec(["sed", "-i", "s#config_path = \"/etc/containerd/certs.d\"#config_path = \"/etc/elsewhere\"#", config])
        XCTAssertEqual(edit.status, 0, edit.stderr)
        let pending = try node.agent(["probe", "--host-root", node.root, "--registry", r, "--output", "json"])
        let report = try JSONReport.decode(pending.stdout)
        if suite == "sid" {
            XCTAssertNil(report.check("runtime-config"), pending.output)
        } else {
            XCTAssertEqual(report.check("runtime-config")?.outcome, "warn", pending.output)
            XCTAssertTrue(report.check("runtime-config")?.reason.contains("restart containerd") ?? false, pending.output)
            XCTAssertEqual(report.check("tls-runtime-trust")?.outcome, "pass", pending.output)
        }
        XCTAssertEqual(report.check("runtime-pull")?.outcome, "pass", pending.output)
        let undo = try node.exec(["sed", "-i", "s#config_path = \"/etc/elsewhere\"#config_path = \"/etc/containerd/certs.d\"#", config])
        XCTAssertEqual(undo.status, 0, undo.stderr)
        if suite != "sid" {
            let agrees = try JSONReport.decode(
                try node.agent(["probe", "--host-root", node.root, "--registry", r, "--output", "json"]).stdout)
            XCTAssertEqual(agrees.check("runtime-config")?.outcome, "pass", "\(agrees.checks)")
        }

        try systemRoots(withCA: true)
        for layout in [
            Layout(name: "no folder, the CA in the system roots", files: [:], pulls: true, outcome: "pass"),
            Layout(
                name: "a foreign folder with another CA, beside system roots that verify",
                files: ["\(r)/hosts.toml": "server = \"https://\(r)\"\nca = \"other.crt\"\n", "\(r)/other.crt": other], pulls: true,
                outcome: "pass"),
            Layout(
                name: "a CA file with no certificate", files: ["\(r)/hosts.toml": "ca = \"empty.crt\"\n", "\(r)/empty.crt": "nothing\n"],
                pulls: false, outcome: "fail"),
        ] {
            try run(layout)
        }
    }
}
