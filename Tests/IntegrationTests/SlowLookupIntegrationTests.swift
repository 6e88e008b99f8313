import Foundation
import TestSupport
import Vocabulary
import XCTest

/// Timeouts are answers (issue #29 item 4), judged by real CRI pulls on a booted bookworm node
/// with Debian's libnss-mdns 0.15.1 and avahi-daemon running (as HardenedResolverIntegrationTests
/// installs them), containerd 1.6 asking the C library (cgo) for the registry's name.
extension ReleaseNodeIntegrationTests {
    /// With the full `mdns4` before `dns` and an /etc/mdns.allow naming `.local`, glibc asks
    /// avahi, which answers not found after 5 s; then DNS answers. Measured here: getent 5.0 s,
    /// the real pull of the test image 5.2-5.4 s and ok (containerd has no 2 s budget), the probe
    /// reference's pull about 10 s (it resolves the name for each of hosts.toml's two entries).
    /// - `--runtime-pull off --timeout 2`: dns-host fails with the overrun (how long, which hosts
    ///   line, which source waits), from the node's own getent, the same on every run.
    /// - runtime-pull on: the first ask runs out of its 4 s, the runtime is asked again with the
    ///   rest of the deadline, pulls, and dns-host is settled to a warning: ready, as the pull.
    /// With `[NOTFOUND=return]` after `mdns4` the lookup ends at avahi's not found: dns-host fails
    /// on that (not a timeout, with --timeout 8) and so does the pull.
    /// Before: the reason was ProcessRunner's ("chroot did not finish within 2 s", with a hint
    /// about update-ca-certificates), the pull's ran-out was "The transport threw an unexpected
    /// error." and the verdict not ready where the node pulls, and the not-found hint blamed
    /// "a [NOTFOUND=return] or mdns4_minimal".
    func testBookwormAnNSSSourceThatWaitsIsAnAnswerAndThePullAgrees() throws {
        let (sandbox, node) = try bootWithCertsD("bookworm", debs: "libnss-mdns")
        func pull() throws -> (ok: Bool, error: String, seconds: Double) {
            let started = Date()
            let r = try node.pullTestImage(from: sandbox)
            return (r.ok, r.error, Date().timeIntervalSince(started))
        }
        func probe(_ args: [String]) throws -> (status: Int32, report: JSONReport, output: String, seconds: Double) {
            let started = Date()
            let r = try node.agent(["probe", "--host-root", node.root, "--registry", sandbox.registry, "--output", "json"] + args)
            return (r.status, try JSONReport.decode(r.stdout), r.output, Date().timeIntervalSince(started))
        }
        func getent() throws -> (status: Int32, stdout: String, seconds: Double) {
            let started = Date()
            let r = try node.inside("getent -A ahosts \(sandbox.registry.split(separator: ":")[0])")
            return (r.status, r.stdout, Date().timeIntervalSince(started))
        }
        let install = try node.inside("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-download libnss-mdns")
        XCTAssertEqual(install.status, 0, install.stdout + install.stderr)
        XCTAssertEqual(try node.systemctl(["is-active", "avahi-daemon.service"]).stdout, "active\n")
        // Debian's own line (mdns4_minimal passes the name on): the link, and the node pulls.
        let bootstrap = try node.agent([
            "bootstrap", "--host-root", node.root, "--registry", sandbox.registry, "--ca", sandbox.caFile, "--output", "json",
        ])
        XCTAssertEqual(bootstrap.status, 0, bootstrap.output)
        XCTAssertTrue(try pull().ok)

        // 1. mdns4 takes the name and waits, then DNS answers.
        let waits = try node.inside(
            "sed -i 's/^hosts:.*/hosts: files mdns4 dns/' /etc/nsswitch.conf && printf '.local.\\n.local\\n' > /etc/mdns.allow")
        XCTAssertEqual(waits.status, 0, waits.stderr)
        let slow = try getent()
        XCTAssertEqual(slow.status, 0, slow.stdout)
        XCTAssertTrue(slow.stdout.hasPrefix(sandbox.vars["REGISTRY_IP"]! + " "), slow.stdout)
        XCTAssertGreaterThan(slow.seconds, 4.5, "avahi answered before its 5 s: the node is not in the state this test is about")
        let slowPull = try pull()
        XCTAssertTrue(slowPull.ok, "containerd's pull did not wait for the lookup: \(slowPull.error)")
        XCTAssertGreaterThan(slowPull.seconds, 4.5)

        var reasons: Set<String> = []
        for round in 1...2 {
            let off = try probe(["--runtime-pull", "off", "--timeout", "2"])
            XCTAssertEqual(off.status, 1, off.output)
            XCTAssertNil(off.report.check("runtime-pull"), off.output)
            let host = try XCTUnwrap(off.report.check("dns-host"), off.output)
            XCTAssertEqual(host.outcome, "fail", "round \(round): \(host.reason)")
            XCTAssertEqual(host.details["resolver"], "glibc", "round \(round): a model answered: \(host.details)")
            XCTAssertEqual(host.details["waiting_sources"], "mdns4", "\(host.details)")
            XCTAssertEqual(host.details["budget_seconds"], "2.0", "\(host.details)")
            for said in [
                "containerd cannot resolve registry-service.openfaas.svc.cluster.local in time",
                "(getent in the host root, hosts: files mdns4 dns), had not answered after 2.0 s, the probe's budget (--timeout), and was stopped",
                "mdns4 takes the name before DNS (with /etc/mdns.allow (.local. .local)), and avahi-daemon answers not found only after 5 s per address family",
            ] {
                XCTAssertTrue(host.reason.contains(said), "round \(round): \(said): \(host.reason)")
            }
            for wrong in ["chroot", "update-ca-certificates", "getent not available"] {
                XCTAssertFalse(host.reason.contains(wrong), "round \(round): \(host.reason)")
            }
            XCTAssertLessThan(off.seconds, 4.5, "the probe waited for avahi past its budget")
            reasons.insert(host.reason.replacingOccurrences(of: #"after \d+\.\d s"#, with: "after N s", options: .regularExpression))
        }
        XCTAssertEqual(reasons.count, 1, "the verdict's reason changed between runs: \(reasons)")

        // The agent's full verdict, with the runtime's own pull: ready, as the pull says.
        let on = try probe(["--timeout", "2"])
        XCTAssertEqual(on.status, 0, "the agent said not ready where the pull works: \(on.output)")
        let pulled = try XCTUnwrap(on.report.check("runtime-pull"), on.output)
        XCTAssertEqual(pulled.outcome, "pass", pulled.reason)
        XCTAssertEqual(pulled.details["stage"], "registry", "\(pulled.details)")
        XCTAssertNotNil(pulled.details["first_ask_seconds"], "\(pulled.details)")
        // The first ask's own seconds: its 4 s budget, and a little more on a loaded machine (4.1 s
        // was seen with two test processes and three builds on two cores).
        XCTAssertNotNil(
            pulled.reason.range(
                of: #"\(asked again with the rest of --deadline: the first ask ran out of its 4\.[0-9] s"#, options: .regularExpression),
            pulled.reason)
        let settled = try XCTUnwrap(on.report.check("dns-host"), on.output)
        XCTAssertEqual(settled.outcome, "warn", settled.reason)
        XCTAssertTrue(settled.reason.contains("had not answered after 2.0 s"), settled.reason)
        XCTAssertTrue(settled.reason.hasSuffix("(yet the runtime's own pull got through: see runtime-pull)"), settled.reason)
        XCTAssertTrue(try pull().ok, "the pull disagrees")

        // 2. [NOTFOUND=return] after mdns4: avahi's not found ends the lookup.
        let ends = try node.inside("sed -i 's/^hosts:.*/hosts: files mdns4 [NOTFOUND=return] dns/' /etc/nsswitch.conf")
        XCTAssertEqual(ends.status, 0, ends.stderr)
        let notFound = try getent()
        XCTAssertEqual(notFound.status, 2, notFound.stdout)
        XCTAssertGreaterThan(notFound.seconds, 4.5)
        let failedPull = try pull()
        XCTAssertFalse(failedPull.ok, "mdns4 with [NOTFOUND=return] did not end the lookup")
        XCTAssertTrue(failedPull.error.contains("no such host"), failedPull.error)
        let ended = try probe(["--timeout", "8"])
        XCTAssertEqual(ended.status, 1, "the agent said ready where the pull fails: \(ended.output)")
        let host = try XCTUnwrap(ended.report.check("dns-host"), ended.output)
        XCTAssertEqual(host.outcome, "fail", host.reason)
        XCTAssertNil(host.details["overrun_seconds"], "a not found read as a timeout: \(host.reason)")
        for said in [
            "glibc, following nsswitch.conf (hosts: files mdns4 [NOTFOUND=return] dns), finds no address (not found, or no source answered)",
            "yet the resolv.conf servers answer it",
            "mdns4 takes the name before DNS (with /etc/mdns.allow (.local. .local)), and avahi-daemon answers not found only after 5 s per address family; its [NOTFOUND=return] then ends the lookup",
        ] {
            XCTAssertTrue(host.reason.contains(said), "\(said): \(host.reason)")
        }
        let refused = try XCTUnwrap(ended.report.check("runtime-pull"), ended.output)
        XCTAssertEqual(refused.outcome, "fail", refused.reason)
        XCTAssertEqual(refused.details["stage"], "resolve", "\(refused.details)")
        XCTAssertNil(refused.details["first_ask_seconds"], "\(refused.details)")
        print(
            "slow NSS source on bookworm: getent \(slow.seconds.fixed(2)) s (answers), pull \(slowPull.seconds.fixed(2)) s (ok); probe --timeout 2 --runtime-pull off \(reasons.count == 1 ? "same reason twice" : "reasons differ"), with runtime-pull \(on.seconds.fixed(1)) s (first ask \(pulled.details["first_ask_seconds"] ?? "-") s); [NOTFOUND=return]: getent \(notFound.seconds.fixed(2)) s (not found), pull \(failedPull.seconds.fixed(2)) s (no such host), probe --timeout 8 \(ended.seconds.fixed(1)) s"
        )
    }
}
