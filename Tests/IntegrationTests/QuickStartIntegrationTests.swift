import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// README.md's "Quick start: OpenFaaS", read and run as a user would: every `sh` command of that
/// section, in the README's order, then the uninstall of docs/install-autoscalers.md#uninstall that
/// the README sends the user to, each run by the real `kubectl` with a kubeconfig for an admin
/// (system:masters) against Tests/doubles/api-double, the cluster of one sandbox node (`node-1`) that
/// cannot pull from OpenFaaS' registry. Each command must end as the docs say it does.
///
/// The test plays the cluster's other parts, and nothing the user types: after
/// `kubectl apply -k deploy/overlays/openfaas` it is kubelet, and runs the DaemonSet's pod as the
/// double stores it (its template as applied, its ConfigMap and the Secret `registry-tls` from
/// the double) through the node's containerd with Tests/doubles/kubelet-pod, the agent in it talking to
/// the double with its service account; `kubectl exec` ends in the runtime's ExecSync of the same
/// command in that container (the double serves no exec: kubectl's stream is the one step not run
/// as typed); for the cleanup it is kubelet again (the cleanup pod's init container, run as the
/// pod's container) and the DaemonSet controller (the cleanup DaemonSet's status).
///
/// A command the test does not know fails it: a changed quick start must be run here.
/// scripts/test builds the image and names its archive in NODE_AGENT_IMAGE_ARCHIVE.
final class QuickStartIntegrationTests: XCTestCase {
    var node: SandboxNode!
    var api: APIDouble?
    var pods: [String] = []

    static let readme = packageRoot.appendingPathComponent("README.md").path
    static let uninstallDoc = packageRoot.appendingPathComponent("docs/install-autoscalers.md").path

    override func setUpWithError() throws {
        guard ProcessInfo.processInfo.environment["NODE_AGENT_IMAGE_ARCHIVE"] != nil else {
            throw XCTSkip("NODE_AGENT_IMAGE_ARCHIVE is unset (scripts/test builds the image with scripts/build-image)")
        }
        node = try SandboxNode()
    }

    override func tearDown() {
        for pod in pods { _ = try? node.exec([KubeletPod.script, "stop", "--pod-dir", pod]) }
        api?.stop()
        node?.down()
    }

    // MARK: reading the docs

    /// The lines of the `sh` blocks of `markdown`'s section `heading` (up to the next `## `), each
    /// command whole: a line ending in `\` continues on the next; a `#` comment outside quotes
    /// is cut off.
    static func shellCommands(_ markdown: String, section heading: String) throws -> [String] {
        let section = try XCTUnwrap(sectionText(markdown, heading), "no section \(heading)")
        var commands: [String] = []
        var inBlock = false
        var pending = ""
        for line in section.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("```") {
                inBlock = !inBlock && trimmed == "```sh"
                continue
            }
            guard inBlock else { continue }
            let code = withoutComment(line)
            if code.hasSuffix("\\") {
                pending += code.dropLast().trimmingCharacters(in: .whitespaces) + " "
                continue
            }
            let command = (pending + code.trimmingCharacters(in: .whitespaces)).trimmingCharacters(in: .whitespaces)
            pending = ""
            if !command.isEmpty { commands.append(command) }
        }
        return commands
    }

    /// `## heading` up to the next `## `.
    static func sectionText(_ markdown: String, _ heading: String) -> String? {
        guard let start = markdown.range(of: "\n## " + heading + "\n") else { return nil }
        let rest = markdown[start.upperBound...]
        let end = rest.range(of: "\n## ")?.lowerBound ?? rest.endIndex
        return String(rest[..<end])
    }

    /// The line without its comment: from a `#` that starts a word outside single or double quotes.
    static func withoutComment(_ line: String) -> String {
        var quote: Character?
        var previous: Character = " "
        var out = ""
        for c in line {
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "'" || c == "\"" {
                quote = c
            } else if c == "#" && previous.isWhitespace {
                break
            }
            out.append(c)
            previous = c
        }
        return out.trimmingCharacters(in: .whitespaces)
    }

    /// The uninstall as docs/install-autoscalers.md#uninstall gives it, in its order (the inline
    /// `kubectl ...` of its steps and the lines of its `sh` block), for the OpenFaaS overlay as
    /// that section says: `-n openfaas`, and the overlay where it deletes `deploy/`.
    static func uninstallCommands() throws -> [String] {
        let doc = try String(contentsOfFile: uninstallDoc, encoding: .utf8)
        let section = try XCTUnwrap(sectionText(doc, "Uninstall"), "no Uninstall in \(uninstallDoc)")
        XCTAssertTrue(
            section.contains("use `-n openfaas`") && section.contains("`namespace: openfaas`"),
            "the Uninstall section no longer says how the OpenFaaS overlay differs: \(section)")
        var commands: [String] = []
        var inBlock = false
        for line in section.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("```") {
                inBlock = !inBlock
                continue
            }
            if inBlock {
                let code = withoutComment(line)
                if !code.isEmpty { commands.append(code) }
                continue
            }
            // Inline code spans that are kubectl commands.
            let spans = line.split(separator: "`", omittingEmptySubsequences: false)
            for (i, span) in spans.enumerated() where i % 2 == 1 && span.hasPrefix("kubectl ") { commands.append(String(span)) }
        }
        return commands.map {
            $0.replacingOccurrences(of: "-n node-agent", with: "-n openfaas").split(separator: " ")
                .map { $0 == "deploy/" ? "deploy/overlays/openfaas" : String($0) }.joined(separator: " ")
        }
    }

    // MARK: the cluster

    /// The image archive in the node's containerd; its reference as name and tag.
    func importImage() throws -> (reference: String, name: String, tag: String) {
        let reference = try KubeletPod.importImage(into: node)
        let slash = reference.lastIndex(of: "/") ?? reference.startIndex
        let colon = try XCTUnwrap(reference[slash...].lastIndex(of: ":"), "no tag in \(reference)")
        return (reference, String(reference[..<colon]), String(reference[reference.index(after: colon)...]))
    }

    /// A copy of deploy/ with the agent's image set in `images:` as README.md tells the user (and
    /// the cleanup's, which install-autoscalers.md's kustomization says to keep in step), and the
    /// cleanup's namespace set to `openfaas` as the Uninstall section says; `tlsCrt`: the
    /// component ca-key-tls-crt in place of ca-key-ca-crt.
    func userCopy(image: (name: String, tag: String), tlsCrt: Bool) throws -> String {
        let work = node.folder + "/user"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let copy = try sh("/bin/cp", ["-r", packageRoot.appendingPathComponent("deploy").path, work + "/"])
        XCTAssertEqual(copy.status, 0, copy.stderr)
        let edit = try sh(
            "/usr/bin/env",
            [
                "python3", "-c",
                """
                import sys, yaml
                work, name, tag, tls = sys.argv[1:5]
                for path, namespace in ((work + "/deploy/overlays/openfaas/kustomization.yaml", None),
                                        (work + "/deploy/cleanup/kustomization.yaml", "openfaas")):
                    k = yaml.safe_load(open(path))
                    [entry] = [i for i in k["images"] if i["name"] == "ghcr.io/example/node-agent"]
                    entry.update(newName=name, newTag=tag)
                    if namespace:
                        k["namespace"] = namespace
                    if tls == "1" and "components" in k:
                        k["components"] = ["ca-key-tls-crt" if c == "ca-key-ca-crt" else c for c in k["components"]]
                    yaml.safe_dump(k, open(path, "w"), sort_keys=False)
                """, work, image.name, image.tag, tlsCrt ? "1" : "0",
            ])
        XCTAssertEqual(edit.status, 0, edit.stderr)
        return work
    }

    /// Runs `command` as the user types it, in `work`, inside the node (where the API double
    /// listens), with the admin's kubeconfig.
    func run(_ command: String, in work: String, quiet: Bool = false) throws -> (status: Int32, stdout: String, stderr: String) {
        let r = try node.exec([
            "env", "KUBECONFIG=\(work)/kubeconfig", "HOME=\(work)/home", "sh", "-c", "cd \(work) && " + command,
        ])
        if quiet { return r }
        print("$ \(command)\n\(r.stdout)\(r.stderr.isEmpty ? "" : "[stderr] " + r.stderr)[exit \(r.status)]")
        return r
    }

    /// `command` as `run` runs it, while kubelet watches `pod`: a container that ends (the agent
    /// exited) ends the command too, with the container's log, instead of waiting for its timeout.
    func run(_ command: String, in work: String, watching pod: String) throws -> (status: Int32, stdout: String, stderr: String) {
        let output = work + "/command.out"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        // A simple command replaces the shell, so that ending it ends kubectl.
        let simple = !command.contains(where: { "|;&<>`$".contains($0) })
        let p = try node.background(
            ["env", "KUBECONFIG=\(work)/kubeconfig", "HOME=\(work)/home", "sh", "-c", "cd \(work) && \(simple ? "exec " : "")" + command],
            output: output)
        var exited = ""
        while p.isRunning {
            let state = try node.exec([KubeletPod.script, "state", "--pod-dir", pod]).stdout
            if state.contains("CONTAINER_EXITED") {
                exited = state
                p.terminate()
            }
            Thread.sleep(forTimeInterval: 1)
        }
        p.waitUntilExit()
        let out = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        print("$ \(command)\n\(out)[exit \(p.terminationStatus)]")
        if !exited.isEmpty {
            return (p.terminationStatus == 0 ? 1 : p.terminationStatus, out, "the agent's container ended: \(exited)\n\(podLog(pod))")
        }
        return (p.terminationStatus, out, "")
    }

    /// An object of the double, as JSON, read by kubectl as the admin.
    func object(_ what: String, in work: String) throws -> [String: Any] {
        let r = try run("kubectl get \(what) -o json", in: work, quiet: true)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    /// kubelet's part: the pod of the DaemonSet `name` the double holds (its template as applied),
    /// with the ConfigMaps and Secrets of `openfaas` it refers to, as the double has them, run on
    /// node-1 through containerd. `asPod` rewrites the template (the cleanup's init container).
    func startPod(
        _ name: String, in work: String, saToken: String, asPod: (inout [String: Any]) -> Void = { _ in }
    ) throws -> String {
        var daemonSet = try object("-n openfaas daemonset \(name)", in: work)
        asPod(&daemonSet)
        var docs: [Any] = [daemonSet]
        for kind in ["configmap", "secret"] {
            docs += (try object("-n openfaas \(kind)", in: work)["items"] as? [Any]) ?? []
        }
        let manifest = work + "/\(name)-as-stored.json"
        // One JSON document per line is YAML too (kubelet-pod reads a YAML stream).
        try docs.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }.joined(separator: "\n---\n")
            .write(toFile: manifest, atomically: true, encoding: .utf8)
        let template = ((daemonSet["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any]
        let image = try XCTUnwrap((template?["containers"] as? [[String: Any]])?.first?["image"] as? String)
        let directory = node.folder + "/pod-\(name)"
        let r = try node.exec([
            KubeletPod.script, "start", "--manifest", manifest, "--pod-dir", directory, "--image", image,
            "--node-name", "node-1", "--node-root", node.hostRoot, "--kube-api", String(api!.url.dropFirst("https://".count)),
            "--kube-ca", node.caFile, "--token", saToken,
        ])
        guard r.status == 0 else { throw AgentError(.io, "kubelet-pod start: \(r.stderr)") }
        pods.append(directory)
        return directory
    }

    func podLog(_ directory: String) -> String {
        let state =
            (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/pod.json")))) as? [String: Any]
        return (state?["log"] as? String).flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? ""
    }

    // MARK: the quick start

    func testTheQuickStartRunsAsTheReadmeSaysAndTheUninstallLeavesTheNodeAsBefore() throws {
        try quickStart(tlsCrtOnly: false)
    }

    /// The README's other case: `registry-tls` made with `kubectl create secret tls` from a
    /// self-signed certificate (here the sandbox's CA itself, which signed the registry's
    /// certificate), so tls.crt and tls.key and no ca.crt. The pre-flight shows no ca.crt, and the
    /// component `ca-key-tls-crt` in place of `ca-key-ca-crt`, as the README says, makes the rest
    /// end as before.
    func testTheQuickStartWithATLSSecretAndTheComponentCAKeyTLSCrt() throws {
        try quickStart(tlsCrtOnly: true)
    }

    func quickStart(tlsCrtOnly: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let readme = try String(contentsOfFile: Self.readme, encoding: .utf8)
        let commands = try Self.shellCommands(readme, section: "Quick start: OpenFaaS")
        let quickStartText = try XCTUnwrap(Self.sectionText(readme, "Quick start: OpenFaaS"))
        // The README's Uninstall paragraph: its delete command, and where the order is.
        let overlayDelete = try XCTUnwrap(
            quickStartText.components(separatedBy: "`").first { $0.hasPrefix("kubectl delete -k deploy/overlays/openfaas") },
            "the quick start names no `kubectl delete -k deploy/overlays/openfaas`")
        XCTAssertTrue(quickStartText.contains("install-autoscalers.md#uninstall"))
        if tlsCrtOnly {
            XCTAssertTrue(
                quickStartText.contains("`kubectl create secret tls`") && quickStartText.contains("component `ca-key-tls-crt`"),
                "the quick start no longer says what to do with a Secret of tls.crt only")
        }
        let uninstall = try Self.uninstallCommands()
        XCTAssertGreaterThanOrEqual(commands.count, 8, "\(commands)")

        // The cluster: the sandbox node as node-1, joined with the overlay's startup taint, and
        // an OpenFaaS install: its namespace and its registry's TLS Secret.
        XCTAssertFalse(try node.pull(node.testImage).ok, "the node pulls before the agent ran")
        let image = try importImage()
        let work = try userCopy(image: (image.name, image.tag), tlsCrt: tlsCrtOnly)
        let adminToken = work + "/admin.token"
        let saToken = work + "/node-agent.token"
        try "admin-\(UUID().uuidString)".write(toFile: adminToken, atomically: true, encoding: .utf8)
        try "sa-\(UUID().uuidString)".write(toFile: saToken, atomically: true, encoding: .utf8)
        let empty = work + "/no-manifest.yaml"
        try "# the cluster holds only what the user applies\n".write(toFile: empty, atomically: true, encoding: .utf8)
        api = try APIDouble(
            node, manifest: empty,
            tokens: [adminToken: "admin,system:masters", saToken: "system:serviceaccount:openfaas:node-agent"],
            extra: ["--startup-taint", APIDouble.startupTaint])
        let before = try api!.nodeObject()
        XCTAssertEqual(try api!.taints().compactMap { $0["key"] as? String }, [APIDouble.startupTaint, "example.com/other"])
        try """
        apiVersion: v1
        kind: Config
        clusters: [{name: cluster, cluster: {server: "\(api!.url)", certificate-authority: "\(node.caFile)"}}]
        users: [{name: admin, user: {tokenFile: "\(adminToken)"}}]
        contexts: [{name: admin, context: {cluster: cluster, user: admin}}]
        current-context: admin
        """.write(toFile: work + "/kubeconfig", atomically: true, encoding: .utf8)
        // The agent's service account, for the test's own RBAC checks (not a user's command).
        try String(contentsOfFile: work + "/kubeconfig", encoding: .utf8).replacingOccurrences(of: adminToken, with: saToken)
            .write(toFile: work + "/agent.kubeconfig", atomically: true, encoding: .utf8)
        let pki = node.folder + "/pki"
        // `kubectl create` sends protobuf, which the double does not read: the same Secret, made
        // by the same command, goes in by apply.
        let seed =
            tlsCrtOnly
            ? "kubectl -n openfaas create secret tls registry-tls --cert=\(pki)/ca.crt --key=\(pki)/ca.key --dry-run=client -o yaml"
            : "kubectl -n openfaas create secret generic registry-tls --from-file=ca.crt=\(node.caFile) "
                + "--from-file=tls.crt=\(pki)/registry.crt --from-file=tls.key=\(pki)/registry.key --dry-run=client -o yaml"
        for setup in [
            "printf 'apiVersion: v1\\nkind: Namespace\\nmetadata: {name: openfaas, labels: {role: openfaas-system, access: openfaas-system}}\\n' | kubectl apply -f -",
            seed + " | kubectl apply -f -",
        ] {
            let r = try run(setup, in: work)
            XCTAssertEqual(r.status, 0, "setting up OpenFaaS: \(r.stderr)", file: file, line: line)
        }
        let caSubject = try sh("/usr/bin/openssl", ["x509", "-in", node.caFile, "-noout", "-subject"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)

        var agentPod: String?
        var ran: [String] = []
        let execPrefix = "kubectl -n openfaas exec ds/node-agent -- "
        for command in commands + uninstall {
            // The commands build on each other: the first that does not end as the docs say ends
            // the test (swift-corelibs-xctest does not stop on continueAfterFailure = false).
            if (testRun?.failureCount ?? 0) > 0 {
                XCTFail("stopped after a command that did not end as the docs say; not run: \(command)", file: file, line: line)
                return
            }
            // The double serves no exec: that one is run in the container below, not as typed.
            let r =
                command.hasPrefix(execPrefix)
                ? (status: 0, stdout: "", stderr: "")
                : try agentPod.map { try run(command, in: work, watching: $0) } ?? run(command, in: work)
            let out = r.stdout
            ran.append(command)
            switch command {
            case "kubectl version":
                XCTAssertEqual(r.status, 0, r.stderr)
                let minor = out.firstMatch(of: /Server Version: v1\.(\d+)\./).flatMap { Int($0.1) }
                XCTAssertGreaterThanOrEqual(try XCTUnwrap(minor, out), 30, "the README's pre-flight: v1.30 or later")
            case "kubectl -n openfaas describe secret registry-tls":
                XCTAssertEqual(r.status, 0, r.stderr)
                XCTAssertTrue(out.contains("Data\n===="), out)
                let key = tlsCrtOnly ? "tls.crt:" : "ca.crt:"
                XCTAssertTrue(out.split(separator: "\n").contains { $0.hasPrefix(key) }, "Data: \(key) as the README says: \(out)")
                if tlsCrtOnly { XCTAssertFalse(out.contains("ca.crt:"), out) }
            case let c
            where c.hasPrefix("kubectl -n openfaas get secret registry-tls -o jsonpath='{.data.ca\\.crt}' | base64 -d | openssl x509"):
                XCTAssertTrue(c.hasSuffix("-noout -subject -enddate"), c)
                if tlsCrtOnly {
                    // No ca.crt: the pre-flight shows it (what sends the user to ca-key-tls-crt).
                    XCTAssertNotEqual(r.status, 0, "a Secret with no ca.crt passed the pre-flight")
                    XCTAssertFalse(out.contains("subject="), out)
                } else {
                    XCTAssertEqual(r.status, 0, r.stderr)
                    XCTAssertTrue(out.contains(caSubject), "the registry's CA: \(caSubject) in \(out)")
                    let end = try XCTUnwrap(out.firstMatch(of: /notAfter=(.+)/).map { String($0.1) }, out)
                    let f = DateFormatter()
                    f.locale = Locale(identifier: "en_US_POSIX")
                    f.dateFormat = "MMM d HH:mm:ss yyyy zzz"
                    let date = try XCTUnwrap(f.date(from: end.replacingOccurrences(of: "  ", with: " ")), end)
                    XCTAssertGreaterThan(date, Date(), "the CA is not expired")
                }
            case "kubectl get ns openfaas --show-labels":
                XCTAssertEqual(r.status, 0, r.stderr)
                let lines = out.split(separator: "\n")
                XCTAssertEqual(lines.first?.split(separator: " ", omittingEmptySubsequences: true), ["NAME", "STATUS", "AGE", "LABELS"])
                let labels = lines.dropFirst().first?.split(separator: " ").last.map(String.init) ?? ""
                XCTAssertTrue(labels.contains("role=openfaas-system"), labels)
                XCTAssertFalse(labels.contains("pod-security.kubernetes.io/enforce=privileged"), "not labelled yet: \(labels)")
            case "kubectl label namespace openfaas pod-security.kubernetes.io/enforce=privileged":
                XCTAssertEqual(r.status, 0, r.stderr)
                XCTAssertEqual(out, "namespace/openfaas labeled\n")
                let labels = ((try object("namespace openfaas", in: work)["metadata"] as? [String: Any])?["labels"]) as? [String: String]
                XCTAssertEqual(labels?["pod-security.kubernetes.io/enforce"], "privileged")
            case "kubectl apply -k deploy/overlays/openfaas":
                XCTAssertEqual(r.status, 0, r.stderr)
                XCTAssertTrue(out.contains("daemonset.apps/node-agent created"), out)
                XCTAssertFalse(out.contains("namespace/"), "the overlay must not own `openfaas`: \(out)")
                // kubelet: the DaemonSet's pod on node-1, as applied.
                let ds = try object("-n openfaas daemonset node-agent", in: work)
                let container = try XCTUnwrap(
                    ((((ds["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])?["containers"]
                        as? [[String: Any]])?.first)
                XCTAssertEqual(container["image"] as? String, image.reference, "the image the user set in images:")
                // The CA's key as the component chose it, in the template as applied.
                let volumes = (((ds["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])?["volumes"]
                let ca = (volumes as? [[String: Any]])?.first { $0["name"] as? String == "registry-ca" }?["secret"] as? [String: Any]
                XCTAssertEqual(ca?["secretName"] as? String, "registry-tls")
                XCTAssertEqual(((ca?["items"] as? [[String: Any]])?.first?["key"]) as? String, tlsCrtOnly ? "tls.crt" : "ca.crt")
                // The API enforces what was applied: the agent's service account may read its node,
                // and not the Secret its pod mounts (kubelet reads that, not the agent).
                let asAgent = "kubectl --kubeconfig \(work)/agent.kubeconfig "
                XCTAssertEqual(try run(asAgent + "get node node-1 -o name", in: work, quiet: true).stdout, "node/node-1\n")
                let secret = try run(asAgent + "-n openfaas get secret registry-tls", in: work, quiet: true)
                XCTAssertNotEqual(secret.status, 0)
                XCTAssertTrue(
                    secret.stderr.contains(
                        "User \"system:serviceaccount:openfaas:node-agent\" cannot get resource \"secrets\" in API group \"\" in the namespace \"openfaas\""
                    ), secret.stderr)
                agentPod = try startPod("node-agent", in: work, saToken: saToken)
            case "kubectl wait --for=condition=RegistryPullReady node --all --timeout=5m":
                XCTAssertEqual(r.status, 0, "\(r.stderr)\n\(agentPod.map(podLog) ?? "")")
                XCTAssertEqual(out, "node/node-1 condition met\n")
                // As on a cluster: the node pulls (containerd's own word), and its startup taint is gone.
                let pulled = try node.pull(node.testImage)
                XCTAssertTrue(pulled.ok, pulled.error)
                XCTAssertFalse(try api!.taints().contains { $0["key"] as? String == APIDouble.startupTaint })
            case let c where c.hasPrefix(execPrefix):
                // The double serves no exec: the same command, in the pod's container, through the
                // runtime (what kubelet runs for `kubectl exec`).
                let pod = try XCTUnwrap(agentPod, "exec before the pod")
                let argv = c.dropFirst(execPrefix.count).split(separator: " ").map(String.init)
                XCTAssertEqual(argv, ["node-agent", "status"])
                let e = try node.exec([KubeletPod.script, "exec", "--pod-dir", pod, "--"] + argv)
                print("(in the container) \(argv.joined(separator: " "))\n\(e.stdout)\(e.stderr)[exit \(e.status)]")
                XCTAssertEqual(e.status, 0, "status: \(e.stdout)\(e.stderr)")
                for check in ["dns-host", "tls-runtime-trust", "runtime-pull"] {
                    XCTAssertTrue(e.stdout.contains(check), "\(check) in \(e.stdout)")
                }
            case "kubectl -n openfaas delete daemonset node-agent":
                XCTAssertEqual(r.status, 0, r.stderr)
                XCTAssertEqual(out, "daemonset.apps \"node-agent\" deleted\n")
                // kubelet: the DaemonSet's pod ends with it.
                let pod = try XCTUnwrap(agentPod)
                let stopped = try node.exec([KubeletPod.script, "stop", "--pod-dir", pod])
                XCTAssertEqual(stopped.status, 0, stopped.stderr)
                pods.removeAll { $0 == pod }
                agentPod = nil
            case "kubectl apply -k deploy/cleanup":
                XCTAssertEqual(r.status, 0, r.stderr)
                XCTAssertTrue(out.contains("daemonset.apps/node-agent-cleanup created"), out)
                // kubelet: the cleanup pod's init container (`node-agent uninstall`), run as its
                // container (kubelet-pod runs one), to its end; then the DaemonSet controller's
                // status of a DaemonSet whose one pod is done.
                let pod = try startPod("node-agent-cleanup", in: work, saToken: saToken) { ds in
                    var spec = ds["spec"] as! [String: Any]
                    var template = spec["template"] as! [String: Any]
                    var podSpec = template["spec"] as! [String: Any]
                    podSpec["containers"] = podSpec["initContainers"]
                    podSpec["initContainers"] = nil
                    template["spec"] = podSpec
                    spec["template"] = template
                    ds["spec"] = spec
                }
                try eventually(60, "the cleanup's uninstall ends") {
                    let s = try node.exec([KubeletPod.script, "state", "--pod-dir", pod]).stdout
                    return s.contains("CONTAINER_EXITED")
                }
                let state = try node.exec([KubeletPod.script, "state", "--pod-dir", pod]).stdout
                XCTAssertTrue(state.contains("\"exit_code\": 0"), "\(state)\n\(podLog(pod))")
                print("cleanup pod's uninstall:\n\(podLog(pod))")
                _ = try node.exec([KubeletPod.script, "stop", "--pod-dir", pod])
                pods.removeAll { $0 == pod }
                let generation = try XCTUnwrap(
                    (try object("-n openfaas daemonset node-agent-cleanup", in: work)["metadata"] as? [String: Any])?["generation"] as? Int)
                let status = try api!.curl(
                    "PATCH", "/apis/apps/v1/namespaces/openfaas/daemonsets/node-agent-cleanup/status",
                    token: try String(contentsOfFile: adminToken, encoding: .utf8), contentType: "application/merge-patch+json",
                    body: """
                        {"status":{"observedGeneration":\(generation),"desiredNumberScheduled":1,"currentNumberScheduled":1,\
                        "updatedNumberScheduled":1,"numberAvailable":1,"numberReady":1,"numberMisscheduled":0}}
                        """)
                XCTAssertEqual(status.code, "200", status.body)
            case "kubectl -n openfaas rollout status daemonset/node-agent-cleanup":
                XCTAssertEqual(r.status, 0, r.stderr)
                XCTAssertTrue(out.contains("daemon set \"node-agent-cleanup\" successfully rolled out"), out)
            case "kubectl delete -k deploy/cleanup":
                XCTAssertEqual(r.status, 0, r.stderr)
                XCTAssertEqual(out, "daemonset.apps \"node-agent-cleanup\" deleted\n")
            case overlayDelete:
                XCTAssertEqual(r.status, 0, "the last step of the uninstall fails: \(r.stderr)")
                XCTAssertTrue(out.contains("clusterrole.rbac.authorization.k8s.io \"node-agent\" deleted"), out)
            default:
                XCTFail("the quick start has a command this test does not run: \(command)", file: file, line: line)
                return
            }
        }
        XCTAssertEqual(ran.count, commands.count + uninstall.count)

        // Every node as before: no condition, no startup taint, kubelet's condition and the other
        // taint, labels and annotations as they were; the host cannot pull again (the agent's
        // files are gone), and the install's objects are gone, OpenFaaS' are not.
        XCTAssertNil(try api!.condition("RegistryPullReady"))
        XCTAssertEqual(try api!.taints().compactMap { $0["key"] as? String }, ["example.com/other"])
        let after = try api!.nodeObject()
        XCTAssertEqual(
            (after["status"] as? [String: Any])?["conditions"] as? NSArray, (before["status"] as? [String: Any])?["conditions"] as? NSArray)
        XCTAssertEqual(
            (after["metadata"] as? [String: Any])?["labels"] as? NSDictionary,
            (before["metadata"] as? [String: Any])?["labels"] as? NSDictionary)
        XCTAssertFalse(try node.pull(node.testImage).ok, "the node still pulls after the uninstall: the agent's files stayed")
        let left = try run(
            "kubectl get -A -o name daemonsets,configmaps,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,"
                + "validatingadmissionpolicies,validatingadmissionpolicybindings", in: work)
        XCTAssertEqual(left.status, 0, left.stderr)
        XCTAssertFalse(left.stdout.contains("node-agent"), "left after the uninstall: \(left.stdout)")
        XCTAssertEqual(try run("kubectl -n openfaas get secret registry-tls -o name", in: work).stdout, "secret/registry-tls\n")
    }
}
