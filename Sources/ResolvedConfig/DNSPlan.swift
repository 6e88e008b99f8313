import HostSystem
import Vocabulary

/// What routing the cluster domain takes on this node: the mode, why, and every change. Computed
/// by `make(_:_:)` from facts alone; `DNSSetup.apply` performs it.
public struct DNSPlan: Sendable {
    public var mode: DNSMode
    public var reason: String
    public var routePlan: DNSRoutePlan?
    public var removeLink = false
    public var fileChanges: [FileChange] = []
    /// systemd's method on systemd-resolved.service after the files change.
    public var resolvedAction: String?

    /// How resolved is made to read its files again, added or removed: from systemd 256 its unit
    /// reloads (Type=notify-reload; its PID, cache of links and connections stay, measured on
    /// 257 and 262), before that only a restart does.
    public static func readFilesAction(systemdVersion: Int?) -> String {
        (systemdVersion ?? 0) >= 256 ? "ReloadOrRestartUnit" : "RestartUnit"
    }
    /// networkd re-reads its .network files (before the link gets its settings).
    public var reloadNetworkd = false
    public var notes: [String] = []
    /// The plan takes away what another DNS mode of the agent's left (its link, files or
    /// /etc/hosts lines): the mode changed since the agent last set it.
    public var replacesAnotherMode = false

    public var summary: [String] {
        var lines = routePlan?.summary ?? []
        if removeLink { lines.append("remove the agent's link (another DNS mode is in use)") }
        lines += fileChanges.map(\.description)
        if reloadNetworkd { lines.append("reload systemd-networkd: make it re-read its .network files") }
        if let resolvedAction { lines.append("\(resolvedAction) systemd-resolved.service: make resolved read its files") }
        return lines
    }

    /// The plan for `desired` on a node with these facts, in the mode they carry (asked for or,
    /// for `auto`, chosen by `DNSModeChoice`); what other modes of the agent's left goes. Reads nothing.
    public static func make(_ facts: DNSFacts, _ desired: DNSDesired, linkName: String = AgentLink.defaultName) throws -> DNSPlan {
        let mode = facts.mode.mode
        var plan = DNSPlan(mode: mode, reason: facts.mode.reason)
        plan.notes = facts.host.notes
        try checkMulticastDNS(facts.host, desired, mode: mode, &plan.notes)
        plan.notes += globalClusterDNSNote(facts.host, desired)
        switch mode {
        case .auto:
            preconditionFailure("DNSModeChoice never chooses auto")
        case .link:
            try plan.addLink(facts, desired, linkName: linkName)
        case .dropin:
            try plan.addDropIn(facts, desired)
        case .delegate:
            try plan.addDelegate(facts, desired)
        case .hosts:
            plan.fileChanges += hostsChanges(facts, desired, &plan.notes)
        }
        plan.removeOtherModes(facts)
        return plan
    }

    /// resolved's global DNS= from files not the agent's holds the cluster DNS (a manual recipe).
    static func globalClusterDNSNote(_ host: DNSHostFacts, _ desired: DNSDesired) -> [String] {
        guard let conf = host.resolvedConf, conf.dnsAddresses.contains(desired.clusterDNS) else { return [] }
        let foreign = conf.dnsFiles.filter { $0 != ResolvedFiles.dropIn.description }
        guard !foreign.isEmpty else { return [] }
        return [
            "resolved's global DNS= is \(conf.dns.joined(separator: " ")) (from \(foreign.joined(separator: ", "))): it holds the cluster DNS \(desired.clusterDNS) (a manual recipe?), so every host lookup may go to it and it is written into /run/systemd/resolve/resolv.conf, the CoreDNS loop; the agent leaves files it does not own alone: remove that DNS= entry, the agent routes \(desired.domain) without it"
        ]
    }

    static func ensure(_ facts: DNSFacts, _ path: HostPath, _ text: String, _ reason: String) -> FileChange? {
        FileChange.ensure(path, holds: Array(text.utf8), current: facts.files[path].map { Array($0.utf8) }, reason: reason)
    }

    /// The link mode: networkd kept off the agent's link, the link and its settings.
    mutating func addLink(_ facts: DNSFacts, _ desired: DNSDesired, linkName: String) throws {
        guard facts.host.resolvedOnBus else {
            throw AgentError(
                .unsupportedHost, "systemd-resolved is not on the system bus: the link mode needs it",
                hint: "start systemd-resolved, or use --dns-mode hosts")
        }
        if facts.host.networkdOnBus {
            let text = ResolvedFiles.renderNetworkdUnmanaged(linkNames: [linkName, linkName + "-new", linkName + "p"])
            if let c = Self.ensure(
                facts, ResolvedFiles.networkdUnmanaged, text,
                "networkd leaves \(linkName) alone (Unmanaged=yes): resolved refuses settings on links networkd manages")
            {
                fileChanges.append(c)
                reloadNetworkd = true
            }
        }
        routePlan = try ClusterDNSRoute.plan(
            linkName: linkName, observed: facts.link, current: facts.linkSettings,
            clusterDNS: desired.clusterDNS, domain: desired.domain)
        // A hardened resolved: its global modes would apply to a link that sets none.
        if let conf = facts.host.resolvedConf {
            let strict = [("DNSOverTLS", ["yes", "opportunistic"]), ("DNSSEC", ["yes", "allow-downgrade"])].compactMap {
                key, modes -> String? in
                guard let value = conf.settings[key]?.values.last?.lowercased(), modes.contains(value) else { return nil }
                return "\(key)=\(value)"
            }
            if !strict.isEmpty {
                notes.append(
                    "resolved's global \(strict.joined(separator: " ")) would apply to the agent's link: it sets its own DNSOverTLS=no DNSSEC=no for the cluster DNS (plain DNS on 53, unsigned cluster zones); the host's other lookups keep the node's policy"
                )
            }
        }
        if !facts.host.clientsUseStub {
            notes.append(
                "the host's programs do not ask resolved's stub (/etc/resolv.conf is \(facts.host.resolvConfMode.rawValue)): the link routes resolved's own lookups only"
            )
        }
    }

    /// The dropin mode: only with --accept-global-dns, and not where DNSOverTLS is strict.
    mutating func addDropIn(_ facts: DNSFacts, _ desired: DNSDesired) throws {
        if let strict = facts.host.resolvedConf?.strictDNSOverTLS {
            throw AgentError(
                .unsupportedHost,
                "--dns-mode dropin cannot work here: \(ResolvedConfiguration.describe(strict, "DNSOverTLS")) applies to the global servers a drop-in adds, so resolved would ask the cluster DNS \(desired.clusterDNS) over TLS on port 853, where kube-dns does not answer; a drop-in can set DNSOverTLS= only for every lookup of the host, which the agent does not change",
                hint: "use --dns-mode link (its own link sets DNSOverTLS=no) or hosts")
        }
        guard desired.acceptGlobalDNS else {
            throw AgentError(
                .invalidInput,
                "--dns-mode dropin puts the cluster DNS in resolved's global DNS=, which gets every lookup of the host and is written into /run/systemd/resolve/resolv.conf (a CoreDNS loop when kubelet hands that file to CoreDNS)",
                hint: "use --dns-mode link (or auto); pass --accept-global-dns to do it anyway")
        }
        let text = ResolvedFiles.renderDropIn(clusterDNS: desired.clusterDNS, domain: desired.domain)
        if let c = Self.ensure(facts, ResolvedFiles.dropIn, text, "resolved drop-in: DNS=\(desired.clusterDNS) Domains=~\(desired.domain)")
        {
            fileChanges.append(c)
            resolvedAction = Self.readFilesAction(systemdVersion: facts.host.systemdVersion)
        }
        notes.append(
            "dropin mode: every host lookup may go to the cluster DNS, and it is listed in /run/systemd/resolve/resolv.conf (accepted with --accept-global-dns)"
        )
    }

    /// The delegate mode: systemd 258 and later, and not where DNSOverTLS is strict.
    mutating func addDelegate(_ facts: DNSFacts, _ desired: DNSDesired) throws {
        guard let version = facts.host.systemdVersion, version >= 258 else {
            throw AgentError(
                .unsupportedHost,
                "systemd \(facts.host.systemdVersion.map(String.init) ?? "of unknown version") has no dns-delegate.d (it came in 258)",
                hint: "use --dns-mode link (or auto)")
        }
        if let strict = facts.host.resolvedConf?.strictDNSOverTLS {
            throw AgentError(
                .unsupportedHost,
                "--dns-mode delegate cannot work here: \(ResolvedConfiguration.describe(strict, "DNSOverTLS")) applies to a delegate's scope (\(DNSHostFacts.delegateKeys)), so resolved would ask the cluster DNS \(desired.clusterDNS) over TLS on port 853, where kube-dns does not answer",
                hint: "use --dns-mode link (its own link sets DNSOverTLS=no), auto (which picks it here) or hosts")
        }
        let text = ResolvedFiles.renderDelegate(clusterDNS: desired.clusterDNS, domain: desired.domain)
        if let c = Self.ensure(facts, ResolvedFiles.delegate, text, "resolved DNS delegate for \(desired.domain)") {
            fileChanges.append(c)
            resolvedAction = "ReloadOrRestartUnit"
        }
    }

    /// One mode at a time: what other modes of the agent's left goes.
    mutating func removeOtherModes(_ facts: DNSFacts) {
        if mode != .link, case .ours = facts.link.state {
            removeLink = true
            replacesAnotherMode = true
        }
        for (other, path) in [(DNSMode.dropin, ResolvedFiles.dropIn), (.delegate, ResolvedFiles.delegate)] where other != mode {
            if ResolvedFiles.isOurs(facts.files[path]) {
                fileChanges.append(
                    FileChange(kind: .remove, path: path, reason: "the agent's \(other.rawValue) file (another DNS mode is in use)"))
                replacesAnotherMode = true
                resolvedAction = resolvedAction ?? Self.readFilesAction(systemdVersion: facts.host.systemdVersion)
            }
        }
        if mode != .link, ResolvedFiles.isOurs(facts.files[ResolvedFiles.networkdUnmanaged]) {
            fileChanges.append(
                FileChange(kind: .remove, path: ResolvedFiles.networkdUnmanaged, reason: "the agent's networkd file (its link is not used)")
            )
            reloadNetworkd = facts.host.networkdOnBus
        }
        if mode != .hosts,
            let change = ResolvedFiles.hostsChange(
                facts.files[ResolvedFiles.hosts], entries: [], reason: "the agent's /etc/hosts lines go (another DNS mode is in use)")
        {
            fileChanges.append(change)
            replacesAnotherMode = true
        }
    }

    /// nss-mdns before DNS on the hosts line: a route through DNS cannot work where its
    /// source ends the lookup (an error for a mode asked for), and waits where it delays it (a
    /// note); hosts mode's lines work where `files` comes first, and nothing the agent writes
    /// where it does not.
    static func checkMulticastDNS(_ host: DNSHostFacts, _ desired: DNSDesired, mode: DNSMode, _ notes: inout [String]) throws {
        guard let effect = host.multicastDNS.effect(of: host.nsswitchHosts, on: desired.registryHost) else { return }
        let why = host.multicastDNSReason(effect, desired.registryHost)
        let fix =
            "remove [NOTFOUND=return] after that source, or leave \(desired.domain) out of /etc/mdns.allow (its entries are name suffixes)"
        guard effect.filesFirst else {
            notes.append("\(why); files comes after it, so no DNS mode of the agent's (not even /etc/hosts lines) is read in time: \(fix)")
            return
        }
        switch (effect, mode) {
        case (_, .hosts):
            return
        case (.ends, _):
            throw AgentError(
                .unsupportedHost, "--dns-mode \(mode.rawValue) cannot work here: \(why)",
                hint: "use --dns-mode hosts (or auto): /etc/hosts lines are read before it; or \(fix)")
        case (.waits, _):
            notes.append("\(why): --dns-mode hosts (or auto) answers from /etc/hosts before it")
        }
    }

    /// The registry's name as the cluster DNS answered it, and its aliases (short forms the host
    /// could not resolve otherwise) with the same addresses. When the cluster DNS could not
    /// answer, the earlier lines stay, so an outage of the cluster DNS does not remove them; when
    /// it was not asked (a dry run), nothing changes and the note says so.
    static func hostsChanges(_ facts: DNSFacts, _ desired: DNSDesired, _ notes: inout [String]) -> [FileChange] {
        let host = desired.registryHost
        let current = facts.files[ResolvedFiles.hosts]
        let names = [host] + desired.aliases.filter { $0 != host }
        var entries: [(IPAddress, DomainName)]
        switch facts.clusterAnswer {
        case nil:
            notes.append(
                "the cluster DNS is not asked in a dry run: a run writes /etc/hosts lines for \(names.map(\.description).joined(separator: ", ")) from its answer"
            )
            return []
        case .addresses(let addresses)?:
            entries = names.flatMap { name in addresses.map { ($0, name) } }
        case let answer?:
            entries = ResolvedFiles.hostsEntries(current ?? "").filter { names.contains($0.1) }
            notes.append(
                "the cluster DNS answered \(answer.summary) for \(host): \(entries.isEmpty ? "no /etc/hosts line can be written" : "the earlier /etc/hosts lines stay")"
            )
        }
        let reason =
            entries.isEmpty
            ? "the agent's /etc/hosts lines go" : "/etc/hosts lines for \(entries.map { "\($0.1)=\($0.0)" }.joined(separator: ", "))"
        return ResolvedFiles.hostsChange(current, entries: entries, reason: reason).map { [$0] } ?? []
    }
}
