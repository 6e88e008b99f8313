import Foundation
import TestSupport
import XCTest

/// `node-agent run`'s network proof cadence on a sandbox node (#32 item 3): between full proofs
/// (--proof-interval) the interval's reconciles are light, and the registry sees fewer TLS
/// handshakes, counted where it listens (every TLS ClientHello to its address, an iptables
/// counter in the node's network namespace: the agent's connections and containerd's); a
/// registry that stops is still seen within one interval.
final class NetworkProofIntegrationTests: XCTestCase {
    var node: SandboxNode!

    override func setUpWithError() throws { node = try SandboxNode() }
    override func tearDown() { node?.down() }

    /// iptables in the node's network namespace.
    func net(_ arguments: [String]) throws -> String {
        let r = try sh("/usr/bin/nsenter", ["-n", "-t", node.vars["SANDBOX_PID"]!, "iptables"] + arguments)
        guard r.status == 0 else { throw XCTSkip("iptables in the node's namespace: \(r.stderr)") }
        return r.stdout
    }

    /// TLS ClientHellos that reached the registry's address since the counter was set.
    func handshakes() throws -> Int {
        let line = try net(["-L", "INPUT", "-v", "-n", "-x"]).split(separator: "\n").first { $0.contains("/* client-hello */") }
        return Int(line?.split(separator: " ").first ?? "") ?? -1
    }

    func countHandshakes() throws {
        // The TLS record type (22, handshake) and the handshake type (1, ClientHello) at the start of
        // the TCP payload.
        _ = try net([
            "-I", "INPUT", "-p", "tcp", "-d", node.vars["REGISTRY_IP"]!, "--dport", "443", "-m", "u32", "--u32",
            "0>>22&0x3C@12>>26&0x3C@0>>24=0x16&&0>>22&0x3C@12>>26&0x3C@5>>24=0x01", "-m", "comment", "--comment", "client-hello",
        ])
    }

    /// The agent run for `seconds` after its first ready reconcile with `proofInterval`: the
    /// handshakes the registry saw in that time and the reconciles (full, light) the agent logged.
    func steady(proofInterval: String, seconds: Double) throws -> (handshakes: Int, full: Int, light: Int, log: String) {
        let (process, log) = try node.startRun([
            "--ca", node.caFile, "--cluster-dns", node.clusterDNS, "--interval", "1", "--watch-interval", "0.2",
            "--proof-interval", proofInterval, "--listen", "off",
        ])
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        func text() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        try eventually(60, "the first reconcile, ready") { text().contains("ready=true") }
        let (h0, t0) = (try handshakes(), text())
        Thread.sleep(forTimeInterval: seconds)
        let (h1, t1) = (try handshakes(), text())
        let window = String(t1.dropFirst(t0.count))
        return (
            h1 - h0, window.components(separatedBy: "proof=full").count - 1, window.components(separatedBy: "proof=light").count - 1,
            t1
        )
    }

    /// Steady state: every reconcile full (--proof-interval equal to --interval, the cadence
    /// before) against the default --proof-interval (600 s: every reconcile of the window light).
    /// Measured here: 5 handshakes per full reconcile (tls-os-trust, tls-runtime-trust,
    /// registry-api and containerd's pull), 1 per light one (registry-api).
    func testLightReconcilesCostTheRegistryOneHandshakeAndProveAgainWhenItStops() throws {
        try countHandshakes()
        let before = try steady(proofInterval: "1", seconds: 12)
        let after = try steady(proofInterval: "600", seconds: 12)
        XCTAssertEqual(before.light, 0, before.log)
        XCTAssertGreaterThanOrEqual(before.full, 4, before.log)
        XCTAssertEqual(after.full, 0, "the window is light: \(after.log)")
        XCTAssertGreaterThanOrEqual(after.light, 4, after.log)
        let perBefore = Double(before.handshakes) / Double(before.full)
        let perAfter = Double(after.handshakes) / Double(after.light)
        XCTAssertGreaterThanOrEqual(perBefore, 3.5, "handshakes per full reconcile: \(before.handshakes)/\(before.full)")
        XCTAssertEqual(perAfter, 1, accuracy: 0.35, "one handshake per light reconcile: \(after.handshakes)/\(after.light)")
        XCTAssertLessThan(after.handshakes * 3, before.handshakes, "before \(before), after \(after)")

        // The registry stops: the next light reconcile's registry-api fails, a full proof follows at
        // once, and the node is not ready within one interval (jittered, 1.1 s) and the two
        // reconciles' time.
        let (process, log) = try node.startRun([
            "--ca", node.caFile, "--cluster-dns", node.clusterDNS, "--interval", "1", "--watch-interval", "0.2",
            "--listen", "off",
        ])
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        func text() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        try eventually(60, "ready, then a light reconcile") { text().contains("ready=true") && text().contains("proof=light") }
        let stopped = Date()
        XCTAssertEqual(try node.control(["stop", "registry"]), 0)
        try eventually(10, "not ready after the registry stopped") { text().contains("ready=false") }
        let detected = Date().timeIntervalSince(stopped)
        XCTAssertLessThan(detected, 1.1 + 2, text())
        XCTAssertTrue(
            text().contains("moved=\"registry-api is now fail (was pass)\"") || text().contains("moved=registry-api is now fail"), text())
        let verdict = try XCTUnwrap(text().split(separator: "\n").first { $0.contains("ready=false") })
        XCTAssertTrue(verdict.contains("proof=full"), "the verdict is a full proof's: \(verdict)")
        print("registry stop -> ready=false in \(String(format: "%.2f", detected)) s (--interval 1)")
    }
}
