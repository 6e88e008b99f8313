import AgentCore
import ArgumentParser
import FoundationEssentials
import Glibc
import HostSystem
import Probes
import Vocabulary

@main
struct NodeAgent: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node-agent",
        abstract: "Makes a Kubernetes node able to pull from the cluster's own registry: CA trust, cluster DNS on the host, proof.",
        discussion: rootDiscussion,
        version: BuildInfo.current.summary,
        subcommands: [
            BootstrapCommand.self, ProbeCommand.self, UninstallCommand.self, RunCommand.self, StatusCommand.self, VersionCommand.self,
        ]
    )

    /// The agent's version, stamped by scripts/build-release ("dev" otherwise): BuildInfo.
    static let version = BuildInfo.current.version

    static let rootDiscussion = """
        Every option can also be set by its NODE_AGENT_<OPTION> variable (e.g. NODE_AGENT_REGISTRY, \
        shown in each command's help) or by a line of a --config file; the command line wins, then \
        the environment, then the file. Exit status: 0 ready (or done), 1 not ready, 2 bad input or \
        usage (one line on stderr; nothing changed), 3 the host could not be changed or read, 4 \
        (status) no usable report from the running agent.

        EXAMPLES:
          node-agent bootstrap --ca ca.crt \\
            --registry registry.openfaas.svc.cluster.local:5000
          node-agent probe --registry registry.openfaas.svc.cluster.local:5000 -o yaml
          node-agent status
          node-agent probe --help
        """

    /// Every option also reads `NODE_AGENT_<OPTION>` (e.g. NODE_AGENT_CLUSTER_DNS) when it is not
    /// on the command line; the command line wins.
    static func main() {
        // A peer that resets a TLS connection must give an error, not end the agent: OpenSSL
        // writes to the socket with write(2), which raises SIGPIPE. Host tools start with every
        // signal at its default (ProcessRunner).
        signal(SIGPIPE, SIG_IGN)
        var input = CommandLineInput(arguments: [], sources: [:])
        do {
            input = try EnvironmentOptions.resolve(
                CommandLine.arguments.dropFirst().map { $0 },
                environment: ProcessInfo.processInfo.environment)
            // The CRI helper for bootstrap's pull, started before the parse and the settings:
            // its start runs on the CPU they leave idle; ended here when the run did not take it.
            if Self.startsTheHelperAhead(input.arguments) { HelperStandby.start(helper: Bootstrap.criHelper) }
            defer { HelperStandby.release() }
            var command: ParsableCommand
            do {
                command = try parseAsRoot(input.arguments)
            } catch let error where exitCode(for: error) == .validationFailure {
                // ArgumentParser's usage errors (exit 64, four lines): one line, exit 2.
                throw UsageFailure(message: message(for: error), command: input.command)
            }
            try command.run()
        } catch let error as UsageFailure {
            writeStandard("node-agent: error: \(Redaction.text(input.usageLine(error.message, command: error.command)))\n", to: 2)
            Glibc.exit(ExitStatus.invalidInput)
        } catch var error as AgentError {
            // An option from NODE_AGENT_* or the config file is named as the user set it.
            error.message = input.naming(error.message)
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

extension NodeAgent {
    /// Whether the command line, as EnvironmentOptions filled it, is a bootstrap that will pull:
    /// not its help, its version or a dry run (which start no helper), nor another command. Read
    /// before the parse, so a line that does not parse may say yes: the helper started for it
    /// ends unused (`HelperStandby.release`), as one does when the run stops before its pull.
    static func startsTheHelperAhead(_ arguments: [String]) -> Bool {
        guard arguments.first == "bootstrap" else { return false }
        let options = arguments.dropFirst().prefix { $0 != "--" }
        return !options.contains { ["--help", "-h", "--version", "--dry-run"].contains($0) }
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
