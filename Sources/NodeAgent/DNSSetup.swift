import FoundationEssentials
import Glibc
import HostSystem
import Probes
import ResolvedConfig
import SystemBus
import Vocabulary

/// Routes the cluster domain (or, in hosts mode, the registry's names) to the cluster DNS, in
/// the mode asked for or the safest that works here, and removes what other modes left.
struct DNSSetup {
    let config: NodeConfig
    let files: HostFiles
    let runner: CommandRunner
    let bus: SystemBus?
    let requested: DNSMode
    let acceptGlobalDNS: Bool

    struct Plan {
        var mode: DNSMode
        var reason: String
        var route: ClusterDNSRoute?
        var routePlan: DNSRoutePlan?
        var removeLink = false
        var fileChanges: [FileChange] = []
        /// systemd's method on systemd-resolved.service after the files change.
        var resolvedAction: String?
        /// networkd re-reads its .network files (before the link gets its settings).
        var reloadNetworkd = false
        var notes: [String] = []

        var summary: [String] {
            var lines = routePlan?.summary ?? []
            if removeLink { lines.append("remove the agent's link (another DNS mode is in use)") }
            lines += fileChanges.map(\.description)
            if reloadNetworkd { lines.append("reload systemd-networkd: make it re-read its .network files") }
            if let resolvedAction { lines.append("\(resolvedAction) systemd-resolved.service: make resolved read its files") }
            return lines
        }
    }

    func plan() throws -> Plan {
        let facts = DNSHostFacts.discover(files: files, bus: bus)
        var mode = requested
        var reason = "asked for with --dns-mode \(requested.rawValue)"
        if requested == .auto { (mode, reason) = DNSMode.choose(facts) }
        var plan = Plan(mode: mode, reason: reason)
        plan.notes = facts.notes
        if let conf = facts.resolvedConf, conf.dnsAddresses.contains(config.clusterDNS) {
            let foreign = conf.dnsFiles.filter { $0 != ResolvedFiles.dropIn.description }
            if !foreign.isEmpty {
                plan.notes.append("resolved's global DNS= is \(conf.dns.joined(separator: " ")) (from \(foreign.joined(separator: ", "))): it holds the cluster DNS \(config.clusterDNS) (a manual recipe?), so every host lookup may go to it and it is written into /run/systemd/resolve/resolv.conf, the CoreDNS loop; the agent leaves files it does not own alone: remove that DNS= entry, the agent routes \(config.domain) without it")
            }
        }
        let link = try AgentLink(runner: runner)

        switch mode {
        case .auto:
            preconditionFailure("auto is resolved above")
        case .link:
            guard let bus, facts.resolvedOnBus else {
                throw AgentError(.unsupportedHost, "systemd-resolved is not on the system bus: the link mode needs it",
                                 hint: "start systemd-resolved, or use --dns-mode hosts")
            }
            if facts.networkdOnBus {
                let text = ResolvedFiles.renderNetworkdUnmanaged(linkNames: [link.name, link.interimName, link.peerName])
                if let c = try FileChange.ensure(ResolvedFiles.networkdUnmanaged, holds: Array(text.utf8),
                                                 reason: "networkd leaves \(link.name) alone (Unmanaged=yes): resolved refuses settings on links networkd manages",
                                                 files: files) {
                    plan.fileChanges.append(c)
                    plan.reloadNetworkd = true
                }
            }
            let route = ClusterDNSRoute(link: link, resolved: Resolve1(bus: bus))
            plan.route = route
            plan.routePlan = try route.plan(clusterDNS: config.clusterDNS, domain: config.domain)
            if !facts.clientsUseStub {
                plan.notes.append("the host's programs do not ask resolved's stub (/etc/resolv.conf is \(facts.resolvConfMode.rawValue)): the link routes resolved's own lookups only")
            }
        case .dropin:
            guard acceptGlobalDNS else {
                throw AgentError(.invalidInput,
                                 "--dns-mode dropin puts the cluster DNS in resolved's global DNS=, which gets every lookup of the host and is written into /run/systemd/resolve/resolv.conf (a CoreDNS loop when kubelet hands that file to CoreDNS)",
                                 hint: "use --dns-mode link (or auto); pass --accept-global-dns to do it anyway")
            }
            let text = ResolvedFiles.renderDropIn(clusterDNS: config.clusterDNS, domain: config.domain)
            if let c = try FileChange.ensure(ResolvedFiles.dropIn, holds: Array(text.utf8), reason: "resolved drop-in: DNS=\(config.clusterDNS) Domains=~\(config.domain)", files: files) {
                plan.fileChanges.append(c)
                plan.resolvedAction = (facts.systemdVersion ?? 0) >= 256 ? "ReloadOrRestartUnit" : "RestartUnit"
            }
            plan.notes.append("dropin mode: every host lookup may go to the cluster DNS, and it is listed in /run/systemd/resolve/resolv.conf (accepted with --accept-global-dns)")
        case .delegate:
            guard let version = facts.systemdVersion, version >= 258 else {
                throw AgentError(.unsupportedHost, "systemd \(facts.systemdVersion.map(String.init) ?? "of unknown version") has no dns-delegate.d (it came in 258)",
                                 hint: "use --dns-mode link (or auto)")
            }
            let text = ResolvedFiles.renderDelegate(clusterDNS: config.clusterDNS, domain: config.domain)
            if let c = try FileChange.ensure(ResolvedFiles.delegate, holds: Array(text.utf8), reason: "resolved DNS delegate for \(config.domain)", files: files) {
                plan.fileChanges.append(c)
                plan.resolvedAction = "ReloadOrRestartUnit"
            }
        case .hosts:
            plan.fileChanges += try hostsChanges(&plan.notes)
        }

        // One mode at a time: what other modes of the agent's left goes.
        if mode != .link, case .ours = try link.state() { plan.removeLink = true }
        for (other, path) in [(DNSMode.dropin, ResolvedFiles.dropIn), (.delegate, ResolvedFiles.delegate)] where other != mode {
            if ResolvedFiles.isOurs(try files.readString(path)) {
                plan.fileChanges.append(FileChange(kind: .remove, path: path, reason: "the agent's \(other.rawValue) file (another DNS mode is in use)"))
                plan.resolvedAction = plan.resolvedAction ?? "RestartUnit"
            }
        }
        if mode != .link, ResolvedFiles.isOurs(try files.readString(ResolvedFiles.networkdUnmanaged)) {
            plan.fileChanges.append(FileChange(kind: .remove, path: ResolvedFiles.networkdUnmanaged, reason: "the agent's networkd file (its link is not used)"))
            plan.reloadNetworkd = facts.networkdOnBus
        }
        if mode != .hosts, let text = try files.readString(ResolvedFiles.hosts), !ResolvedFiles.hostsEntries(text).isEmpty {
            plan.fileChanges.append(FileChange(kind: .replace, path: ResolvedFiles.hosts, contents: Array(ResolvedFiles.renderHosts(text, entries: []).utf8),
                                               reason: "the agent's /etc/hosts lines go (another DNS mode is in use)"))
        }
        return plan
    }

    /// The registry's name as the cluster DNS answers it now, and its aliases (short forms the
    /// host could not resolve otherwise) with the same addresses. When the cluster DNS cannot
    /// answer, the earlier lines stay, so an outage of the cluster DNS does not remove them.
    func hostsChanges(_ notes: inout [String]) throws -> [FileChange] {
        guard case .name(let host) = config.registry.host else { return [] }
        let current = try files.readString(ResolvedFiles.hosts) ?? ""
        let names = [host] + config.aliases.filter { $0 != host }
        var entries: [(IPAddress, DomainName)]
        switch DNSClient(timeoutMilliseconds: config.timeoutMilliseconds).lookup(host, server: config.clusterDNS) {
        case .addresses(let addresses):
            entries = names.flatMap { name in addresses.map { ($0, name) } }
        case let answer:
            entries = ResolvedFiles.hostsEntries(current).filter { names.contains($0.1) }
            notes.append("the cluster DNS answered \(answer.summary) for \(host): \(entries.isEmpty ? "no /etc/hosts line can be written" : "the earlier /etc/hosts lines stay")")
        }
        let text = ResolvedFiles.renderHosts(current, entries: entries)
        guard text != current else { return [] }
        return [FileChange(kind: current.isEmpty ? .create : .replace, path: ResolvedFiles.hosts, contents: Array(text.utf8),
                           reason: "/etc/hosts lines for \(entries.map { "\($0.1)=\($0.0)" }.joined(separator: ", "))")]
    }

    func apply(_ plan: Plan) throws {
        if plan.removeLink {
            let resolved: ResolvedClient = bus.map { Resolve1(bus: $0) } ?? UnreachableResolved(address: config.dbusAddress)
            _ = try ClusterDNSRoute(link: try AgentLink(runner: runner), resolved: resolved).remove(dryRun: false)
        }
        for change in plan.fileChanges { try change.apply(to: files) }
        if plan.reloadNetworkd, let bus { try Network1(bus: bus).reload() }
        if let route = plan.route, let routePlan = plan.routePlan { try route.apply(routePlan) }
        if let action = plan.resolvedAction { try Self.actOnResolved(action, bus: bus) }
    }

    static func actOnResolved(_ action: String, bus: SystemBus?) throws {
        guard let bus else {
            throw AgentError(.dbus, "systemd-resolved must re-read its files, and the system bus cannot be reached", hint: "restart systemd-resolved on the node")
        }
        _ = try Systemd1(bus: bus).restart("systemd-resolved.service", reloadIfPossible: action == "ReloadOrRestartUnit")
    }

    /// Removes every DNS artefact of the agent's: the link, the drop-in, the delegate, the hosts lines.
    static func removeAll(files: HostFiles, runner: CommandRunner, bus: SystemBus?, busAddress: String, dryRun: Bool) throws -> [String] {
        var done: [String] = []
        let resolved: ResolvedClient = bus.map { Resolve1(bus: $0) } ?? UnreachableResolved(address: busAddress)
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
        if let text = try files.readString(ResolvedFiles.hosts), !ResolvedFiles.hostsEntries(text).isEmpty {
            done.append("remove the agent's lines from /etc/hosts")
            if !dryRun { try files.writeAtomically(ResolvedFiles.hosts, ResolvedFiles.renderHosts(text, entries: [])) }
        }
        if restart {
            done.append("RestartUnit systemd-resolved.service")
            if !dryRun { try actOnResolved("RestartUnit", bus: bus) }
        }
        return done
    }
}
