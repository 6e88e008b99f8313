import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// A sandbox node (Tests/nodes/sandbox-node) of the test's own, in a folder of its own: the real
/// systemd-resolved, D-Bus, dnsmasq as kube-dns, the distribution registry with TLS, and a host
/// root whose trust store Debian's update-ca-certificates built.
final class SandboxNode {
    let folder: String
    let vars: [String: String]
    let script = packageRoot.appendingPathComponent("Tests/nodes/sandbox-node").path

    var hostRoot: String { vars["HOST_ROOT"]! }
    var caFile: String { vars["CA_FILE"]! }
    var registry: String { vars["REGISTRY"]! }
    var clusterDNS: String { vars["CLUSTER_DNS"]! }
    var resolvectl: [String] { vars["RESOLVECTL"]!.split(separator: " ").map(String.init) }

    init() throws {
        try requireRoot()
        folder = NSTemporaryDirectory() + "node-agent-it-\(UUID().uuidString.prefix(8))"
        vars = try startNode(script: script, folderVariable: "NODE_AGENT_SANDBOX", folder: folder)
    }

    /// Runs a sandbox-node subcommand (e.g. `stop resolved`) for this node.
    @discardableResult
    func control(_ arguments: [String]) throws -> Int32 {
        try sh(script, arguments, environment: scriptEnvironment).status
    }

    /// This process's environment with the node's folder, for Tests/nodes/sandbox-node.
    var scriptEnvironment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["NODE_AGENT_SANDBOX"] = folder
        return env
    }

    /// Runs a sandbox-node subcommand and returns what it printed; throws when it fails.
    func controlOutput(_ arguments: [String]) throws -> String {
        let r = try sh(script, arguments, environment: scriptEnvironment)
        guard r.status == 0 else { throw AgentError(.io, "sandbox-node \(arguments.joined(separator: " ")): \(r.stderr)") }
        return r.stdout
    }

    func down() {
        _ = try? sh(script, ["down"], environment: scriptEnvironment)
    }

    /// Runs a command inside the node's namespaces, with the default trust (no SSL_CERT_FILE).
    @discardableResult
    func exec(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        var env = scriptEnvironment
        for k in ["SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE"] { env[k] = nil }
        return try sh(script, ["exec"] + arguments, environment: env)
    }

    /// Runs the built node-agent inside the node, as a DaemonSet pod runs it against /host.
    @discardableResult
    func agent(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try exec([Self.binary] + arguments)
    }

    func bootstrapArguments(ca: String? = nil, clusterDNS: String? = nil, extra: [String] = []) -> [String] {
        [
            "bootstrap", "--host-root", hostRoot, "--ca", ca ?? caFile, "--registry", registry,
            "--cluster-dns", clusterDNS ?? self.clusterDNS,
        ] + extra
    }

    /// Everything of the host root the agent may change, as files: its etc/ and var/, and the
    /// folder mounted at usr/local/share/ca-certificates inside the node.
    func snapshot() -> FileTree {
        var tree = FileTree(hostRoot, excluding: ["usr", "dev", "proc", "run", "tmp"])
        for (k, v) in FileTree(folder + "/local-ca").entries { tree.entries["usr/local/share/ca-certificates/" + k] = v }
        return tree
    }

    /// The test image in the node's registry, named as image references name it (`host:443/...`).
    var testImage: String { vars["TEST_IMAGE"]! }

    /// The runtime's own answer, the ground truth for "ready": the node's containerd pulls
    /// `reference` through its CRI socket as kubelet asks it to, with the pull secret's credentials.
    /// `error` is containerd's own message when it fails.
    func pull(_ reference: String) throws -> (ok: Bool, error: String) {
        let r = try control(["pull", reference])
        guard r == 0 || r == 1 else { throw AgentError(.io, "sandbox-node pull \(reference): exit \(r), not a pull result") }
        return (r == 0, log("last-pull.err"))
    }

    /// `node-agent probe` for this node: the agent's verdict, changing nothing.
    func probe(_ extra: [String] = []) throws -> JSONReport {
        let r = try agent(
            [
                "probe", "--host-root", hostRoot, "--registry", registry, "--cluster-dns", clusterDNS,
                "--output", "json", "--timeout", "2",
            ] + extra)
        guard r.status == 0 || r.status == 1 else { throw AgentError(.io, "probe exited \(r.status): \(r.stderr)") }
        return try JSONReport.decode(r.stdout)
    }

    /// Starts `node-agent run` in the node (interval 2 s, watch 0.3 s, endpoint on 127.0.0.1:9808),
    /// its output in a log file of the node's folder.
    func startRun(_ extra: [String], environment: [String: String] = [:]) throws -> (Process, String) {
        let log = folder + "/run.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: script)
        process.arguments =
            [
                "exec", Self.binary, "run", "--host-root", hostRoot, "--registry", registry,
                "--interval", "2", "--watch-interval", "0.3", "--listen", "127.0.0.1:9808",
            ] + extra
        process.environment = scriptEnvironment.merging(environment) { $1 }
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return (process, log)
    }

    /// An HTTP GET of the health endpoint of `startRun`'s agent from inside the node, with curl.
    func endpoint(_ path: String, _ extra: [String] = []) throws -> (code: String, body: String) {
        try healthEndpoint(path, extra, exec: exec)
    }

    /// The PID of the node's containerd.
    func containerdPID() throws -> String {
        try String(contentsOfFile: folder + "/pids/containerd", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func log(_ name: String) -> String {
        (try? String(contentsOfFile: folder + "/logs/\(name)", encoding: .utf8)) ?? ""
    }

    /// A token file of the test's own in the node's folder, as kubelet projects a service
    /// account token: its path and the token (for the test to look for in logs).
    func tokenFile(_ name: String) throws -> (path: String, token: String) {
        let token = "token-\(UUID().uuidString)"
        let path = folder + "/\(name).token"
        try token.write(toFile: path, atomically: true, encoding: .utf8)
        return (path, token)
    }

    /// The node-agent binary built next to this test bundle (or NODE_AGENT_BINARY).
    static let binary: String = {
        if let path = ProcessInfo.processInfo.environment["NODE_AGENT_BINARY"] { return path }
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("node-agent").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        return packageRoot.appendingPathComponent(".build/debug/node-agent").path
    }()
}

extension XCTestCase {
    /// Waits up to `seconds` for `condition`.
    func eventually(_ seconds: Double, _ what: String, line: UInt = #line, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return }
            Thread.sleep(forTimeInterval: 0.2)
        }
        XCTFail("not within \(seconds) s: \(what)", line: line)
    }
}

/// Skips the test unless it runs as root: the nodes need namespaces, mounts and chroot.
func requireRoot() throws {
    guard getuid() == 0 else {
        throw XCTSkip("integration tests need root (namespaces, mounts, chroot): run them as root, as scripts/test does")
    }
}

/// Runs `SCRIPT up` with the node's folder in `folderVariable` and returns the variables it
/// prints (`NAME=value`, quotes dropped). A node whose start failed is stopped again, so that
/// nothing outlives it.
/// GET of the agent's health endpoint (127.0.0.1:9808) with curl, run by `exec` in a node's
/// network namespace: the status code and the body.
func healthEndpoint(
    _ path: String, _ extra: [String] = [], exec: ([String]) throws -> (status: Int32, stdout: String, stderr: String)
) throws -> (code: String, body: String) {
    let r = try exec(["curl", "-s", "-m", "5", "-w", "\n%{http_code}"] + extra + ["http://127.0.0.1:9808" + path])
    let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    return (String(lines.last ?? ""), lines.dropLast().joined(separator: "\n"))
}

func startNode(script: String, folderVariable: String, folder: String, extra: [String: String] = [:]) throws -> [String: String] {
    try requireRoot()
    var env = ProcessInfo.processInfo.environment.merging(extra) { $1 }
    env[folderVariable] = folder
    let up = try sh(script, ["up"], environment: env)
    guard up.status == 0 else {
        _ = try? sh(script, ["down"], environment: env)
        throw AgentError(.io, "\(URL(fileURLWithPath: script).lastPathComponent) up failed: \(up.stderr)")
    }
    var vars: [String: String] = [:]
    for line in up.stdout.split(separator: "\n") {
        guard let eq = line.firstIndex(of: "=") else { continue }
        vars[String(line[..<eq])] = String(line[line.index(after: eq)...]).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }
    return vars
}

/// The JSON report of `bootstrap --output json`.
struct JSONReport: Decodable {
    struct Check: Decodable {
        var name: String
        var outcome: String
        var reason: String
        var details: [String: String]
    }

    var ready: Bool
    var changes: [String]
    var notes: [String]
    var checks: [Check]

    enum CodingKeys: String, CodingKey { case ready, changes, notes, checks }

    /// `run`'s /status has no changes or notes of its own.
    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ready = try c.decode(Bool.self, forKey: .ready)
        changes = try c.decodeIfPresent([String].self, forKey: .changes) ?? []
        notes = try c.decodeIfPresent([String].self, forKey: .notes) ?? []
        checks = try c.decode([Check].self, forKey: .checks)
    }

    func check(_ name: String) -> Check? { checks.first { $0.name == name } }

    static func decode(_ text: String) throws -> JSONReport {
        try JSONDecoder().decode(JSONReport.self, from: Data(text.utf8))
    }
}
