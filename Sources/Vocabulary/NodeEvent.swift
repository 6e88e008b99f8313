/// One thing worth telling about the node, as a Kubernetes Event tells it: a type (Normal or
/// Warning), a reason in CamelCase that a machine can match, and a message for a person.
/// `kubectl describe node` lists them under Events, beside the kubelet's NodeReady/NodeNotReady
/// and node-problem-detector's.
public struct NodeEvent: Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case normal = "Normal"
        case warning = "Warning"
    }

    public var type: Kind
    public var reason: String
    public var message: String

    public init(_ type: Kind, _ reason: String, _ message: String) {
        self.type = type
        self.reason = reason
        self.message = message
    }

    public var description: String { "\(type.rawValue) \(reason): \(message)" }

    /// The reasons the agent writes, one per kind of thing that happened.
    public enum Reason {
        /// The node became able to pull from the registry (or was, at the agent's first report).
        public static let ready = "RegistryPullReady"
        /// The node became unable to pull (or was, at the agent's first report); the message
        /// says why, as the condition's does.
        public static let notReady = "RegistryPullNotReady"
        /// The registry's CA changed (the Secret was rotated) and the agent installed the new one.
        public static let caRotated = "RegistryCARotated"
        /// The agent restarted a container runtime so that it loads the OS trust store again.
        public static let runtimeRestarted = "ContainerRuntimeRestarted"
        /// The agent now routes the cluster's names to the host another way (link, hosts, ...).
        public static let dnsModeChanged = "ClusterDNSModeChanged"
    }
}
