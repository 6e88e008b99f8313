import AgentCore
import ArgumentParser
import FoundationEssentials
import Glibc
import HostSystem
import ResolvedConfig
import TrustStore
import Vocabulary

struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Check, without changing anything, that this node can pull from the registry; exit 0 only when ready.",
        discussion: "Exit status: 0 ready, 1 not ready, 2 bad input."
    )

    @OptionGroup var node: NodeOptions

    func run() throws {
        let config = try NodeConfig(node, caFile: nil, dryRun: false)
        let report = try Bootstrap(config: config, runner: ProcessRunner(), refreshMode: .tool).probeOnly()
        writeStandard((node.output == .json ? report.json() : report.text()))
        if !report.ready { throw ExitCode(ExitStatus.notReady) }
    }
}
