import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// Hostile input, one table per side: peers that misbehave on purpose (scripts/hostile-server,
/// inside the node) and host files that are not what they seem. Each row has its expected
/// outcome; every run must end, within its bound, with that outcome and no crash. (Symlinks out
/// of the host root, newline injection and oversized CA files are rows of
/// BootstrapIntegrationTests' bad-input table.)
final class HostileInputIntegrationTests: XCTestCase {
    var node: SandboxNode!

    override func setUpWithError() throws { node = try SandboxNode() }
    override func tearDown() { node?.down() }

    /// Starts a hostile peer inside the node; stopped when the returned process is terminated.
    func hostile(_ mode: String, _ address: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: node.script)
        p.arguments = ["exec", "python3", packageRoot.appendingPathComponent("scripts/hostile-server").path, mode, address]
        var env = ProcessInfo.processInfo.environment
        env["NODE_AGENT_SANDBOX"] = node.folder
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        Thread.sleep(forTimeInterval: 0.4)
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
            Row(mode: "tls-stall", check: "tls-os-trust", outcome: "fail", reason: "no TLS handshake came within the timeout"),
            Row(mode: "tls-garbage", check: "tls-os-trust", outcome: "fail", reason: "TLS handshake failed"),
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
