import Foundation
import HostSystem
import TestSupport
import TrustStore
import Vocabulary
import XCTest

/// `node-agent run` with its CA from ClusterTrustBundles (issue #29 item 7): the built agent on a
/// sandbox node lists the bundles of Tests/doubles/api-double (certificates.k8s.io served as v1beta1,
/// as Kubernetes 1.33-1.36 serves it with the feature on; v1 answers 404), with daemonset.yaml's
/// RBAC, and the node's containerd pulls through the CA they hold. The bundles are written by an
/// administrator's token through the double's API (validated and admitted as the API server
/// does), as a signer's controller or trust-manager writes them.
final class ClusterTrustBundleIntegrationTests: XCTestCase {
    var node: SandboxNode!
    let signer = "example.com/registry-ca"

    override func setUpWithError() throws { node = try SandboxNode() }
    override func tearDown() { node?.down() }

    func pem(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    /// A bundle as JSON, for POST (new) or PUT (the stored one's resourceVersion).
    func bundle(_ name: String, signer: String? = nil, labels: [String: String], pem: String, resourceVersion: String? = nil) throws
        -> String
    {
        var metadata: [String: Any] = ["name": name, "labels": labels]
        if let resourceVersion { metadata["resourceVersion"] = resourceVersion }
        let object: [String: Any] = [
            "apiVersion": "certificates.k8s.io/v1beta1", "kind": "ClusterTrustBundle", "metadata": metadata,
            "spec": ["signerName": signer ?? self.signer, "trustBundle": pem],
        ]
        return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    /// Writes a bundle as an administrator; returns the stored object's resourceVersion.
    @discardableResult
    func write(_ api: APIDouble, admin: String, _ method: String, _ name: String, _ json: String, line: UInt = #line) throws -> String {
        let path = "/apis/certificates.k8s.io/v1beta1/clustertrustbundles" + (method == "PUT" ? "/" + name : "")
        let r = try api.curl(method, path, token: admin, contentType: "application/json", body: json)
        XCTAssertEqual(r.code, method == "POST" ? "201" : "200", r.body, line: line)
        let stored = try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any]
        return ((stored?["metadata"] as? [String: Any])?["resourceVersion"] as? String) ?? ""
    }

    /// The SHA-256 fingerprints of the CAs the agent installed in the node's OS store.
    func installed() throws -> Set<String> {
        let folder = node.folder + "/local-ca/node-agent"
        var fingerprints = Set<String>()
        for file in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/" + file)))
            for c in try CertificateParser.parse(bytes, source: file) { fingerprints.insert(c.sha256Fingerprint) }
        }
        return fingerprints
    }

    func fingerprints(_ path: String) throws -> Set<String> {
        Set(try CertificateParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))), source: path).map(\.sha256Fingerprint))
    }

    func testTheCAFromClusterTrustBundlesIsInstalledFollowsARotationAndFailsClosed() throws {
        let (agentToken, agentSecret) = try node.tokenFile("agent")
        let (adminToken, adminSecret) = try node.tokenFile("admin")
        let api = try APIDouble(node, tokens: [agentToken: APIDouble.serviceAccount, adminToken: "admin,system:masters"])
        defer { api.stop() }
        let otherCA = try CertFixtures.path("other-ca.crt")
        // The registry's bundle, and two the selection must leave out: the same signer with
        // other labels, and the same labels under another signer.
        let current = "example.com:registry-ca:current"
        var version = try write(
            api, admin: adminSecret, "POST", current, try bundle(current, labels: ["app": "registry-ca"], pem: try pem(node.caFile)))
        try write(
            api, admin: adminSecret, "POST", "example.com:registry-ca:staging",
            try bundle("example.com:registry-ca:staging", labels: ["app": "staging-ca"], pem: try pem(otherCA)))
        try write(
            api, admin: adminSecret, "POST", "other.example:signer:x",
            try bundle("other.example:signer:x", signer: "other.example/signer", labels: ["app": "registry-ca"], pem: try pem(otherCA)))

        let (process, log) = try node.startRun([
            "--ca-cluster-trust-bundle-signer", signer, "--ca-cluster-trust-bundle-labels", "app=registry-ca",
            "--ca-cluster-trust-bundle-interval", "0.3", "--kube-api", api.url, "--kube-token-file", agentToken,
            "--kube-ca-file", node.caFile, "--node-name", "node-1", "--timeout", "2",
        ])
        defer {
            if process.isRunning {
                process.interrupt()
                process.terminate()
            }
        }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        func condition() throws -> [String: String]? { try api.condition("RegistryPullReady") }

        // Ready with the bundle's CA, and the node's containerd pulls.
        try eventually(15, "first reconcile ready") { logText().contains("ready=true reason=start") }
        XCTAssertEqual(try installed(), try fingerprints(node.caFile), "the selected bundle's CA, and only it")
        let first = try node.pull(node.testImage)
        XCTAssertTrue(first.ok, first.error)
        try eventually(5, "condition True") { try condition()?["status"] == "True" }

        // What the agent asked: v1 (404, not served), then v1beta1, with the signer as a field
        // selector and the labels as a label selector, as its service account.
        let lists = api.requests.filter { $0["verb"] as? String == "list" && $0["resource"] as? String == "clustertrustbundles" }
        let query = "?fieldSelector=spec.signerName%3Dexample.com/registry-ca&labelSelector=app%3Dregistry-ca"
        XCTAssertEqual(lists.first?["path"] as? String, "/apis/certificates.k8s.io/v1/clustertrustbundles" + query)
        XCTAssertEqual(lists.first?["code"] as? Int, 404)
        XCTAssertEqual(lists.dropFirst().first?["path"] as? String, "/apis/certificates.k8s.io/v1beta1/clustertrustbundles" + query)
        XCTAssertTrue(lists.dropFirst().allSatisfy { $0["code"] as? Int == 200 && ($0["path"] as? String ?? "").contains("/v1beta1/") })
        XCTAssertTrue(lists.allSatisfy { $0["identity"] as? String == APIDouble.serviceAccount })

        // Rotation: the registry gets a certificate from a new CA; the node refuses it until the
        // bundle holds the new CA, which the agent installs within a few ticks, and the pull works.
        let newCA = try XCTUnwrap(try node.controlOutput(["rotate-ca"]).split(separator: "\n").last.map(String.init))
        let refused = try node.pull(node.testImage)
        XCTAssertFalse(refused.ok, "the registry's new certificate is not trusted yet")
        version = try write(
            api, admin: adminSecret, "PUT", current,
            try bundle(current, labels: ["app": "registry-ca"], pem: try pem(newCA), resourceVersion: version))
        let updated = Date()
        try eventually(10, "a reconcile for the new bundle") { logText().contains("ready=true reason=the ClusterTrustBundles changed") }
        let pickedUp = Date().timeIntervalSince(updated)
        print("ClusterTrustBundle rotation picked up and the node ready after \(String(format: "%.2f", pickedUp)) s")
        XCTAssertEqual(try installed(), try fingerprints(newCA), "the old CA out, the new one in")
        let rotated = try node.pull(node.testImage)
        XCTAssertTrue(rotated.ok, rotated.error)

        // The selection matches nothing (the bundle relabelled): the reconcile fails with that
        // reason, the node keeps the CA it has (nothing on the host changes) and still pulls, and
        // the condition says why.
        let before = node.snapshot()
        try write(
            api, admin: adminSecret, "PUT", current,
            try bundle(current, labels: ["app": "retired"], pem: try pem(newCA), resourceVersion: version))
        try eventually(10, "a failed reconcile") {
            logText().contains("reconcile failed") && logText().contains("no ClusterTrustBundle matches")
        }
        XCTAssertTrue(
            logText().contains(
                "lists no ClusterTrustBundles of signer example.com/registry-ca with labels app=registry-ca; the CA installed before stays"),
            logText())
        try eventually(5, "condition False") { try condition()?["status"] == "False" }
        XCTAssertEqual(try condition()?["reason"], "AgentError")
        let said = try condition() ?? [:]
        XCTAssertTrue(said["message"]?.contains("no ClusterTrustBundle matches") ?? false, "\(said)")
        Thread.sleep(forTimeInterval: 2.5)  // an interval's reconcile too
        XCTAssertEqual(node.snapshot().difference(from: before), [], "the host changed while the selection matched nothing")
        XCTAssertEqual(try installed(), try fingerprints(newCA))
        let kept = try node.pull(node.testImage)
        XCTAssertTrue(kept.ok, kept.error)

        // The secrets stay out of the log.
        XCTAssertFalse(logText().contains(agentSecret), "the agent's token in its log")
        XCTAssertFalse(logText().contains(adminSecret))
        process.terminate()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, logText())
    }

    /// The API's refusals reach the log and the condition, and change nothing on the node: RBAC
    /// without clustertrustbundles (403), a label selector the API server cannot parse (400), an
    /// API server that serves no version of the resource (404 for each).
    func testTheAPIsRefusalsFailClosedWithTheirReason() throws {
        let (agentToken, _) = try node.tokenFile("agent")
        let (adminToken, adminSecret) = try node.tokenFile("admin")
        let before = node.snapshot()
        func run(_ api: APIDouble, labels: String, expect phrases: [String], line: UInt = #line) throws {
            let (process, log) = try node.startRun([
                "--ca-cluster-trust-bundle-signer", signer, "--ca-cluster-trust-bundle-labels", labels,
                "--ca-cluster-trust-bundle-interval", "0.3", "--kube-api", api.url, "--kube-token-file", agentToken,
                "--kube-ca-file", node.caFile, "--node-name", "node-1", "--timeout", "2",
            ])
            func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
            defer {
                process.terminate()
                process.waitUntilExit()
            }
            try eventually(10, "a failed reconcile", line: line) { logText().contains("reconcile failed") }
            for phrase in phrases { XCTAssertTrue(logText().contains(phrase), "\(phrase) in\n\(logText())", line: line) }
            XCTAssertFalse(logText().contains("ready=true"), line: line)
            // The log line comes before the condition's patch: wait for the condition, do not race it.
            try eventually(5, "condition False", line: line) { try api.condition("RegistryPullReady")?["status"] == "False" }
        }

        let (manifest, cut, said) = try APIDouble.manifest(without: "clustertrustbundles", in: node)
        XCTAssertEqual(cut.trimmingCharacters(in: .whitespacesAndNewlines), "1", said)
        let noRBAC = try APIDouble(
            node, manifest: manifest, tokens: [agentToken: APIDouble.serviceAccount, adminToken: "admin,system:masters"])
        try write(
            noRBAC, admin: adminSecret, "POST", "example.com:registry-ca:current",
            try bundle("example.com:registry-ca:current", labels: ["app": "registry-ca"], pem: try pem(node.caFile)))
        try run(
            noRBAC, labels: "app=registry-ca",
            expect: [
                "HTTP 403: Forbidden: clustertrustbundles.certificates.k8s.io is forbidden: User \"system:serviceaccount:node-agent:node-agent\" cannot list resource \"clustertrustbundles\"",
                "needs list on clustertrustbundles in certificates.k8s.io",
            ])
        noRBAC.stop()

        let full = try APIDouble(node, tokens: [agentToken: APIDouble.serviceAccount], port: 6444)
        try run(full, labels: "app==registry-ca==x", expect: ["HTTP 400: BadRequest", "--ca-cluster-trust-bundle-labels"])
        full.stop()

        let none = try APIDouble(
            node, tokens: [agentToken: APIDouble.serviceAccount], port: 6445, extra: ["--cluster-trust-bundle-versions", ""])
        try run(none, labels: "app=registry-ca", expect: ["serves no ClusterTrustBundles", "--runtime-config=certificates.k8s.io/v1beta1"])
        none.stop()
        XCTAssertEqual(node.snapshot().difference(from: before), [], "the host changed with no CA to install")
    }
}
