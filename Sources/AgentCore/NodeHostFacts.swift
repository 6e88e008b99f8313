import Containerd
import HostSystem
import Probes
import ResolvedConfig

/// What the node says of itself that its settings need, read once per `NodeConfig` (once per
/// reconcile): the runtimes' processes, the containerd that serves it, and kubelet's DNS
/// settings (k3s's and RKE2's included).
public struct NodeHostFacts: Sendable {
    /// The container runtimes' processes (containerd, crio, dockerd).
    public var runtimeProcesses: [HostProcess] = []
    /// The processes named containerd that look like the node's runtime, and those that do not (with why).
    public var runningContainerd: [RunningContainerd] = []
    public var ignored: [RunningContainerd.Ignored] = []
    /// kubelet's DNS settings; nil when none was found, with the reason when it could not be read.
    public var kubelet: KubeletDNSConfig?
    public var kubeletProblem: String?
    /// The CRI socket k3s or RKE2 gives its kubelet.
    public var k3sSocket: String?

    public init() {}

    public static func gather(_ files: HostFiles) -> NodeHostFacts {
        var facts = NodeHostFacts()
        facts.runtimeProcesses = HostProcesses(files: files).named(ProbeSuite.runtimeNames)
        (facts.runningContainerd, facts.ignored) = RunningContainerd.qualified(files, among: facts.runtimeProcesses)
        do {
            facts.kubelet = try KubeletDNSConfig.read(from: files)
            // k3s and RKE2 give their kubelet a drop-in folder of their own (clusterDNS and
            // clusterDomain as their server set them: agents have them from it), or, before
            // v1.31.0, flags from their own config.
            if facts.kubelet == nil, let k3s = try K3sNode.detect(files: files, running: facts.runningContainerd) {
                var settings = try KubeletDNSConfig.read(from: files, directory: k3s.kubeletConfigDir) ?? KubeletDNSConfig()
                if settings.clusterDNS.isEmpty { settings.clusterDNS = try k3s.clusterDNS(files: files) }
                facts.kubelet = settings
                facts.k3sSocket = k3s.socket
            }
        } catch { facts.kubeletProblem = "\(error)" }
        return facts
    }
}
