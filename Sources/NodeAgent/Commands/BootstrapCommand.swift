import AgentCore
import ArgumentParser
import FoundationEssentials
import Glibc
import HostSystem
import ResolvedConfig
import Vocabulary

struct BootstrapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bootstrap",
        abstract: "Install the registry CA, route the cluster domain to the cluster DNS, probe; exit 0 only when ready to pull.",
        discussion: """
            Exit status: 0 ready (or, with --dry-run, planned), 1 not ready, 2 bad input or usage \
            (nothing changed), 3 the host could not be changed.

            Every option can also be set by its NODE_AGENT_* variable (shown with each option) or by a \
            line of a --config file; the command line wins, then the environment, then the file.

            EXAMPLES:
              # Trust the registry's CA, route svc.cluster.local to kube-dns, probe a pull
              node-agent bootstrap --ca /etc/registry/ca.crt \\
                --registry registry.openfaas.svc.cluster.local:5000
              # What would change, as YAML; nothing is changed
              node-agent bootstrap --ca ca.crt --dry-run -o yaml \\
                --registry registry.openfaas.svc.cluster.local:5000
              # The options from a file of NODE_AGENT_*=value lines
              node-agent bootstrap --config /etc/node-agent/node-agent.env
            """
    )

    @OptionGroup var node: NodeOptions

    @OptionGroup var configFile: ConfigOption

    @Option(help: "PEM (or DER) file with the registry's CA certificate(s). (env: NODE_AGENT_CA)")
    var ca: String

    @OptionGroup var change: ChangeOptions

    @Flag(help: "Print what would change, change nothing. (env: NODE_AGENT_DRY_RUN)")
    var dryRun = false

    func run() throws {
        // What the user typed is checked before what is worked out from the node (its cluster DNS).
        _ = try ChangeOptions.runner(toolTimeout: change.toolTimeout)
        let config = try NodeConfig(node, caFile: ca, dryRun: dryRun)
        let report = try change.bootstrap(config).run()
        writeStandard(node.output.render(json: report.json, text: report.text))
        if !report.ready && !report.dryRun { throw ExitCode(ExitStatus.notReady) }
    }
}
