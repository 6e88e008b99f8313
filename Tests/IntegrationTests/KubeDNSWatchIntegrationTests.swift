import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// `node-agent run` on a sandbox node with Tests/doubles/api-double holding kubeadm's kube-dns
/// Service (clusterIP: the node's cluster DNS, the dnsmasq double) and its EndpointSlice: the
/// agent watches the slices (daemonset.yaml's Role node-agent-kube-dns) and its light reconciles
/// ask kube-dns nothing while an endpoint is ready; kube-dns killed and its endpoint marked not
/// ready (as the endpoints controller marks it when CoreDNS's readiness probe fails) is proven at
/// the next watch tick, not at the next interval. Without the Role (403), the light reconcile asks
/// its one question as before and a kube-dns kill is still seen within an interval. The node's
/// containerd pulls (the ground truth) fail while the agent says not ready and work once it is
/// ready again.
final class KubeDNSWatchIntegrationTests: XCTestCase {
    var node: SandboxNode!

    override func setUpWithError() throws { node = try SandboxNode() }
    override func tearDown() { node?.down() }

    let slicePath = "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/kube-dns-x7k2q"

    /// The agent against `api`, reconciling every `interval` s (light between full proofs), the
    /// health endpoint on the node's loopback; its log.
    func start(_ api: APIDouble, token: String, interval: Int) throws -> (Process, String) {
        let log = node.folder + "/agent.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let agent = try node.background(
            [
                SandboxNode.binary, "run", "--host-root", node.hostRoot, "--registry", node.registry, "--ca", node.caFile,
                "--interval", "\(interval)", "--watch-interval", "0.2", "--timeout", "1", "--listen", "127.0.0.1:9808",
                "--node-name", "node-1", "--kube-api", api.url, "--kube-token-file", token, "--kube-ca-file", node.caFile,
            ], output: log)
        return (agent, log)
    }

    func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
    func questions() -> Int { node.log("kube-dns-queries.log").components(separatedBy: "query[").count - 1 }
    func count(_ what: String, in log: String) -> Int { text(log).components(separatedBy: what).count - 1 }

    /// The failing checks of /status, by name.
    func failing() throws -> [String: String] {
        let body = try node.endpoint("/status").body
        guard let status = try? JSONReport.decode(body) else { return ["status": body] }
        return Dictionary(status.checks.filter { $0.outcome == "fail" }.map { ($0.name, $0.reason) }, uniquingKeysWith: { a, _ in a })
    }

    /// Live watch: light reconciles ask kube-dns nothing and say where their word came from; the
    /// kill and the endpoint marked not ready: not ready at once (the watch tick's full proof,
    /// well within the 10 s interval). Broken (no watch: the agent as before this change), the
    /// word is never logged, each light reconcile asks a question and the outage waits for the
    /// next interval's light reconcile.
    func testALiveWatchSparesKubeDNSAndNoReadyEndpointIsSeenAtOnce() throws {
        let (agentToken, _) = try node.tokenFile("serviceaccount")
        let (adminToken, admin) = try node.tokenFile("admin")
        let api = try APIDouble(node, tokens: [agentToken: APIDouble.serviceAccount, adminToken: "admin,system:masters"])
        defer { api.stop() }
        let (agent, log) = try start(api, token: agentToken, interval: 10)
        defer {
            agent.terminate()
            agent.waitUntilExit()
        }
        try eventually(30, "ready, the watch live") {
            try node.endpoint("/readyz").code == "200"
                && text(log).contains("kube-dns: 1 ready endpoints (EndpointSlice watch of kube-system/kube-dns)")
        }
        // Two light reconciles after the word: no question reaches kube-dns.
        let lights = count("proof=light", in: log)
        let asked = questions()
        try eventually(30, "two light reconciles") { count("proof=light", in: log) >= lights + 2 }
        XCTAssertEqual(questions(), asked, "a light reconcile asked kube-dns while the watch said it was ready: \(text(log))")
        let status = try JSONReport.decode(try node.endpoint("/status").body)
        XCTAssertTrue(
            status.check("dns-cluster")?.reason.contains("(EndpointSlice watch of kube-system/kube-dns)") ?? false,
            "\(String(describing: status.check("dns-cluster")))")
        let watches = api.requests.filter { ($0["path"] as? String)?.contains("watch=true") ?? false }
        XCTAssertEqual(watches.count, 1, "one watch per node")

        // kube-dns killed, its endpoint marked not ready (the endpoints controller's write).
        XCTAssertEqual(try node.control(["stop", "kube-dns"]), 0)
        let killed = Date()
        let marked = try api.curl(
            "PATCH", slicePath, token: admin, contentType: "application/merge-patch+json",
            body: #"{"endpoints":[{"addresses":["10.244.0.2"],"conditions":{"ready":false,"serving":false}}]}"#)
        XCTAssertEqual(marked.code, "200", marked.body)
        var seen: [String: String] = [:]
        try eventually(15, "not ready once kube-dns has no ready endpoint") {
            guard try node.endpoint("/readyz").code == "503" else { return false }
            seen = try failing()
            return seen["dns-cluster"] != nil
        }
        let after = Date().timeIntervalSince(killed)
        XCTAssertTrue(seen["dns-cluster"]?.contains("nothing listens for DNS there") ?? false, "\(seen)")
        XCTAssertTrue(
            text(log).contains("reason=\"kube-dns has no ready endpoints (EndpointSlice watch)\"")
                || text(log).contains("reason=kube-dns has no ready endpoints (EndpointSlice watch)"),
            "the reconcile was not the watch's: \(text(log))")
        XCTAssertLessThan(after, 8, "seen \(after) s after the kill, not at once (the interval is 10 s)")
        print("kube-dns killed and marked not ready -> not ready in \(after) s")
        // The runtime's own word agrees: containerd cannot pull while kube-dns is down.
        let down = try node.pull(node.testImage)
        XCTAssertFalse(down.ok, "the agent said not ready and the pull worked")

        // Back: ready again, at once too.
        XCTAssertEqual(try node.control(["start", "kube-dns"]), 0)
        let back = try api.curl(
            "PATCH", slicePath, token: admin, contentType: "application/merge-patch+json",
            body: #"{"endpoints":[{"addresses":["10.244.0.2"],"conditions":{"ready":true,"serving":true}}]}"#)
        XCTAssertEqual(back.code, "200", back.body)
        try eventually(15, "ready again") { try node.endpoint("/readyz").code == "200" }
        let up = try node.pull(node.testImage)
        XCTAssertTrue(up.ok, "the agent said ready and the pull failed: \(up.error)")
        XCTAssertFalse(text(log).contains(admin), "a token in the log")
        XCTAssertFalse(text(log).contains(try String(contentsOfFile: agentToken, encoding: .utf8)), "a token in the log")
    }

    /// Without the Role (no endpointslices rule: the API refuses with 403), the agent says why
    /// in its log, asks kube-dns its one question at every light reconcile, and a kube-dns kill
    /// is seen within an interval as before. Broken (the word taken without a live watch), the
    /// light reconciles ask nothing and the kill waits for the full proof.
    func testWithoutTheRBACTheLightReconcileAsksKubeDNSAsBefore() throws {
        let (manifest, cut, said) = try APIDouble.manifest(without: "endpointslices", in: node)
        XCTAssertEqual(cut.trimmingCharacters(in: .whitespacesAndNewlines), "1", said)
        let (agentToken, _) = try node.tokenFile("serviceaccount")
        let api = try APIDouble(node, manifest: manifest, tokens: [agentToken: APIDouble.serviceAccount])
        defer { api.stop() }
        let (agent, log) = try start(api, token: agentToken, interval: 2)
        defer {
            agent.terminate()
            agent.waitUntilExit()
        }
        try eventually(30, "ready, the watch refused") {
            try node.endpoint("/readyz").code == "200" && text(log).contains("refused (403")
        }
        XCTAssertTrue(text(log).contains("the agent needs get on that Service and list, watch on endpointslices in kube-system"), text(log))
        let lights = count("proof=light", in: log)
        let asked = questions()
        try eventually(30, "two light reconciles") { count("proof=light", in: log) >= lights + 2 }
        XCTAssertGreaterThanOrEqual(questions(), asked + 2, "each light reconcile asks kube-dns one question")

        XCTAssertEqual(try node.control(["stop", "kube-dns"]), 0)
        let killed = Date()
        var seen: [String: String] = [:]
        try eventually(15, "not ready once kube-dns stopped") {
            guard try node.endpoint("/readyz").code == "503" else { return false }
            seen = try failing()
            return seen["dns-cluster"] != nil
        }
        XCTAssertTrue(seen["dns-cluster"]?.contains("nothing listens for DNS there") ?? false, "\(seen)")
        XCTAssertLessThan(Date().timeIntervalSince(killed), 6, "within an interval (2 s) and the proof")
        XCTAssertEqual(try node.control(["start", "kube-dns"]), 0)
        try eventually(15, "ready again") { try node.endpoint("/readyz").code == "200" }
    }
}
