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
        discussion: "Only what carries the agent's marks is removed; files of others are never touched. Exit status: 0 done, 2 bad input, 3 the host could not be changed."
    )

    @Option(help: "Folder where the node's / is seen (/host in a pod).")
    var hostRoot: String = "/"

    @Option(help: "Remove only what was installed for this registry (HOST[:PORT]); default: everything of the agent's.")
    var registry: String?

    @Option(help: "D-Bus address of the host's system bus (default: the host root's run/dbus/system_bus_socket).")
    var dbusAddress: String?

    @Option(help: "Report format: text or json.")
    var output: OutputFormat = .text

    @Option(help: "How the OS trust bundle is rebuilt: tool or native (see bootstrap).")
    var trustRefresh: TrustRefreshMode = .tool

    @Option(help: "Seconds a host tool may run before it is stopped and reported (see bootstrap).")
    var toolTimeout: Double = 300

    @OptionGroup var kube: KubeOptions

    @Flag(help: "Print what would be removed, remove nothing.")
    var dryRun = false

    func run() throws {
        let registry = try self.registry.map { try RegistryAddress($0) }
        let root = try HostRoot(hostRoot)
        let files = HostFiles(root: root, ledger: HostFiles.defaultLedger)
        let runner = try ChangeOptions.runner(toolTimeout: toolTimeout)
        let trust = TrustInstaller(files: files, runner: runner, refreshMode: trustRefresh)
        let plan = try trust.planRemoval(registry: registry)
        var changes = plan.summary
        var notes: [String] = []
        if !dryRun { try trust.apply(plan) }

        // The DNS route is shared by every registry of the cluster domain: it goes with the last one.
        let layout = try trust.layout()
        let othersRemain = try registry != nil && !files.list(layout.anchors).filter { $0.hasPrefix(layout.filePrefix(nil)) }.isEmpty
        if othersRemain {
            notes.append("the DNS route stays: other registries of the agent's remain")
        } else {
            let address = dbusAddress ?? SystemBus.address(hostRoot: root.directory)
            changes += try DNSSetup.removeAll(files: files, runner: runner, bus: try? SystemBus(address: address), busAddress: address, dryRun: dryRun)
        }
        if !dryRun {
            changes += try trust.removeCreatedDirectories().map { "remove folder \($0): created by the agent, empty now" }
        }
        if registry == nil, let reporter = try kube.reporter(startupTaint: nil, heartbeat: 0) {
            changes.append("remove the \(reporter.conditionType) condition of node \(reporter.node)")
            if !dryRun { try reporter.clear() }
        }
        let report = Report(ready: false, dryRun: dryRun, registry: registry?.description ?? "every registry", changes: changes,
                            notes: notes, checks: [])
        writeStandard((output == .json ? report.json() : report.uninstallText()))
    }
}

