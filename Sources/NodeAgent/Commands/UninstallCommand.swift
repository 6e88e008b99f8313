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
        discussion:
            "Only what carries the agent's marks is removed; files of others are never touched. Exit status: 0 done, 2 bad input, 3 the host could not be changed."
    )

    @Option(help: "Folder where the node's / is seen (/host in a pod).")
    var hostRoot: String = "/"

    @Option(help: "Remove only what was installed for this registry (HOST[:PORT]); default: everything of the agent's.")
    var registry: String?

    @Option(help: "D-Bus address of the host's system bus (default: the host root's run/dbus/system_bus_socket).")
    var dbusAddress: String?

    @Option(help: "Report format: text or json.")
    var output: OutputFormat = .text

    @Option(help: "How the OS trust bundle is rebuilt: auto, tool or native (see bootstrap).")
    var trustRefresh: TrustRefreshMode = .auto

    @Option(help: "Seconds a host tool may run before it is stopped and reported (see bootstrap).")
    var toolTimeout: Double = 300

    @OptionGroup var kube: KubeOptions

    @Flag(help: "Print what would be removed, remove nothing.")
    var dryRun = false

    func run() throws {
        let uninstall = Uninstall(
            root: try HostRoot(hostRoot), registry: try registry.map { try RegistryAddress($0) }, dbusAddress: dbusAddress,
            refreshMode: trustRefresh, runner: try ChangeOptions.runner(toolTimeout: toolTimeout), dryRun: dryRun)
        var report = try uninstall.run()
        if uninstall.registry == nil, let reporter = try kube.reporter(startupTaint: nil, heartbeat: 0) {
            report.changes.append("remove the \(reporter.conditionType) condition of node \(reporter.node)")
            if !dryRun { try reporter.clear() }
        }
        writeStandard((output == .json ? report.json() : report.uninstallText()))
    }
}
