import ArgumentParser
import FoundationEssentials
import Glibc
import HostSystem
import Probes

/// The options that put the agent in touch with its node's object in Kubernetes.
struct KubeOptions: ParsableArguments {
    @Option(help: "This node's name (the downward API's spec.nodeName; default: $NODE_NAME): its node condition.")
    var nodeName: String?

    @Option(help: "The Kubernetes API, https://IP:PORT (default: the in-cluster KUBERNETES_SERVICE_HOST/PORT).")
    var kubeApi: String?

    @Option(help: "Service account token file (default: the pod's).")
    var kubeTokenFile: String?

    @Option(help: "CA of the Kubernetes API (default: the pod's service account ca.crt).")
    var kubeCaFile: String?

    @Option(help: "The node condition's type.")
    var nodeCondition: String = "RegistryPullReady"

    /// A node condition type as the API takes it: a letter, then letters and digits (at most 63).
    static func isConditionType(_ text: String) -> Bool {
        let scalars = Array(text.unicodeScalars)
        guard let first = scalars.first, (1...63).contains(scalars.count), first.isASCII, first.properties.isAlphabetic else { return false }
        return scalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) }
    }

    /// The reporter for this node, or nil when no node name is known.
    func reporter(startupTaint: String?, heartbeat: TimeInterval) throws -> NodeReporter? {
        let environment = ProcessInfo.processInfo.environment
        guard let name = nodeName ?? environment["NODE_NAME"] else { return nil }
        _ = try DomainName(name, what: "node name")
        guard Self.isConditionType(nodeCondition) else {
            throw AgentError(.invalidInput, "--node-condition '\(nodeCondition.escapedForMessage)' is not a condition type (CamelCase letters)")
        }
        guard let api = try KubeAPI.resolve(url: kubeApi, tokenFile: kubeTokenFile, caFile: kubeCaFile, environment: environment) else {
            throw AgentError(.invalidInput, "a node name is set but the Kubernetes API is not known", hint: "run in a pod, or pass --kube-api")
        }
        return NodeReporter(api: api, node: name, conditionType: nodeCondition, startupTaint: startupTaint, heartbeat: heartbeat)
    }
}

/// Where and how to reach the Kubernetes API: in a pod, the service account's token and CA
/// and the KUBERNETES_SERVICE_HOST/PORT variables.
struct KubeAPI: Sendable {
    var base: String
    var address: IPAddress
    var tokenFile: String
    var caFile: String

    static let serviceAccount = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The API from `--kube-api` (https://IP:PORT) or the in-cluster environment; nil when neither is there.
    static func resolve(url: String?, tokenFile: String?, caFile: String?, environment: [String: String]) throws -> KubeAPI? {
        var base = url
        if base == nil, let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"] {
            base = host.contains(":") ? "https://[\(host)]:\(port)" : "https://\(host):\(port)"
        }
        guard let base else { return nil }
        guard base.hasPrefix("https://"), let authority = base.dropFirst(8).split(separator: "/").first,
              let registry = try? RegistryAddress(String(authority)), case .ip(let ip) = registry.host else {
            throw AgentError(.invalidInput, "the Kubernetes API '\(base.escapedForMessage)' must be https://IP:PORT")
        }
        return KubeAPI(base: "https://\(registry.hostAndPort)", address: ip, tokenFile: tokenFile ?? serviceAccount + "/token",
                       caFile: caFile ?? serviceAccount + "/ca.crt")
    }

    func request(_ method: String, _ path: String, contentType: String? = nil, body: JSONValue? = nil) throws -> (status: Int, json: JSONValue?) {
        guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8).trimmingWhitespace(), !token.isEmpty else {
            throw AgentError(.io, "cannot read the service account token \(tokenFile)")
        }
        var headers = [("Authorization", "Bearer " + token), ("Accept", "application/json")]
        var bytes: [UInt8] = []
        if let body {
            bytes = body.encoded()
            headers.append(("Content-Type", contentType ?? "application/json"))
        }
        let r = try httpsRequest(method, url: base + path, address: address, trustFile: caFile, headers: headers, body: bytes)
        return (r.status, try? JSONValue.parse(r.body))
    }

    /// The API's own word on a refused request, from its Status: ": REASON: MESSAGE" (e.g.
    /// `: Forbidden: nodes "n" is forbidden: User "…" cannot patch resource "nodes/status" …`),
    /// or "" when the answer is not a Status.
    static func refusal(_ r: (status: Int, json: JSONValue?)) -> String {
        guard let json = r.json, json["kind"]?.string == "Status" else { return "" }
        var text = ""
        if let reason = json["reason"]?.string, !reason.isEmpty { text += ": " + reason }
        if let message = json["message"]?.string, !message.isEmpty, message != json["reason"]?.string {
            text += ": " + String(message.prefix(512))
        }
        // On one line, whole (escapedForMessage would cut it at 80 characters, mid-sentence).
        return String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? " " : $0 }))
    }

    /// What to do about a refusal: the token (401) or the ClusterRole (403, `needs` says what).
    func hint(_ status: Int, needs: String) -> String? {
        switch status {
        case 401: return "the API does not accept the token in \(tokenFile)"
        case 403: return "the service account needs \(needs)"
        default: return nil
        }
    }
}

/// The Kubernetes API as the reporter uses it: a request, and what to do about a refusal.
/// `KubeAPI` is the real one; the tests give a recording fake.
protocol KubeAPIClient {
    func request(_ method: String, _ path: String, contentType: String?, body: JSONValue?) throws -> (status: Int, json: JSONValue?)
    func hint(_ status: Int, needs: String) -> String?
}

extension KubeAPI: KubeAPIClient {}

/// Publishes "can this node pull from the registry" as a node condition, the way
/// node-problem-detector does (a strategic merge patch of nodes/NAME/status, keyed by type),
/// only when it changes plus a slow heartbeat; and removes a startup taint once the node is
/// ready, so that pods land only on nodes that can pull (kubernetes-sigs/node-readiness-controller
/// watches such conditions).
final class NodeReporter: @unchecked Sendable {
    // Used from the reconcile loop only.
    let api: any KubeAPIClient
    let node: String
    let conditionType: String
    let startupTaint: String?
    let heartbeat: TimeInterval
    private var last: (status: String, reason: String, message: String)?
    /// RFC 3339, as sent: the node's own while the status it holds is the one sent.
    private var lastTransition = ""
    private var lastSent = Date.distantPast
    private var taintRemoved = false

    init(api: any KubeAPIClient, node: String, conditionType: String, startupTaint: String?, heartbeat: TimeInterval) {
        self.api = api
        self.node = node
        self.conditionType = conditionType
        self.startupTaint = startupTaint
        self.heartbeat = heartbeat
    }

    /// Sends the condition when it changed or the heartbeat is due; returns what it did.
    func report(ready: Bool, reason: String, message: String, now: Date = Date()) throws -> [String] {
        var done: [String] = []
        let status = ready ? "True" : "False"
        let changed = last.map { $0.status != status || $0.reason != reason || $0.message != message } ?? true
        if last == nil {
            // A restarted agent: the condition may already hold this status since long ago.
            lastTransition = try publishedTransition(status: status) ?? now.iso8601
        } else if last?.status != status {
            lastTransition = now.iso8601
        }
        if changed || now.timeIntervalSince(lastSent) >= heartbeat {
            let condition: JSONValue = [
                "type": .string(conditionType), "status": .string(status), "reason": .string(reason), "message": .string(String(message.prefix(1024))),
                "lastHeartbeatTime": .string(now.iso8601), "lastTransitionTime": .string(lastTransition),
            ]
            let r = try api.request("PATCH", "/api/v1/nodes/\(node)/status", contentType: "application/strategic-merge-patch+json",
                                    body: ["status": ["conditions": [condition]]])
            guard (200..<300).contains(r.status) else {
                throw AgentError(.io, "the API answered \(r.status) to the \(conditionType) condition of node \(node)\(KubeAPI.refusal(r))",
                                 hint: api.hint(r.status, needs: "patch on nodes/status"))
            }
            last = (status, reason, message)
            lastSent = now
            done.append("condition \(conditionType)=\(status) (\(reason)) on node \(node)")
        }
        if ready, let key = startupTaint, !taintRemoved {
            done += try removeTaint(key)
        }
        return done
    }

    /// Removes the taint `key` from the node, with its resourceVersion so a concurrent change wins.
    func removeTaint(_ key: String) throws -> [String] {
        let r = try api.request("GET", "/api/v1/nodes/\(node)", contentType: nil, body: nil)
        guard r.status == 200, let object = r.json, let version = object["metadata"]?["resourceVersion"]?.string else {
            throw AgentError(.io, "cannot read node \(node) from the API: \(r.status)\(KubeAPI.refusal(r))",
                             hint: api.hint(r.status, needs: "get on nodes"))
        }
        let taints = object["spec"]?["taints"]?.array ?? []
        let remaining = taints.filter { $0["key"]?.string != key }
        guard remaining.count != taints.count else { taintRemoved = true; return [] }
        let patch: JSONValue = ["metadata": ["resourceVersion": .string(version)], "spec": ["taints": .array(remaining)]]
        let p = try api.request("PATCH", "/api/v1/nodes/\(node)", contentType: "application/merge-patch+json", body: patch)
        guard (200..<300).contains(p.status) else {
            throw AgentError(.io, "the API answered \(p.status) to removing taint \(key) from node \(node)\(KubeAPI.refusal(p))",
                             hint: api.hint(p.status, needs: "patch on nodes"))
        }
        taintRemoved = true
        return ["removed startup taint \(key) from node \(node)"]
    }

    /// Deletes the condition (uninstall): the node goes back to not having it at all.
    func clear() throws {
        let r = try api.request("PATCH", "/api/v1/nodes/\(node)/status", contentType: "application/strategic-merge-patch+json",
                                body: ["status": ["conditions": [["type": .string(conditionType), "$patch": "delete"]]]])
        guard (200..<300).contains(r.status) else {
            throw AgentError(.io, "the API answered \(r.status) to clearing \(conditionType) of node \(node)\(KubeAPI.refusal(r))",
                             hint: api.hint(r.status, needs: "patch on nodes/status"))
        }
    }

    /// The lastTransitionTime of this condition on the node when it already has `status`; nil
    /// when it has not, or the node cannot be read (refused: the condition then starts anew).
    /// Throws when the API cannot be reached, so that a silent API costs one timeout, not two.
    func publishedTransition(status: String) throws -> String? {
        let r = try api.request("GET", "/api/v1/nodes/\(node)", contentType: nil, body: nil)
        guard r.status == 200 else { return nil }
        let mine = r.json?["status"]?["conditions"]?.array?.first { $0["type"]?.string == conditionType }
        guard let mine, mine["status"]?.string == status, let time = mine["lastTransitionTime"]?.string, !time.isEmpty else { return nil }
        return time
    }
}
