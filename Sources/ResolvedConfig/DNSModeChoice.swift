import Vocabulary

/// Where the DNS mode is chosen, once per run: the mode asked for with `--dns-mode`, or for
/// `auto` the safest that works on this host, with the reason. `DNSFacts` carries the choice, so
/// what is read for it (the link's settings, the cluster DNS's answer) and the plan agree.
public struct DNSModeChoice: Sendable, Equatable {
    /// Never `auto`.
    public let mode: DNSMode
    public let reason: String

    /// `asked` as asked for, or `auto` resolved from the host's facts; `registry` is the
    /// registry's name (what nss-mdns's sources may take before DNS is asked).
    public init(asked: DNSMode, host: DNSHostFacts, registry: DomainName?) {
        if asked == .auto {
            (mode, reason) = DNSMode.choose(host, for: registry)
        } else {
            (mode, reason) = (asked, "asked for with --dns-mode \(asked.rawValue)")
        }
    }
}

/// How the cluster domain reaches the cluster DNS on this host.
public enum DNSMode: String, Sendable, CaseIterable {
    /// Choose the safest that works here, and say why.
    case auto
    /// A link of the agent's with per-link settings over resolved's D-Bus API (no file, no restart).
    case link
    /// A resolved.conf.d drop-in: persistent, but a global DNS= gets every lookup and leaks into
    /// resolved's resolv.conf; only with --accept-global-dns.
    case dropin
    /// A dns-delegate.d file (systemd 258 and later): persistent and per-domain.
    case delegate
    /// Marked /etc/hosts lines for the registry's names, from the cluster DNS: no resolved needed.
    case hosts

    /// The mode `auto` picks for these facts, with the reason; `name` is the registry's name
    /// (what nss-mdns's sources may take before DNS is asked).
    static func choose(_ facts: DNSHostFacts, for name: DomainName? = nil) -> (DNSMode, String) {
        if !facts.hostsLineAsksDNS {
            return (
                .hosts,
                "nsswitch.conf's hosts line (\(facts.nsswitchHosts?.description ?? "")) asks no DNS source: /etc/hosts lines are what the host's lookups read"
            )
        }
        // nss-mdns taking the name before DNS: `files`, before it, is what answers in time.
        if let name, let effect = facts.multicastDNS.effect(of: facts.nsswitchHosts, on: name), effect.filesFirst {
            return (.hosts, facts.multicastDNSReason(effect, name) + ": /etc/hosts lines, read first (files), answer before it")
        }
        // systemd 258+: a dns-delegate.d file is resolved's own configuration, in /etc. It is
        // there from the next boot on with nothing of the agent's running yet, where the
        // agent's link and its settings (kept in /run through resolved's restarts) last until
        // the node reboots. Measured on 262: ReleaseNodeIntegrationTests. Not where resolved's
        // global DNSOverTLS is strict: a delegate's scope has no mode of its own.
        if facts.resolvedOnBus && facts.clientsUseStub, let strict = facts.resolvedConf?.strictDNSOverTLS,
            let version = facts.systemdVersion, version >= 258
        {
            return (
                .link,
                "systemd \(version) has dns-delegate.d, but \(ResolvedConfiguration.describe(strict, "DNSOverTLS")) applies to a delegate's scope (\(DNSHostFacts.delegateKeys)), so kube-dns would be asked over TLS on port 853: a link of the agent's sets its own DNSOverTLS=no and routes ~domain"
            )
        }
        if facts.resolvedOnBus && facts.clientsUseStub, let version = facts.systemdVersion, version >= 258 {
            return (
                .delegate,
                "systemd \(version) has dns-delegate.d and the host's programs ask resolved's stub: a delegate file routes ~domain, in /etc: resolved has it from boot, before anything of the agent's runs"
            )
        }
        if facts.resolvedOnBus && facts.clientsUseStub {
            return (
                .link,
                "systemd-resolved runs and the host's programs ask its stub: a link of the agent's routes ~domain without files or restarts"
            )
        }
        if !facts.resolvedOnBus {
            return (.hosts, "systemd-resolved is not running: /etc/hosts lines for the registry's names are what every resolver reads")
        }
        return (
            .hosts,
            "the host's programs do not ask resolved's stub (/etc/resolv.conf is \(facts.resolvConfMode.rawValue)): routing domains would not reach them, /etc/hosts does"
        )
    }
}
