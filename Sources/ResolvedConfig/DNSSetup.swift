import FoundationEssentials
import Glibc
import HostSystem
import SystemBus
import Vocabulary

/// Performs DNS plans on the node (the link over `ip` and resolved's bus API, the files, the
/// reloads), and removes every DNS artefact of the agent's.
public struct DNSSetup {
    public let files: HostFiles
    public let runner: CommandRunner
    public let bus: SystemBus?
    public let busAddress: String

    public init(files: HostFiles, runner: CommandRunner, bus: SystemBus?, busAddress: String) {
        self.files = files
        self.runner = runner
        self.bus = bus
        self.busAddress = busAddress
    }

    var resolved: ResolvedClient { bus.map { Resolve1(bus: $0) } ?? UnreachableResolved(address: busAddress) }

    public func apply(_ plan: DNSPlan) throws {
        if plan.removeLink {
            _ = try ClusterDNSRoute(link: try AgentLink(runner: runner), resolved: resolved).remove(dryRun: false)
        }
        try FileChange.apply(plan.fileChanges, to: files)
        if plan.reloadNetworkd, let bus { try Network1(bus: bus).reload() }
        if let routePlan = plan.routePlan {
            try ClusterDNSRoute(link: try AgentLink(name: routePlan.linkName, runner: runner), resolved: resolved).apply(routePlan)
        }
        if let action = plan.resolvedAction { try Self.actOnResolved(action, bus: bus) }
    }

    static func actOnResolved(_ action: String, bus: SystemBus?) throws {
        guard let bus else {
            throw AgentError(
                .dbus, "systemd-resolved must re-read its files, and the system bus cannot be reached",
                hint: "restart systemd-resolved on the node")
        }
        _ = try Systemd1(bus: bus).restart("systemd-resolved.service", reloadIfPossible: action == "ReloadOrRestartUnit")
    }

    /// Removes every DNS artefact of the agent's: the link, the drop-in, the delegate, the hosts
    /// lines (and /etc/hosts itself where the agent created it and nothing else is in it).
    public func removeAll(dryRun: Bool) throws -> [String] {
        var done: [String] = []
        done += try ClusterDNSRoute(link: try AgentLink(runner: runner), resolved: resolved).remove(dryRun: dryRun)
        var restart = false
        for path in [ResolvedFiles.dropIn, ResolvedFiles.delegate] where ResolvedFiles.isOurs(try files.readString(path)) {
            done.append("remove \(path)")
            restart = true
            if !dryRun { try files.remove(path) }
        }
        if ResolvedFiles.isOurs(try files.readString(ResolvedFiles.networkdUnmanaged)) {
            done.append("remove \(ResolvedFiles.networkdUnmanaged)")
            if !dryRun {
                try files.remove(ResolvedFiles.networkdUnmanaged)
                if let bus, bus.hasOwner(Network1.service) { try Network1(bus: bus).reload() }
            }
        }
        if let change = ResolvedFiles.hostsChange(try files.readString(ResolvedFiles.hosts), entries: [], reason: "the agent's lines go") {
            done.append(
                change.kind == .remove
                    ? "remove /etc/hosts: the agent created it, and its lines were all it held" : "remove the agent's lines from /etc/hosts"
            )
            if !dryRun { try change.apply(to: files) }
        }
        if restart {
            let action = DNSPlan.readFilesAction(systemdVersion: DNSHostFacts.systemdVersion(files: files, bus: bus))
            done.append("\(action) systemd-resolved.service")
            if !dryRun { try Self.actOnResolved(action, bus: bus) }
        }
        return done
    }
}
