import Foundation
import TestSupport
import XCTest

/// The cluster domain's route on hardened nodes, judged by real CRI pulls on booted releases:
/// resolved's global DNSOverTLS=yes on systemd 262 (a delegate file has no mode of its own), and
/// nss-mdns before `dns` on bookworm (Debian's libnss-mdns 0.15.1 with avahi-daemon running).
extension ReleaseNodeIntegrationTests {
    /// systemd 262 with a delegate file of the agent's; then the admin hardens resolved.conf
    /// with DNSOverTLS=yes. resolved asks the delegate's server over TLS on 853 (measured: the
    /// name no longer resolves and the pull fails); delegate and dropin, asked for, say why they
    /// cannot work and change nothing; auto takes the link (its own DNSOverTLS=no), the agent's
    /// delegate file goes, and the node pulls.
    func testSidStrictDNSOverTLSTakesTheLinkInsteadOfTheDelegate() throws {
        let (sandbox, node) = try bootWithCertsD("sid")
        func pull() throws -> (ok: Bool, error: String) { try node.pullTestImage(from: sandbox) }
        let bootstrap = ["bootstrap", "--host-root", node.root, "--registry", sandbox.registry, "--ca", sandbox.caFile, "--output", "json"]
        let first = try node.agent(bootstrap)
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertTrue(try JSONReport.decode(first.stdout).notes.contains { $0.hasPrefix("DNS mode delegate: ") }, first.output)
        XCTAssertTrue(try pull().ok)

        let harden = try node.inside(
            "printf '[Resolve]\\nDNSOverTLS=yes\\n' >> /etc/systemd/resolved.conf && systemctl restart systemd-resolved")
        XCTAssertEqual(harden.status, 0, harden.stderr)
        XCTAssertTrue(try node.inside("resolvectl dnsovertls").stdout.contains("Global: yes"))
        let broken = try pull()
        XCTAssertFalse(broken.ok, "the delegate still works under strict DNS over TLS: the agent's rule rests on the opposite")
        let probe = try node.agent(["probe", "--host-root", node.root, "--registry", sandbox.registry, "--output", "json"])
        XCTAssertEqual(probe.status, 1, "the agent said ready where the pull failed: \(probe.output)")

        let files = try node.files()
        for (mode, extra) in [("delegate", [String]()), ("dropin", ["--accept-global-dns"])] {
            let asked = try node.agent(bootstrap + ["--dns-mode", mode] + extra)
            XCTAssertEqual(asked.status, 3, "\(mode): \(asked.output)")
            XCTAssertTrue(
                asked.output.contains(
                    "--dns-mode \(mode) cannot work here: resolved's global DNSOverTLS=yes (from /etc/systemd/resolved.conf)"),
                asked.output)
            XCTAssertEqual(try node.files(), files, "\(mode): a refused mode changed the node")
        }

        let run = try node.agent(bootstrap)
        XCTAssertEqual(run.status, 0, run.output)
        let report = try JSONReport.decode(run.stdout)
        XCTAssertTrue(
            report.notes.contains {
                $0.hasPrefix(
                    "DNS mode link: systemd 262 has dns-delegate.d, but resolved's global DNSOverTLS=yes (from /etc/systemd/resolved.conf) applies to a delegate's scope"
                )
            }, run.output)
        XCTAssertEqual(report.check("runtime-pull")?.outcome, "pass", run.output)
        XCTAssertNotEqual(try node.inside("test -e /etc/systemd/dns-delegate.d/node-agent.dns-delegate").status, 0)
        let link = try node.inside("resolvectl dnsovertls nodeagent0").stdout
        XCTAssertTrue(link.hasSuffix("(nodeagent0): no\n"), link)
        let after = try pull()
        XCTAssertTrue(after.ok, "the agent said ready and the pull failed: \(after.error)")
        XCTAssertTrue(try node.inside("resolvectl dnsovertls").stdout.contains("Global: yes"), "the admin's policy changed")
        let again = try node.agent(bootstrap)
        XCTAssertEqual(try JSONReport.decode(again.stdout).changes, [], again.output)
    }

    /// Debian's libnss-mdns (0.15.1, with avahi-daemon) on bookworm. Its own hosts line,
    /// `files mdns4_minimal [NOTFOUND=return] dns`, passes the registry's name (five labels) on
    /// to DNS: auto keeps the link and the node pulls. With the full `mdns4` and an
    /// /etc/mdns.allow naming `.local`, avahi is asked, answers not found after 5 s and
    /// [NOTFOUND=return] ends the lookup: no route through DNS can work (the pull fails over the
    /// link; the link, asked for, is refused), and auto writes /etc/hosts lines, which `files`
    /// answers first: the node pulls.
    func testBookwormNssMdnsBeforeDNSGetsHostsLines() throws {
        let (sandbox, node) = try bootWithCertsD("bookworm", debs: "libnss-mdns")
        func pull() throws -> (ok: Bool, error: String) { try node.pullTestImage(from: sandbox) }
        let install = try node.inside("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-download libnss-mdns")
        XCTAssertEqual(install.status, 0, install.stdout + install.stderr)
        XCTAssertEqual(
            try node.inside("grep '^hosts:' /etc/nsswitch.conf").stdout, "hosts:          files mdns4_minimal [NOTFOUND=return] dns\n")
        XCTAssertEqual(try node.systemctl(["is-active", "avahi-daemon.service"]).stdout, "active\n")
        let bootstrap = ["bootstrap", "--host-root", node.root, "--registry", sandbox.registry, "--ca", sandbox.caFile, "--output", "json"]

        let debian = try node.agent(bootstrap)
        XCTAssertEqual(debian.status, 0, debian.output)
        XCTAssertTrue(try JSONReport.decode(debian.stdout).notes.contains { $0.hasPrefix("DNS mode link: ") }, debian.output)
        let debianPull = try pull()
        XCTAssertTrue(debianPull.ok, "mdns4_minimal did not pass the name on: \(debianPull.error)")

        let open = try node.inside(
            "sed -i 's/^hosts:.*/hosts: files mdns4 [NOTFOUND=return] dns/' /etc/nsswitch.conf && printf '.local.\\n.local\\n' > /etc/mdns.allow"
        )
        XCTAssertEqual(open.status, 0, open.stderr)
        let started = Date()
        let broken = try pull()
        XCTAssertFalse(broken.ok, "mdns4 with mdns.allow did not end the lookup: the agent's rule rests on it")
        XCTAssertTrue(broken.error.contains("no such host"), broken.error)
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 4.5, "avahi's answer came before its 5 s")

        let files = try node.files()
        let link = try node.agent(bootstrap + ["--dns-mode", "link"])
        XCTAssertEqual(link.status, 3, link.output)
        XCTAssertTrue(
            link.output.contains(
                "--dns-mode link cannot work here: nsswitch.conf's hosts line (files mdns4 [NOTFOUND=return] dns) asks mdns4 before DNS, and with /etc/mdns.allow (.local. .local) it takes registry-service.openfaas.svc.cluster.local"
            ), link.output)
        XCTAssertEqual(try node.files(), files, "a refused mode changed the node")

        let run = try node.agent(bootstrap)
        XCTAssertEqual(run.status, 0, run.output)
        let report = try JSONReport.decode(run.stdout)
        XCTAssertTrue(
            report.notes.contains {
                $0.hasPrefix("DNS mode hosts: nsswitch.conf's hosts line (files mdns4 [NOTFOUND=return] dns) asks mdns4 before DNS")
            }, run.output)
        XCTAssertEqual(report.check("dns-host")?.outcome, "pass", run.output)
        XCTAssertEqual(report.check("runtime-pull")?.outcome, "pass", run.output)
        XCTAssertTrue(
            try node.inside("cat /etc/hosts").stdout.contains("registry-service.openfaas.svc.cluster.local # node-agent\n"))
        XCTAssertNotEqual(try node.exec(["ip", "link", "show", "nodeagent0"]).status, 0, "the link stayed")
        let after = try pull()
        XCTAssertTrue(after.ok, "the agent said ready and the pull failed: \(after.error)")
        let again = try node.agent(bootstrap)
        XCTAssertEqual(try JSONReport.decode(again.stdout).changes, [], again.output)
    }
}
