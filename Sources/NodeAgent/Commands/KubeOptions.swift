import ArgumentParser
import FoundationEssentials
import Glibc
import HostSystem
import Kubernetes
import Probes
import Vocabulary

/// The options that put the agent in touch with its node's object in Kubernetes.
struct KubeOptions: ParsableArguments {
    @Option(
        help: "This node's name (the downward API's spec.nodeName; default: $NODE_NAME): its node condition. (env: NODE_AGENT_NODE_NAME)")
    var nodeName: String?

    @Option(help: "The Kubernetes API, https://IP:PORT (default: the in-cluster KUBERNETES_SERVICE_HOST/PORT). (env: NODE_AGENT_KUBE_API)")
    var kubeApi: String?

    @Option(help: "Service account token file (default: the pod's). (env: NODE_AGENT_KUBE_TOKEN_FILE)")
    var kubeTokenFile: String?

    @Option(help: "CA of the Kubernetes API (default: the pod's service account ca.crt). (env: NODE_AGENT_KUBE_CA_FILE)")
    var kubeCaFile: String?

    @Option(help: "The node condition's type. (env: NODE_AGENT_NODE_CONDITION)")
    var nodeCondition: String = "RegistryPullReady"

    /// A node condition type as the API takes it: a letter, then letters and digits (at most 63).
    static func isConditionType(_ text: String) -> Bool {
        let scalars = Array(text.unicodeScalars)
        guard let first = scalars.first, (1...63).contains(scalars.count), first.isASCII, first.properties.isAlphabetic else {
            return false
        }
        return scalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) }
    }

    /// The reporter for this node, or nil when no node name is known.
    func reporter(startupTaint: String?) throws -> NodeReporter? {
        let environment = ProcessInfo.processInfo.environment
        guard let name = nodeName ?? environment["NODE_NAME"] else { return nil }
        _ = try DomainName(name, what: "node name")
        guard Self.isConditionType(nodeCondition) else {
            throw AgentError(
                .invalidInput, "--node-condition '\(nodeCondition.escapedForMessage)' is not a condition type (CamelCase letters)")
        }
        guard let api = try api() else {
            throw AgentError(
                .invalidInput, "a node name is set but the Kubernetes API is not known", hint: "run in a pod, or pass --kube-api")
        }
        return NodeReporter(api: api, node: name, conditionType: nodeCondition, startupTaint: startupTaint)
    }

    /// The Kubernetes API from --kube-api or the pod's environment; nil when neither names one.
    func api() throws -> KubeAPI? {
        try KubeAPI.resolve(url: kubeApi, tokenFile: kubeTokenFile, caFile: kubeCaFile, environment: ProcessInfo.processInfo.environment)
    }
}
