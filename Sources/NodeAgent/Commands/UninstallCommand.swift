import AgentCore
import ArgumentParser
import FoundationEssentials
import Glibc
import HostSystem
import Kubernetes
import ResolvedConfig
import SystemBus
import TrustStore
import Vocabulary

struct UninstallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uninstall",
        abstract: "Remove what the agent put on the node: its CA files, certs.d folders, DNS link and settings; rebuild the OS bundle.",
        discussion: """
            Only what carries the agent's marks is removed; files of others are never touched. With \
            --node-name (or in the agent's pod), the node's condition is removed too. Exit status: 0 \
            done, 2 bad input or usage (nothing changed), 3 the host could not be changed.

            Every option can also be set by its NODE_AGENT_* variable (shown with each option) or by a \
            line of a --config file; the command line wins, then the environment, then the file.

            EXAMPLES:
              # What would be removed; nothing is removed
              node-agent uninstall --dry-run
              # Remove what was installed for one registry only
              node-agent uninstall --registry registry.openfaas.svc.cluster.local:5000
              # From a pod: the node's / at /host, and the node's condition
              node-agent uninstall --host-root /host --node-name "$NODE_NAME" -o json
            """
    )

    @Option(help: "Folder where the node's / is seen (/host in a pod). (env: NODE_AGENT_HOST_ROOT)")
    var hostRoot: String = "/"

    @Option(
        help:
            "Remove only what was installed for this registry (HOST[:PORT]); default: everything of the agent's. (env: NODE_AGENT_REGISTRY)"
    )
    var registry: String?

    @Option(
        help: "D-Bus address of the host's system bus (default: the host root's run/dbus/system_bus_socket). (env: NODE_AGENT_DBUS_ADDRESS)"
    )
    var dbusAddress: String?

    @Option(name: [.short, .long], help: "Output format: text, or the report's object as json or yaml. (env: NODE_AGENT_OUTPUT)")
    var output: OutputFormat = .text

    @Option(help: "How the OS trust bundle is rebuilt: auto, tool or native (see bootstrap). (env: NODE_AGENT_TRUST_REFRESH)")
    var trustRefresh: TrustRefreshMode = .auto

    @Option(
        help: ArgumentHelp(
            "Seconds a host tool may run before it is stopped and reported (see bootstrap). (env: NODE_AGENT_TOOL_TIMEOUT)",
            valueName: "seconds"))
    var toolTimeout: Double = 300

    @OptionGroup var kube: KubeOptions

    @Option(
        help:
            "The startup taint `run` removes (its --startup-taint): removed from the node too, so that a node left tainted (it never could pull) is not left so for good. (env: NODE_AGENT_STARTUP_TAINT)"
    )
    var startupTaint: String?

    @OptionGroup var configFile: ConfigOption

    @Flag(help: "Print what would be removed, remove nothing. (env: NODE_AGENT_DRY_RUN)")
    var dryRun = false

    func run() throws {
        let uninstall = Uninstall(
            root: try HostRoot(hostRoot), registry: try registry.map { try RegistryAddress($0) }, dbusAddress: dbusAddress,
            refreshMode: trustRefresh, runner: try ChangeOptions.runner(toolTimeout: toolTimeout), dryRun: dryRun)
        // The node's options are checked before anything on the host is removed.
        let reporter = uninstall.registry == nil ? try kube.reporter(startupTaint: nil) : nil
        var report = try uninstall.run()
        if let reporter {
            report.changes.append("remove the \(reporter.conditionType) condition of node \(reporter.node)")
            if !dryRun { try reporter.clear() }
            if let key = startupTaint {
                if dryRun {
                    report.changes.append("remove the startup taint \(key) of node \(reporter.node), if it has it")
                } else {
                    report.changes += try reporter.removeTaint(key)
                }
            }
        }
        writeStandard(output.render(json: report.json, text: report.uninstallText))
    }
}
