import AgentCore
import ArgumentParser
import FoundationEssentials
import Glibc
import HostSystem
import ResolvedConfig
import TrustStore
import Vocabulary

struct BootstrapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bootstrap",
        abstract: "Install the registry CA, route the cluster domain to the cluster DNS, probe; exit 0 only when ready to pull.",
        discussion:
            "Exit status: 0 ready (or, with --dry-run, planned), 1 not ready, 2 bad input (nothing changed), 3 the host could not be changed."
    )

    @OptionGroup var node: NodeOptions

    @Option(help: "PEM (or DER) file with the registry's CA certificate(s).")
    var ca: String

    @OptionGroup var change: ChangeOptions

    @Flag(help: "Print what would change, change nothing.")
    var dryRun = false

    func run() throws {
        let config = try NodeConfig(node, caFile: ca, dryRun: dryRun)
        let report = try change.bootstrap(config).run()
        writeStandard((node.output == .json ? report.json() : report.text()))
        if !report.ready && !report.dryRun { throw ExitCode(ExitStatus.notReady) }
    }
}
