import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// Tests/doubles/api-double (a test double of the Kubernetes API server: bearer tokens, RBAC from a
/// manifest, its ValidatingAdmissionPolicies evaluated with cel-python on every write (the agent's
/// token names node-1, as a kubelet-projected token names the pod's node), one Node patched by
/// kubectl's own strategic/merge/JSON patch code, core/v1 Events created and patched as the API
/// server takes them; and what kubectl needs for the README's quick start: discovery, a store of
/// the install's kinds, watches, tables: QuickStartIntegrationTests) in a sandbox
/// node's network namespace, on 127.0.0.20:PORT with the registry's certificate, which the
/// node's CA file trusts. It holds kubeadm's kube-dns Service (clusterIP: the node's cluster DNS,
/// the dnsmasq double) and its EndpointSlice, one ready endpoint, as a cluster does.
final class APIDouble {
    static let serviceAccount = "system:serviceaccount:node-agent:node-agent"
    static let manifest = packageRoot.appendingPathComponent("daemonset.yaml").path
    /// daemonset.yaml's startup taint (its ConfigMap's, and its policy's): the double's node-1
    /// joins with it.
    static let startupTaint = "startup-taint.cluster-autoscaler.kubernetes.io/registry-not-ready"

    /// daemonset.yaml with the rules of its ClusterRole and Role (Events) on `resource` cut out,
    /// written into the node's folder; the number of rules cut and what the cutting said, for the
    /// test to check.
    static func manifest(without resource: String, in node: SandboxNode) throws -> (path: String, cut: String, stderr: String) {
        let path = node.folder + "/no-\(resource.replacingOccurrences(of: "/", with: "-"))-rule.yaml"
        let cut = try node.exec([
            "python3", "-c",
            """
            import sys, yaml
            docs = list(yaml.safe_load_all(open(sys.argv[1])))
            cut = 0
            for d in docs:
                if d and d.get("kind") in ("ClusterRole", "Role") and d["metadata"]["name"].startswith("node-agent"):
                    kept = [r for r in d["rules"] if sys.argv[3] not in r.get("resources", [])]
                    cut += len(d["rules"]) - len(kept)
                    d["rules"] = kept
            yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
            print(cut)
            """, manifest, path, resource,
        ])
        return (path, cut.stdout, cut.stderr)
    }

    let node: SandboxNode
    let process: Process
    let url: String
    let log: String
    let state: String
    let eventsFile: String
    let errors: String

    /// Starts the double for node `nodeName` with the RBAC of `manifest`; each token file
    /// stands for its identity.
    init(
        _ node: SandboxNode, manifest: String = APIDouble.manifest, tokens: [String: String], port: Int = 6443,
        nodeName: String = "node-1", extra: [String] = []
    ) throws {
        self.node = node
        url = "https://127.0.0.20:\(port)"
        let base = node.folder + "/api-\(port)"
        log = base + ".log"
        state = base + ".node.json"
        eventsFile = base + ".events.json"
        errors = base + ".err"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        try? FileManager.default.removeItem(atPath: state)
        try? FileManager.default.removeItem(atPath: eventsFile)
        let pki = node.folder + "/pki"
        process = try node.background(
            [
                "python3", packageRoot.appendingPathComponent("Tests/doubles/api-double").path,
                "--listen", "127.0.0.20:\(port)", "--cert", pki + "/registry.crt", "--key", pki + "/registry.key",
                "--manifest", manifest, "--node", nodeName, "--log", log, "--state", state, "--events", eventsFile,
                "--kube-dns", node.clusterDNS,
            ]
                + tokens.sorted { $0.key < $1.key }.flatMap { ["--token", "\($0.key)=\($0.value)"] } + extra,
            output: errors)
        let deadline = Date().addingTimeInterval(15)
        while !FileManager.default.fileExists(atPath: state) {
            guard process.isRunning, Date() < deadline else {
                stop()
                throw AgentError(.io, "api-double did not start: \(text(errors))")
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    /// Every request so far, as the double logged it.
    var requests: [[String: Any]] {
        text(log).split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// The Node as it is now in the double.
    func nodeObject() throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: state))) as? [String: Any])
    }

    /// Every Event the double holds, in the order created.
    func events() throws -> [[String: Any]] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: eventsFile))) as? [[String: Any]])
    }

    /// The Events with `reason`.
    func events(_ reason: String) throws -> [[String: Any]] {
        try events().filter { $0["reason"] as? String == reason }
    }

    /// The Node's conditions and taints, as they are now.
    func conditions() throws -> [[String: Any]] {
        ((try nodeObject())["status"] as? [String: Any])?["conditions"] as? [[String: Any]] ?? []
    }

    func taints() throws -> [[String: Any]] {
        ((try nodeObject())["spec"] as? [String: Any])?["taints"] as? [[String: Any]] ?? []
    }

    /// The one condition of `type` (nil when the node has none; a failure when it has several).
    func condition(_ type: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: String]? {
        let found = try conditions().filter { $0["type"] as? String == type }
        XCTAssertLessThanOrEqual(found.count, 1, "one \(type) condition, merged by type: \(found)", file: file, line: line)
        return found.first?.compactMapValues { $0 as? String }
    }

    /// curl from inside the node: the raw status line's code and body of one request.
    func curl(_ method: String, _ path: String, token: String?, contentType: String? = nil, body: String? = nil) throws -> (
        code: String, body: String
    ) {
        var arguments = ["curl", "-s", "-m", "10", "--cacert", node.caFile, "-X", method, "-w", "\n%{http_code}"]
        if let token { arguments += ["-H", "Authorization: Bearer " + token] }
        if let contentType { arguments += ["-H", "Content-Type: " + contentType] }
        if let body { arguments += ["--data-binary", body] }
        let r = try node.exec(arguments + [url + path])
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (String(lines.last ?? ""), lines.dropLast().joined(separator: "\n"))
    }

    private func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
}

extension SandboxNode {
    /// `node-agent run` against Tests/doubles/api-double, publishing to node-1 of that API with the
    /// token in `tokenFile`; its output in the log file `log`. Reconciles every second.
    func startReporting(_ api: APIDouble, tokenFile: String, heartbeat: Int, log: String, ca: String? = nil) throws -> Process {
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        return try background(
            [
                SandboxNode.binary, "run", "--host-root", hostRoot, "--registry", registry, "--ca", ca ?? caFile,
                "--interval", "1", "--watch-interval", "0.2", "--timeout", "1", "--listen", "off", "--node-name", "node-1",
                "--kube-api", api.url, "--kube-token-file", tokenFile, "--kube-ca-file", caFile,
                "--startup-taint", APIDouble.startupTaint, "--condition-heartbeat", "\(heartbeat)",
            ], output: log)
    }

    /// Starts a command inside the node's namespaces in the background, its output to `output`.
    func background(_ arguments: [String], output: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: script)
        p.arguments = ["exec"] + arguments
        p.environment = scriptEnvironment
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        handle.seekToEndOfFile()
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return p
    }
}
