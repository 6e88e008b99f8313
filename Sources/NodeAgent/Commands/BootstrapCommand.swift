import ArgumentParser
import Foundation
import HostSystem

enum OutputFormat: String, ExpressibleByArgument, CaseIterable { case text, json }

struct BootstrapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bootstrap",
        abstract: "Install the registry CA, route the cluster domain to the cluster DNS, probe; exit 0 only when ready to pull.",
        discussion: "Exit status: 0 ready (or, with --dry-run, planned), 1 not ready, 2 bad input (nothing changed), 3 the host could not be changed."
    )

    @Option(help: "Folder where the node's / is seen (/host in a pod).")
    var hostRoot: String = "/"

    @Option(help: "PEM (or DER) file with the registry's CA certificate(s).")
    var ca: String

    @Option(help: "The registry as images name it: HOST[:PORT] (port 443 when omitted).")
    var registry: String

    @Option(help: "The cluster DNS (kube-dns Service) IP address.")
    var clusterDns: String

    @Option(help: "The cluster domain routed to the cluster DNS.")
    var domain: String = "svc.cluster.local"

    @Option(help: "D-Bus address of the host's system bus (default: the host root's run/dbus/system_bus_socket).")
    var dbusAddress: String?

    @Option(help: "Report format: text or json.")
    var output: OutputFormat = .text

    @Option(help: "Seconds allowed per probe phase.")
    var timeout: Double = 5

    @Flag(help: "Print what would change, change nothing.")
    var dryRun = false

    func run() throws {
        let config = try BootstrapConfig(hostRoot: hostRoot, caFile: ca, registry: registry, clusterDNS: clusterDns,
                                         domain: domain, dbusAddress: dbusAddress, timeout: timeout, dryRun: dryRun)
        let report = try Bootstrap(config: config, runner: ProcessRunner()).run()
        let text = output == .json ? report.json() : report.text()
        FileHandle.standardOutput.write(Data(text.utf8))
        if !report.ready && !report.dryRun { throw ExitCode(ExitStatus.notReady) }
    }
}
