import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// Secrets planted where the agent reads them (a proxy's password in containerd's environment,
/// the pull secret's password) reach no output channel: bootstrap's and run's stdout and stderr
/// (the logs), the report JSON, `/status`, `/metrics`, the node condition and the Events the API
/// holds. And the pull secret's credentials reach no token realm the user did not allow: not one
/// on another host (Tests/doubles/token-server, the sandbox's token-registry's realm), not one over
/// plain http (Tests/doubles/bearer-registry-double, whose realm is http:// on the registry's own host).
final class SecretLeakIntegrationTests: XCTestCase {
    var node: SandboxNode!
    let domain = "openfaas.svc.cluster.local"
    let proxySecret = "S3cretPlanted"
    let passwordSecret = "PullS3cretPlanted-7f3a"

    override func setUpWithError() throws {
        node = try SandboxNode()
    }

    override func tearDown() {
        node?.down()
    }

    func testPlantedSecretsReachNoOutputAndNoRealmThatIsNotAllowed() throws {
        let user = try XCTUnwrap(node.vars["REGISTRY_USER"])
        let auth = Data("\(user):\(passwordSecret)".utf8).base64EncodedString()
        let planted = [proxySecret, passwordSecret, auth, "user:\(proxySecret)"]
        // containerd pulls through a proxy with credentials (nothing listens there: not ready).
        try "HTTPS_PROXY=http://user:\(proxySecret)@127.0.0.29:3128\n".write(
            toFile: node.folder + "/conf/containerd.env", atomically: true, encoding: .utf8)
        XCTAssertEqual(try node.control(["restart", "containerd"]), 0)
        let tokenRegistry = "token-registry.\(domain)"
        let realmDouble = "registry-service.\(domain):5443"
        let pullSecret = node.folder + "/pull-secret.json"
        try #"{"auths":{"\#(tokenRegistry)":{"auth":"\#(auth)"},"\#(realmDouble)":{"auth":"\#(auth)"}}}"#
            .write(toFile: pullSecret, atomically: true, encoding: .utf8)
        let tokenLogBefore = node.log("token.log").count
        var outputs: [(channel: String, text: String)] = []

        // bootstrap, text and JSON, against the registry whose realm is on another host.
        let common = [
            "--host-root", node.hostRoot, "--ca", node.caFile, "--registry", tokenRegistry, "--cluster-dns", node.clusterDNS,
            "--registry-auth", pullSecret, "--timeout", "2",
        ]
        let text = try node.agent(["bootstrap"] + common)
        outputs += [("bootstrap stdout", text.stdout), ("bootstrap stderr", text.stderr)]
        let json = try node.agent(["bootstrap"] + common + ["--output", "json"])
        outputs += [("bootstrap --output json", json.stdout), ("bootstrap --output json stderr", json.stderr)]
        let report = try JSONReport.decode(json.stdout)
        XCTAssertFalse(report.ready)
        // The proxy is named (host and port), its credentials are not.
        let proxyCheck = try XCTUnwrap(report.check("runtime-proxy"), json.stdout)
        XCTAssertEqual(proxyCheck.outcome, "fail", proxyCheck.reason)
        XCTAssertTrue(proxyCheck.reason.contains("127.0.0.29:3128"), proxyCheck.reason)
        let registryAPI = try XCTUnwrap(report.check("registry-api"), json.stdout)
        XCTAssertEqual(registryAPI.outcome, "fail", registryAPI.reason)
        XCTAssertTrue(
            registryAPI.reason.contains("token.\(domain)") && registryAPI.reason.contains("--token-realm-hosts"),
            "the refusal names the realm's host and the option that allows it: \(registryAPI.reason)")

        // run, publishing to the API double, with its endpoint.
        let tokenPath = node.folder + "/serviceaccount.token"
        try "token-\(UUID().uuidString)".write(toFile: tokenPath, atomically: true, encoding: .utf8)
        let api = try APIDouble(node, tokens: [tokenPath: APIDouble.serviceAccount])
        defer { api.stop() }
        let runLog = node.folder + "/secret-run.log"
        FileManager.default.createFile(atPath: runLog, contents: nil)
        let agent = try node.background(
            [
                SandboxNode.binary, "run", "--host-root", node.hostRoot, "--registry", tokenRegistry, "--ca", node.caFile,
                "--registry-auth", pullSecret, "--interval", "1", "--watch-interval", "0.2", "--timeout", "1",
                "--listen", "127.0.0.1:9808", "--node-name", "node-1", "--kube-api", api.url, "--kube-token-file", tokenPath,
                "--kube-ca-file", node.caFile, "--condition-heartbeat", "600",
            ], output: runLog)
        defer {
            if agent.isRunning {
                agent.terminate()
                agent.waitUntilExit()
            }
        }
        try eventually(30, "the condition and an Event in the API double") {
            (try? api.condition("RegistryPullReady")) != nil && ((try? api.events().count) ?? 0) > 0
        }
        Thread.sleep(forTimeInterval: 2.5)  // a few reconciles more: their logs and Events too
        let status = try node.endpoint("/status")
        XCTAssertEqual(status.code, "200", status.body)
        let metrics = try node.endpoint("/metrics")
        XCTAssertEqual(metrics.code, "200", metrics.body)
        outputs += [("/status", status.body), ("/metrics", metrics.body)]
        outputs.append(
            (
                "the node in the API double",
                String(decoding: try JSONSerialization.data(withJSONObject: try api.nodeObject()), as: UTF8.self)
            ))
        outputs.append(
            ("the Events in the API double", String(decoding: try JSONSerialization.data(withJSONObject: try api.events()), as: UTF8.self)))
        agent.terminate()
        agent.waitUntilExit()
        outputs.append(("run's log", (try? String(contentsOfFile: runLog, encoding: .utf8)) ?? ""))
        let condition = try api.condition("RegistryPullReady") ?? [:]
        XCTAssertTrue(condition["message"]?.contains("127.0.0.29:3128") == true, "the condition still names the proxy: \(condition)")

        assertNoSecret(planted, in: outputs)
        // Nothing Basic at a realm that is not allowed (the requests before the test excluded:
        // the sandbox's own start checks the token service with its credentials).
        let tokenRequests = String(node.log("token.log").dropFirst(tokenLogBefore))
        XCTAssertFalse(tokenRequests.contains("authorization=Basic"), "token.\(domain) got credentials:\n\(tokenRequests)")
        outputs = []

        // A registry whose realm is plain http on its own host: the double serves both.
        let doubleLog = node.folder + "/bearer-double.log"
        FileManager.default.createFile(atPath: doubleLog, contents: nil)
        let pki = node.folder + "/pki"
        let double = try node.background(
            [
                "python3", packageRoot.appendingPathComponent("Tests/doubles/bearer-registry-double").path,
                "--listen", "127.0.0.20:5443", "--cert", pki + "/registry.crt", "--key", pki + "/registry.key",
                "--realm", "http://registry-service.\(domain):8080/token", "--realm-listen", "127.0.0.20:8080",
                "--credentials", "\(user):\(passwordSecret)",
            ], output: doubleLog)
        defer {
            double.terminate()
            double.waitUntilExit()
        }
        try eventually(10, "the bearer double listens") {
            ((try? String(contentsOfFile: doubleLog, encoding: .utf8)) ?? "").contains("listening")
        }
        let plain = try node.agent(
            [
                "probe", "--host-root", node.hostRoot, "--registry", realmDouble, "--cluster-dns", node.clusterDNS,
                "--registry-auth", pullSecret, "--output", "json", "--timeout", "2", "--runtime-pull", "off",
                // Even allowed by name, a plain-http realm gets no credentials.
                "--token-realm-hosts", "registry-service.\(domain)",
            ])
        outputs += [("probe (http realm) stdout", plain.stdout), ("probe (http realm) stderr", plain.stderr)]
        assertNoSecret(planted, in: outputs)
        let plainAPI = try XCTUnwrap(try JSONReport.decode(plain.stdout).check("registry-api"), plain.stdout + plain.stderr)
        XCTAssertEqual(plainAPI.outcome, "fail", plainAPI.reason)
        XCTAssertTrue(plainAPI.reason.contains("https"), "the refusal says why (not https): \(plainAPI.reason)")

        let realmRequests = ((try? String(contentsOfFile: doubleLog, encoding: .utf8)) ?? "").split(separator: "\n").filter {
            $0.hasPrefix("realm ")
        }
        XCTAssertFalse(realmRequests.contains { !$0.hasSuffix("authorization=none") }, "the http realm got credentials: \(realmRequests)")
        let registryRequests = ((try? String(contentsOfFile: doubleLog, encoding: .utf8)) ?? "").split(separator: "\n").filter {
            $0.hasPrefix("registry ")
        }
        XCTAssertFalse(registryRequests.isEmpty, "the probe asked the double's registry")
    }

    func assertNoSecret(_ planted: [String], in outputs: [(channel: String, text: String)], line: UInt = #line) {
        for (channel, text) in outputs {
            XCTAssertFalse(text.isEmpty && channel.contains("stdout"), "\(channel) is empty", line: line)
            for secret in planted where text.contains(secret) {
                XCTFail("\(channel) holds the planted secret \(secret):\n\(text)", line: line)
            }
        }
    }
}
