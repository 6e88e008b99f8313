import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// Hostile input, one table per side: peers that misbehave on purpose (Tests/doubles/hostile-server,
/// inside the node) and host files that are not what they seem. Each row has its expected
/// outcome; every run must end, within its bound, with that outcome and no crash. (Symlinks out
/// of the host root, newline injection and oversized CA files are rows of
/// BootstrapIntegrationTests' bad-input table.)
final class HostileInputIntegrationTests: XCTestCase {
    var node: SandboxNode!

    override func setUpWithError() throws { node = try SandboxNode() }
    override func tearDown() { node?.down() }

    /// Starts a hostile peer inside the node and returns once it listens (startDouble: its
    /// `listening` line, not a fixed wait); stopped when the returned process is terminated.
    func hostile(_ mode: String, _ address: String, _ extra: [String] = []) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: node.script)
        p.arguments = ["exec", "python3", packageRoot.appendingPathComponent("Tests/doubles/hostile-server").path, mode, address] + extra
        var env = ProcessInfo.processInfo.environment
        env["NODE_AGENT_SANDBOX"] = node.folder
        p.environment = env
        try startDouble(p, "hostile-server \(mode) \(address)")
        return p
    }

    func testMisbehavingPeersGiveTheirOwnReasonWithinTheTimeout() throws {
        struct Row {
            var mode: String
            var check: String
            var outcome: String
            var reason: String
        }
        let rows = [
            Row(mode: "dns-garbage", check: "dns-cluster", outcome: "fail", reason: "did not answer (no answer (timeout))"),
            Row(mode: "dns-wrong-id", check: "dns-cluster", outcome: "fail", reason: "did not answer (no answer (timeout))"),
            Row(mode: "dns-huge", check: "dns-cluster", outcome: "fail", reason: "answered no address records"),
            Row(
                mode: "dns-loop", check: "dns-cluster", outcome: "pass",
                reason: "resolves registry-service.openfaas.svc.cluster.local to 127.0.0.20"),
            Row(mode: "tls-stall", check: "tls-runtime-trust", outcome: "fail", reason: "no TLS handshake came within the timeout"),
            Row(mode: "tls-garbage", check: "tls-runtime-trust", outcome: "fail", reason: "TLS handshake failed"),
        ]
        for row in rows {
            let dns = row.mode.hasPrefix("dns-")
            let peer = try hostile(row.mode, dns ? "127.0.0.30" : "127.0.0.31")
            defer {
                peer.terminate()
                peer.waitUntilExit()
            }
            let started = Date()
            let run = try node.agent([
                "probe", "--host-root", node.hostRoot, "--timeout", "1", "--output", "json",
                "--registry", dns ? node.registry : "127.0.0.31:443", "--cluster-dns", dns ? "127.0.0.30" : node.clusterDNS,
            ])
            let elapsed = Date().timeIntervalSince(started)
            XCTAssertEqual(run.status, 1, "\(row.mode): \(run.stderr)")
            let check = try JSONReport.decode(run.stdout).check(row.check)
            XCTAssertEqual(check?.outcome, row.outcome, "\(row.mode): \(check?.reason ?? "no \(row.check) check")")
            XCTAssertTrue(check?.reason.contains(row.reason) ?? false, "\(row.mode): \(check?.reason ?? "")")
            XCTAssertLessThan(elapsed, 6, "\(row.mode) took \(elapsed) s with --timeout 1")
        }
    }

    /// A registry double whose TLS verifies with the node's registry CA (so the handshake passes
    /// and the HTTP layer is what is hostile) answers `GET /v2/` with each malformed framing, a
    /// huge or endless head, redirects, a slow drip, and a Bearer realm whose token answer
    /// overflows. Each must give "not ready" (exit 1) with registry-api failing for a reason that
    /// names the problem, within the timeout, never a signal. (Before the framing was checked,
    /// negative-length and huge-chunk killed the agent with SIGTRAP, and bearer-realm too.)
    func testAHostileRegistrysHTTPIsNotReadyWithItsReasonNeverASignal() throws {
        // The node trusts the registry CA (and the double's certificate is issued by it).
        let setup = try node.agent(node.bootstrapArguments())
        XCTAssertEqual(setup.status, 0, setup.stdout + setup.stderr)
        let auth = node.folder + "/hostile-auth.json"
        // user "u", password "p", for the double's address with and without its port.
        try Data(#"{"auths": {"127.0.0.31": {"auth": "dTpw"}, "127.0.0.31:443": {"auth": "dTpw"}}}"#.utf8)
            .write(to: URL(fileURLWithPath: auth))
        let tooLarge = "the response body exceeds 65536 bytes"
        let rows: [(mode: String, reason: String)] = [
            ("negative-length", "Content-Length '-1' is not a number of bytes"),
            ("huge-length", tooLarge),
            ("conflicting-length", "Content-Length has different values (2 and 5)"),
            ("length-and-chunked", "both Transfer-Encoding and Content-Length"),
            ("huge-chunk", tooLarge),
            ("truncated-chunk", "the chunked body ended without its last chunk"),
            ("huge-body", tooLarge),
            ("huge-head", "the response headers exceed 16384 bytes"),
            ("endless-head", "the response headers exceed 16384 bytes"),
            ("slow-drip", "did not complete TLS and HTTP within the timeout"),
            ("redirect-loop", "GET /v2/ answered 301"),
            ("redirect-host", "GET /v2/ answered 302"),
            ("bearer-realm", tooLarge),
        ]
        for row in rows {
            let peer = try hostile("http-" + row.mode, "127.0.0.31", [node.caFile, node.vars["CA_KEY"]!])
            defer {
                peer.terminate()
                peer.waitUntilExit()
            }
            let started = Date()
            let run = try node.agent(
                [
                    "probe", "--host-root", node.hostRoot, "--timeout", "1", "--output", "json", "--registry", "127.0.0.31:443",
                    "--cluster-dns", node.clusterDNS,
                ] + (row.mode == "bearer-realm" ? ["--registry-auth", auth] : []))
            let elapsed = Date().timeIntervalSince(started)
            XCTAssertEqual(run.status, 1, "\(row.mode): exit \(run.status) (over 128: a signal) \(run.stderr.suffix(600))")
            guard let report = try? JSONReport.decode(run.stdout) else {
                XCTFail("\(row.mode): no report: \(run.stderr.suffix(600))")
                continue
            }
            XCTAssertEqual(report.check("tls-os-trust")?.outcome, "pass", "\(row.mode): the double's TLS must verify")
            let check = report.check("registry-api")
            XCTAssertEqual(check?.outcome, "fail", "\(row.mode): \(check?.reason ?? "no registry-api check")")
            XCTAssertTrue(check?.reason.contains(row.reason) ?? false, "\(row.mode): \(check?.reason ?? "")")
            XCTAssertLessThan(elapsed, 6, "\(row.mode) took \(elapsed) s with --timeout 1")
        }
        // bootstrap against it: the same verdict, exit 1 (not ready), no signal.
        let peer = try hostile("http-huge-chunk", "127.0.0.31", [node.caFile, node.vars["CA_KEY"]!])
        defer {
            peer.terminate()
            peer.waitUntilExit()
        }
        let boot = try node.agent(
            [
                "bootstrap", "--host-root", node.hostRoot, "--ca", node.caFile, "--registry", "127.0.0.31:443",
                "--cluster-dns", node.clusterDNS, "--timeout", "1", "--output", "json",
            ])
        XCTAssertEqual(boot.status, 1, "bootstrap: exit \(boot.status) \(boot.stderr.suffix(600))")
        let check = try? JSONReport.decode(boot.stdout).check("registry-api")
        XCTAssertTrue(check?.reason.contains(tooLarge) ?? false, "bootstrap: \(check?.reason ?? boot.stderr.suffix(600).description)")
    }

    /// A registry's own words reach the agent through containerd: its pull error quotes the
    /// answer's reason phrase and distribution's JSON error message, decoded. Whoever answers at
    /// the registry's address puts a line break, ESC, BEL and a C1 CSI there (the double's
    /// error-words mode: HEAD of the manifest 200, its GET 500); the real containerd passes them
    /// on, and the report (text and JSON), its reasons and the condition's blockers say them
    /// escaped, on one line, never raw. (Before Redaction.oneLine the text report held
    /// a forged "level=info msg=reconciled ready=true" line and the escapes raw.)
    func testARegistrysWordsPassedOnByTheRuntimeStayOnOneLine() throws {
        let peer = try hostile("http-error-words", "127.0.0.31", [node.caFile, node.vars["CA_KEY"]!])
        defer {
            peer.terminate()
            peer.waitUntilExit()
        }
        func bootstrap(_ output: String) throws -> (status: Int32, stdout: String, stderr: String) {
            let run = try node.agent(
                [
                    "bootstrap", "--host-root", node.hostRoot, "--ca", node.caFile, "--registry", "127.0.0.31:443",
                    "--cluster-dns", node.clusterDNS, "--timeout", "2", "--output", output,
                ])
            return (run.status, run.stdout, run.stderr)
        }
        let json = try bootstrap("json")
        XCTAssertEqual(json.status, 1, json.stderr)
        let check = try JSONReport.decode(json.stdout).check("runtime-pull")
        XCTAssertEqual(check?.outcome, "fail", check?.reason ?? json.stderr)
        let reason = check?.reason ?? ""
        XCTAssertTrue(reason.contains("500 Internal\\x1b[2J Error"), "containerd passed the reason phrase on: \(reason)")
        XCTAssertTrue(reason.contains(#"unknown: x\nlevel=info msg=reconciled ready=true\x1b]0;owned\x07\u{9b}2J"#), reason)
        let text = try bootstrap("text")
        XCTAssertEqual(text.status, 1, text.stderr)
        for (name, out) in [("json", json.stdout + json.stderr), ("text", text.stdout + text.stderr)] {
            XCTAssertFalse(
                out.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\n") || (0x7f...0x9f).contains($0.value) },
                "\(name): a control character other than the report's own line ends")
            XCTAssertFalse(
                out.split(separator: "\n").contains { $0.hasPrefix("level=info") }, "\(name): a line the registry wrote")
        }
        XCTAssertTrue(text.stdout.contains(#"x\nlevel=info msg=reconciled ready=true"#), text.stdout)
    }

    /// A Node as big as the API server sends them (here 600 KiB: 3,200 images in its status, as
    /// a node that has pulled many gets with nodeStatusMaxImages lifted): the agent reads it
    /// whole, so it publishes its condition and removes its startup taint. (Answers were cut
    /// at 64 KiB before: the cut JSON did not parse, and the taint stayed for ever.)
    func testABigNodeLosesItsStartupTaint() throws {
        let sa = node.folder + "/serviceaccount.token"
        let admin = node.folder + "/admin.token"
        try "token-\(UUID().uuidString)".write(toFile: sa, atomically: true, encoding: .utf8)
        let adminToken = "token-\(UUID().uuidString)"
        try adminToken.write(toFile: admin, atomically: true, encoding: .utf8)
        let api = try APIDouble(node, tokens: [sa: APIDouble.serviceAccount, admin: "admin,system:masters"])
        defer { api.stop() }
        // The images, as kubelet reports them, added by an administrator's status patch.
        let images = (0..<3200).map { i -> [String: Any] in
            let digest = String(repeating: String(format: "%08x", i), count: 8)
            return [
                "names": [
                    "registry.example.com/team-\(i % 40)/service-\(i)@sha256:\(digest)",
                    "registry.example.com/team-\(i % 40)/service-\(i):v\(i)",
                ],
                "sizeBytes": 10_000_000 + i,
            ]
        }
        let patch = node.folder + "/images.json"
        try JSONSerialization.data(withJSONObject: ["status": ["images": images]]).write(to: URL(fileURLWithPath: patch))
        let patched = try node.exec([
            "curl", "-sS", "-m", "20", "--cacert", node.caFile, "-X", "PATCH", "-H", "Authorization: Bearer " + adminToken,
            "-H", "Content-Type: application/merge-patch+json", "--data-binary", "@" + patch, "-o", "/dev/null", "-w", "%{http_code}",
            api.url + "/api/v1/nodes/node-1/status",
        ])
        XCTAssertEqual(patched.stdout, "200", patched.stderr + ((try? String(contentsOfFile: api.errors, encoding: .utf8)) ?? ""))
        let size = try JSONSerialization.data(withJSONObject: try api.nodeObject()).count  // as the API sends it: compact
        XCTAssertGreaterThan(size, 600 * 1024, "the Node is \(size) bytes")
        XCTAssertEqual(try api.taints().count, 2)

        let log = node.folder + "/agent.log"
        let agent = try node.startReporting(api, tokenFile: sa, heartbeat: 3, log: log)
        defer {
            agent.terminate()
            agent.waitUntilExit()
        }
        let deadline = Date().addingTimeInterval(20)
        func done() -> Bool {
            (try? api.taints().compactMap { $0["key"] as? String }) == ["example.com/other"]
                && ((try? api.conditions()) ?? []).contains { $0["type"] as? String == "RegistryPullReady" }
        }
        while !done() && Date() < deadline { Thread.sleep(forTimeInterval: 0.3) }
        let agentLog = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertTrue(done(), "the startup taint is still there: \(agentLog.suffix(1500))")
        XCTAssertEqual(((try api.nodeObject())["status"] as? [String: Any])?["images"].map { ($0 as? [Any])?.count }, 3200)
    }

    func testHostFilesThatAreNotWhatTheySeem() throws {
        let before = node.snapshot()
        // A FIFO where os-release should be: the read would wait for a writer forever.
        let osRelease = node.hostRoot + "/etc/os-release"
        try FileManager.default.moveItem(atPath: osRelease, toPath: osRelease + ".real")
        XCTAssertEqual(mkfifo(osRelease, 0o644), 0)
        let fifo = try node.agent(node.bootstrapArguments())
        XCTAssertEqual(fifo.status, 3, fifo.stdout + fifo.stderr)
        XCTAssertTrue(fifo.stderr.contains("/etc/os-release is not a regular file"), fifo.stderr)
        try FileManager.default.removeItem(atPath: osRelease)
        try FileManager.default.moveItem(atPath: osRelease + ".real", toPath: osRelease)
        XCTAssertEqual(node.snapshot().difference(from: before), [], "a refused run changed the host")

        // A FIFO as the CA file.
        let caFIFO = node.folder + "/ca.fifo"
        XCTAssertEqual(mkfifo(caFIFO, 0o644), 0)
        let ca = try node.agent(node.bootstrapArguments(ca: caFIFO))
        XCTAssertEqual(ca.status, 2, ca.stdout + ca.stderr)
        XCTAssertTrue(ca.stderr.contains("is not a regular file"), ca.stderr)

        // kubelet's config grown to 20 MiB: refused to read, named, no hang.
        let kubelet = node.hostRoot + "/var/lib/kubelet/config.yaml"
        try Data(repeating: UInt8(ascii: "#"), count: 20 << 20).write(to: URL(fileURLWithPath: kubelet))
        let big = try node.agent(["bootstrap", "--host-root", node.hostRoot, "--ca", node.caFile, "--registry", node.registry])
        XCTAssertNotEqual(big.status, 0, big.stdout)
        XCTAssertTrue(big.stderr.contains("/var/lib/kubelet/config.yaml is larger than"), big.stderr)
        try FileManager.default.removeItem(atPath: kubelet)

        // A drop-in masked the systemd way (a link to /dev/null) reads as empty: no error.
        let masked = node.hostRoot + "/etc/systemd/resolved.conf.d/masked.conf"
        try FileManager.default.createSymbolicLink(atPath: masked, withDestinationPath: "/dev/null")
        let ok = try node.agent(node.bootstrapArguments())
        XCTAssertEqual(ok.status, 0, ok.stdout + ok.stderr)
    }
}
