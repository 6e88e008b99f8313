import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// daemonset.yaml run as kubelet runs it: its pod started from the image that scripts/build-image
/// built, through the sandbox node's containerd over the CRI (Tests/doubles/kubelet-pod, a kubelet
/// double for one pod: the manifest itself is read, its volumes laid out as kubelet lays them
/// out, its securityContext passed as written). The node's own pull is the judge.
///
/// scripts/test builds the image and names its archive in NODE_AGENT_IMAGE_ARCHIVE.
final class DaemonSetPodIntegrationTests: XCTestCase {
    var node: SandboxNode!
    var api: APIDouble?
    var pods: [KubeletPod] = []

    override func setUpWithError() throws {
        guard ProcessInfo.processInfo.environment["NODE_AGENT_IMAGE_ARCHIVE"] != nil else {
            throw XCTSkip("NODE_AGENT_IMAGE_ARCHIVE is unset (scripts/test builds the image with scripts/build-image)")
        }
        node = try SandboxNode()
    }

    override func tearDown() {
        for pod in pods { _ = try? pod.stop() }
        api?.stop()
        node?.down()
    }

    /// The pod on this node, with the API double (the manifest's RBAC) as its API server and a
    /// service account token that the double knows.
    func startPod(without capabilities: [String] = []) throws -> KubeletPod {
        let token = node.folder + "/sa-token"
        try "pod-token-\(UUID().uuidString.prefix(8))".write(toFile: token, atomically: true, encoding: .utf8)
        api = try APIDouble(node, tokens: [token: APIDouble.serviceAccount])
        let pod = try KubeletPod.start(
            on: node, image: try KubeletPod.importImage(into: node), api: api!, token: token, without: capabilities)
        pods.append(pod)
        return pod
    }

    /// The whole life of the pod on a new node: it comes up, the node can pull (the agent said so
    /// and containerd does it), the Secret's CA is rotated by kubelet's `..data` swap, and a stop
    /// ends the container with status 0 well inside the grace period.
    func testThePodComesUpTheNodePullsTheSecretRotatesAndAStopEndsItCleanly() throws {
        XCTAssertFalse(try node.pull(node.testImage).ok, "the node pulls before the agent ran")
        let pod = try startPod()
        try eventually(30, "the pod's readiness probe passes") { try pod.probe("readiness") }
        try eventually(30, "the agent reports the node ready") { try node.endpoint("/readyz").code == "200" }
        let pulled = try node.pull(node.testImage)
        XCTAssertTrue(pulled.ok, pulled.error)
        XCTAssertTrue(try pod.probe("liveness"))
        // The agent runs as the manifest says: exactly its capabilities, no_new_privs, seccomp.
        let status = try pod.processStatus()
        XCTAssertEqual(status["CapEff"], String(format: "%016x", (1 << 12) | (1 << 18)), "NET_ADMIN and SYS_CHROOT only: \(status)")
        XCTAssertEqual(status["CapBnd"], status["CapEff"])
        XCTAssertEqual(status["NoNewPrivs"], "1")
        XCTAssertEqual(status["Seccomp"], "2", "seccomp RuntimeDefault (filter mode)")
        // The node as the API server has it: the condition, and the startup taint gone.
        try eventually(10, "the node's condition is published") { try api!.condition("RegistryPullReady")?["status"] == "True" }
        let taints = try api!.taints()
        XCTAssertFalse(taints.contains { $0["key"] as? String == APIDouble.startupTaint }, "\(taints)")

        // A registry outage: the node cannot pull and says so; the pod stays ready (its readiness
        // is the agent's health, so that the DaemonSet can still roll out a fix).
        XCTAssertEqual(try node.control(["stop", "registry"]), 0)
        try eventually(20, "the node's condition turns False") { try api!.condition("RegistryPullReady")?["status"] == "False" }
        XCTAssertEqual(try node.endpoint("/readyz").code, "503")
        XCTAssertTrue(try pod.probe("readiness"), "a registry outage made the agent's pod NotReady")
        XCTAssertFalse(try node.pull(node.testImage).ok)
        XCTAssertEqual(try node.control(["start", "registry"]), 0)
        try eventually(20, "the node's condition turns True again") { try api!.condition("RegistryPullReady")?["status"] == "True" }

        // The registry's CA is replaced; kubelet swaps the Secret volume's ..data to the new one.
        let newCA = try XCTUnwrap(try node.controlOutput(["rotate-ca"]).split(separator: "\n").last.map(String.init))
        XCTAssertTrue(try node.pull(node.testImage).error.contains("x509"), "the old CA still verifies the new certificate")
        let swapped = Date()
        try pod.updateSecret("registry-ca", ["ca.crt": newCA])
        try eventually(20, "the node pulls with the rotated CA") { try node.pull(node.testImage).ok }
        print(
            "CA rotation through the Secret volume: the node pulled \(String(format: "%.1f", Date().timeIntervalSince(swapped))) s after the ..data swap"
        )

        let stopped = try pod.stop()
        XCTAssertEqual(stopped["exit_code"] as? Int, 0, "\(stopped)\n\(pod.log())")
        XCTAssertLessThan(stopped["seconds"] as? Double ?? 99, 10, "the agent did not end on SIGTERM: it waited for SIGKILL")
    }

    /// What the pod cannot see, it does not claim. With the manifest's privileges the agent cannot
    /// read containerd's environment (another process's /proc/PID/environ needs CAP_SYS_PTRACE):
    /// runtime-proxy says it cannot tell, and runtime-pull (containerd's own word) judges. A
    /// proxy in containerd's environment that the agent cannot see still makes the node not
    /// ready, as the real pull fails.
    func testInThePodAProxyTheAgentCannotSeeIsJudgedByTheRuntimesOwnPull() throws {
        try "HTTPS_PROXY=http://127.0.0.99:3128\n".write(toFile: node.folder + "/conf/containerd.env", atomically: true, encoding: .utf8)
        XCTAssertEqual(try node.control(["restart", "containerd"]), 0)
        _ = try startPod()
        try eventually(30, "the agent has judged the node") { (try? node.endpoint("/status").body)?.contains("\"checks\"") == true }
        let status = try node.endpoint("/status").body
        let report = try JSONReport.decode(status)
        XCTAssertEqual(report.check("runtime-proxy")?.outcome, "skip", status)
        XCTAssertTrue(report.check("runtime-proxy")?.reason.contains("cannot tell") == true, status)
        XCTAssertEqual(report.check("runtime-pull")?.outcome, "fail", status)
        XCTAssertEqual(report.check("runtime-pull")?.details["stage"], "proxy", status)
        XCTAssertFalse(report.ready)
        let pulled = try node.pull(node.testImage)
        XCTAssertFalse(pulled.ok)
        XCTAssertTrue(pulled.error.contains("proxyconnect"), pulled.error)
    }

    /// Every capability the manifest adds is one whose absence fails: without it, the pod's agent
    /// cannot make the node pull, says so, and the node's containerd agrees.
    func testEveryCapabilityTheManifestAddsIsNeeded() throws {
        let capabilities = try KubeletPod.addedCapabilities()
        XCTAssertFalse(capabilities.isEmpty)
        for capability in capabilities {
            if node == nil { node = try SandboxNode() }
            if capability == "SYS_CHROOT" {
                // The node's own trust tool runs (chrooted in /host) where --trust-refresh auto
                // cannot stand in for it: a node with a hook, as ca-certificates-java installs.
                let hook = node.hostRoot + "/etc/ca-certificates/update.d/keystore"
                try "#!/bin/sh\nexit 0\n".write(toFile: hook, atomically: true, encoding: .utf8)
                XCTAssertEqual(chmod(hook, 0o755), 0)
            }
            let pod = try startPod(without: [capability])
            // Long enough for a full reconcile (the complete pod is ready within a few seconds).
            // A reconcile that ended: its checks, or the error that stopped it.
            try eventually(20, "the agent without \(capability) has judged the node") {
                guard let body = try? node.endpoint("/status").body else { return false }
                return body.contains("\"checks\"") || body.contains("\"error\"")
            }
            let ready = try node.endpoint("/readyz").code
            let pulled = try node.pull(node.testImage)
            XCTAssertNotEqual(ready, "200", "without \(capability) the agent still made the node ready: drop it from the manifest")
            XCTAssertFalse(pulled.ok, "without \(capability) the node pulls: \(capability) is not needed")
            print(
                "without \(capability): /readyz \(ready); \(pod.log().split(separator: "\n").filter { $0.contains("error") || $0.contains("fail") }.prefix(3).joined(separator: " | "))"
            )
            _ = try pod.stop()
            pods.removeAll()
            api?.stop()
            api = nil
            node.down()
            node = nil
        }
    }
}

/// One pod of daemonset.yaml, run by Tests/doubles/kubelet-pod in the sandbox node.
struct KubeletPod {
    let node: SandboxNode
    let directory: String
    static let script = packageRoot.appendingPathComponent("Tests/doubles/kubelet-pod").path
    static let manifest = packageRoot.appendingPathComponent("daemonset.yaml").path

    /// The image archive imported into the node's containerd (as if pulled before: the agent's
    /// image comes from a registry that is not the cluster's own); its reference.
    static func importImage(into node: SandboxNode) throws -> String {
        let archive = ProcessInfo.processInfo.environment["NODE_AGENT_IMAGE_ARCHIVE"]!
        let output = try node.controlOutput(["import", archive])
        // ctr: "unpacking REF (sha256:…)...done"
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("unpacking ") }),
            let ref = line.split(separator: " ").dropFirst().first
        else {
            throw AgentError(.io, "no image reference in ctr's import output: \(output)")
        }
        return String(ref)
    }

    static func addedCapabilities() throws -> [String] {
        let r = try sh(
            "/usr/bin/env",
            [
                "python3", "-c",
                """
                import sys, yaml
                ds = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "DaemonSet"][0]
                print(" ".join(ds["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"].get("add", [])))
                """, manifest,
            ])
        guard r.status == 0 else { throw AgentError(.io, "reading the manifest's capabilities: \(r.stderr)") }
        return r.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
    }

    static func start(on node: SandboxNode, image: String, api: APIDouble, token: String, without capabilities: [String] = []) throws
        -> KubeletPod
    {
        let directory = node.folder + "/pod-\(UUID().uuidString.prefix(6))"
        var arguments = [
            script, "start", "--manifest", manifest, "--pod-dir", directory, "--image", image,
            "--node-name", "node-1", "--node-root", node.hostRoot, "--secret", "registry-ca/ca.crt=\(node.caFile)",
            "--kube-api", String(api.url.dropFirst("https://".count)), "--kube-ca", node.caFile, "--token", token,
            // One edit of the ConfigMap, as a user's: reconcile every 3 s (default 60) so
            // that an outage shows within the test's patience.
            "--config", "node-agent/NODE_AGENT_INTERVAL=3",
        ]
        for c in capabilities { arguments += ["--without-capability", c] }
        let r = try node.exec(arguments)
        guard r.status == 0 else { throw AgentError(.io, "kubelet-pod start: \(r.stderr)") }
        return KubeletPod(node: node, directory: directory)
    }

    /// The container's probe as kubelet sends it; true on success.
    func probe(_ kind: String) throws -> Bool {
        try node.exec([Self.script, "probe", "--pod-dir", directory, kind]).status == 0
    }

    func updateSecret(_ name: String, _ files: [String: String]) throws {
        let r = try node.exec([Self.script, "update-secret", "--pod-dir", directory, name] + files.map { "\($0.key)=\($0.value)" })
        guard r.status == 0 else { throw AgentError(.io, "kubelet-pod update-secret: \(r.stderr)") }
    }

    /// StopContainer with the grace period: exit code, reason, seconds.
    func stop() throws -> [String: Any] {
        let r = try node.exec([Self.script, "stop", "--pod-dir", directory])
        guard r.status == 0 else { throw AgentError(.io, "kubelet-pod stop: \(r.stderr)") }
        return (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    /// /proc/PID/status of the container's process (`/usr/local/bin/node-agent run`, the image's
    /// entrypoint with the manifest's args: one pod runs at a time), by field.
    func processStatus() throws -> [String: String] {
        let proc = try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap { Int32($0) }
        for pid in proc {
            guard let cmdline = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")),
                String(decoding: cmdline, as: UTF8.self) == "/usr/local/bin/node-agent\0run\0",
                let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            else { continue }
            var fields: [String: String] = [:]
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2 { fields[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces) }
            }
            return fields
        }
        throw AgentError(.io, "no node-agent process of the pod in /proc")
    }

    /// The container's output (CRI log format).
    func log() -> String {
        let state =
            (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/pod.json")))) as? [String: Any]
        return (state?["log"] as? String).flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? ""
    }
}
