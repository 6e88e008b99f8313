import ArgumentParser
import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

@main
struct NodeAgent: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node-agent",
        abstract: "Makes a Kubernetes node able to pull from the cluster's own registry: CA trust, cluster DNS on the host, proof.",
        version: BuildInfo.current.summary,
        subcommands: [
            BootstrapCommand.self, ProbeCommand.self, UninstallCommand.self, RunCommand.self, StatusCommand.self, VersionCommand.self,
        ]
    )

    /// The agent's version, stamped by scripts/build-release ("dev" otherwise): BuildInfo.
    static let version = BuildInfo.current.version

    /// Every option also reads `NODE_AGENT_<OPTION>` (e.g. NODE_AGENT_CLUSTER_DNS) when it is not
    /// on the command line; the command line wins.
    static func main() {
        // A peer that resets a TLS connection must give an error, not end the agent: OpenSSL
        // writes to the socket with write(2), which raises SIGPIPE. Host tools start with every
        // signal at its default (ProcessRunner).
        signal(SIGPIPE, SIG_IGN)
        do {
            let arguments = try EnvironmentOptions.arguments(
                CommandLine.arguments.dropFirst().map { $0 },
                environment: ProcessInfo.processInfo.environment)
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch let error as AgentError {
            writeStandard("node-agent: error: \(Redaction.text(error.description))\n", to: 2)
            Glibc.exit(ExitStatus.of(error))
        } catch let error as StatusCommand.NoReport {
            writeStandard("node-agent: no report: \(error.message)\n" + (error.hint.map { "  \($0)\n" } ?? ""), to: 2)
            Glibc.exit(StatusCommand.noReport)
        } catch {
            exit(withError: error)
        }
    }
}

enum ExitStatus {
    static let ready: Int32 = 0
    static let notReady: Int32 = 1
    static let invalidInput: Int32 = 2
    static let hostFailure: Int32 = 3

    static func of(_ error: AgentError) -> Int32 {
        switch error.code {
        case .invalidInput, .invalidCertificate: return invalidInput
        default: return hostFailure
        }
    }
}
