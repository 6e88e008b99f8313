import AgentCore
import ArgumentParser
import FoundationEssentials
import Glibc
import HostSystem
import ResolvedConfig
import Vocabulary

struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Check, without changing anything, that this node can pull from the registry; exit 0 only when ready.",
        discussion: """
            Exit status: 0 ready, 1 not ready, 2 bad input or usage, 3 the host could not be read.

            Every option can also be set by its NODE_AGENT_* variable (shown with each option) or by a \
            line of a --config file; the command line wins, then the environment, then the file.

            EXAMPLES:
              # Can this node pull from the registry? (cluster DNS from kubelet's config)
              node-agent probe --registry registry.openfaas.svc.cluster.local:5000
              # The report as JSON, with the pull secret's credentials tried
              node-agent probe --registry-auth config.json -o json \\
                --registry registry.openfaas.svc.cluster.local:5000
              # From a pod that mounts the node's / at /host
              NODE_AGENT_HOST_ROOT=/host \\
                NODE_AGENT_REGISTRY=registry.openfaas.svc.cluster.local:5000 \\
                node-agent probe
            """
    )

    @OptionGroup var node: NodeOptions

    @OptionGroup var configFile: ConfigOption

    func run() throws {
        let config = try NodeConfig(node, caFile: nil, dryRun: false)
        let report = try Bootstrap(config: config, runner: ProcessRunner(), refreshMode: .tool).probeOnly()
        writeStandard(node.output.render(json: report.json, text: report.text))
        if !report.ready { throw ExitCode(ExitStatus.notReady) }
    }
}
