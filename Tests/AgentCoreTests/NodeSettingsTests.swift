import AgentCore
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// The settings' own checks (`validated()`, reading nothing) apart from the node's facts
/// (`NodeHostFacts.gather`); NodeOptionsTests checks the two together as `NodeConfig`.
final class NodeSettingsTests: XCTestCase {
    func settings(_ change: (inout NodeSettings) -> Void = { _ in }) -> NodeSettings {
        var s = NodeSettings(registry: "registry-service.openfaas.svc.cluster.local:5000")
        change(&s)
        return s
    }

    func testValidationReadsNeitherTheHostNorTheFilesTheSettingsName() throws {
        let valid = try settings {
            $0.hostRoot = "/nonexistent/host"
            $0.registryAuth = "/nonexistent/config.json"
            $0.aliases = ["registry-service.openfaas,registry-service.openfaas.svc"]
            $0.timeout = 2.5
        }.validated()
        XCTAssertEqual(valid.registry.hostAndPort, "registry-service.openfaas.svc.cluster.local:5000")
        XCTAssertEqual(valid.aliases.map(\.description), ["registry-service.openfaas", "registry-service.openfaas.svc"])
        XCTAssertEqual(valid.timeoutMilliseconds, 2500)
        XCTAssertNil(valid.clusterDNS, "kubelet's is read from the node, later")
    }

    func testEachMistakeInTheSettingsIsNamed() {
        assertAgentError(try settings { $0.domain = "cluster.example" }.validated(), .invalidInput, "is not under the domain")
        assertAgentError(try settings { $0.timeout = 0 }.validated(), .invalidInput, "--timeout 0.0 is out of range")
        assertAgentError(try settings { $0.clusterDNS = "kube-dns" }.validated(), .invalidInput, "kube-dns")
        assertAgentError(try settings { $0.pullImage = "team/app 1.0" }.validated(), .invalidInput, "is not an image reference")
        assertAgentError(try settings { $0.dbusAddress = "" }.validated(), .invalidInput, "D-Bus address is empty")
        assertAgentError(
            try settings { $0.runtimeEndpoint = "tcp://10.0.0.1:2376" }.validated(), .invalidInput, "is not a unix socket path")
        XCTAssertNoThrow(
            try settings {
                $0.runtimeEndpoint = "tcp://10.0.0.1:2376"
                $0.runtimePull = false
            }.validated(), "the endpoint is only used for the runtime's pull")
    }

    func testTheNodesFactsAreKubeletsDNSSettingsAndItsRuntimes() throws {
        let root = try TemporaryHostRoot("node-facts")
        try root.put(
            "/var/lib/kubelet/config.yaml",
            "clusterDNS:\n- 10.43.0.10\nresolvConf: /etc/k8s-resolv.conf\ncontainerRuntimeEndpoint: unix:///run/k3s/containerd/containerd.sock\n"
        )
        let facts = NodeHostFacts.gather(root.files)
        XCTAssertEqual(facts.kubelet?.clusterDNS.map(\.description), ["10.43.0.10"])
        XCTAssertEqual(facts.kubelet?.containerRuntimeEndpoint, "unix:///run/k3s/containerd/containerd.sock")
        XCTAssertNil(facts.kubeletProblem)
        XCTAssertEqual(facts.runtimeProcesses.count, 0, "no /proc under this root")
        try FileManager.default.removeItem(atPath: root.directory + "/var/lib/kubelet/config.yaml")
        try FileManager.default.createDirectory(atPath: root.directory + "/var/lib/kubelet/config.yaml", withIntermediateDirectories: true)
        XCTAssertNotNil(NodeHostFacts.gather(root.files).kubeletProblem, "a folder where kubelet's file is: the reason is kept")
    }
}
