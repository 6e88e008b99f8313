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

    /// Where kubelet's endpoint is not known (no containerRuntimeEndpoint, no --runtime-endpoint),
    /// the runtime's pull goes through the socket the one running containerd serves: here the
    /// one its config file names (`[grpc] address`); before, containerd's default socket, where
    /// nothing listened, and the pull was not asked.
    func testThePullGoesThroughTheRunningContainerdsSocketWhereKubeletNamesNone() throws {
        let root = try TemporaryHostRoot("runtime-socket")
        try root.put("/var/lib/kubelet/config.yaml", "clusterDNS:\n- 10.43.0.10\n")
        try root.put("/etc/containerd/config.toml", "version = 2\n[grpc]\n  address = \"/run/containerd-alt/containerd.sock\"\n")
        try root.put("/proc/42/comm", "containerd\n")
        try root.put("/proc/42/stat", "42 (containerd) S" + String(repeating: " 0", count: 30) + "\n")
        try root.put("/proc/42/cmdline", "containerd\u{0}")
        try root.put("/proc/42/status", "Name:\tcontainerd\nUid:\t0\t0\t0\t0\n")
        try root.put(
            "/proc/net/unix",
            "Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0001 01 4242 /run/containerd-alt/containerd.sock\n"
        )
        var settings = NodeSettings(registry: "registry-service.openfaas.svc.cluster.local:443")
        settings.hostRoot = root.directory
        let config = try NodeConfig(settings, ca: nil, dryRun: true)
        XCTAssertEqual(config.runningContainerd.map(\.socket), ["/run/containerd-alt/containerd.sock"])
        XCTAssertEqual(config.runtimeSocket, root.directory + "/run/containerd-alt/containerd.sock")
        settings.runtimeEndpoint = "unix:///run/containerd/containerd.sock"
        XCTAssertEqual(try NodeConfig(settings, ca: nil, dryRun: true).runtimeSocket, root.directory + "/run/containerd/containerd.sock")
    }
}
