import HostSystem
import Transport
import Vocabulary

/// The two DNS checks: the cluster DNS asked directly, and the host's own resolution path.
public enum DNSProbe {
    /// `family`: ask only for that family's record (A or AAAA), one question; nil asks for A,
    /// then AAAA when A has none.
    public static func cluster(
        name: DomainName, server: IPAddress, client: DNSClient, family: IPAddress.Family? = nil
    ) -> (CheckResult, [IPAddress]) {
        var watch = Stopwatch()
        let answer =
            switch family {
            case nil: client.lookup(name, server: server)
            case .v4: client.query(name, type: .a, server: server)
            case .v6: client.query(name, type: .aaaa, server: server)
            }
        watch.lap("resolve")
        var details = ["server": server.description, "answer": answer.summary]
        if let family { details["asked"] = family == .v4 ? "A" : "AAAA" }
        switch answer {
        case .addresses(let a):
            details["addresses"] = a.map(\.description).joined(separator: ",")
            return (
                CheckResult(
                    name: "dns-cluster", outcome: .pass, reason: "the cluster DNS \(server) resolves \(name) to \(answer.summary)",
                    durationSeconds: watch.elapsed, phases: watch.phases, details: details), a
            )
        case .nxdomain:
            return (
                fail(
                    "dns-cluster",
                    "the cluster DNS \(server) answered NXDOMAIN for \(name): no such Service; check the registry's Service name and namespace",
                    watch, details), []
            )
        case .timeout, .unreachable:
            return (
                fail(
                    "dns-cluster",
                    "the cluster DNS \(server) did not answer (\(answer.summary)): is the address right (kubelet's clusterDNS) and is kube-proxy ready on this node?",
                    watch, details), []
            )
        default:
            return (fail("dns-cluster", "the cluster DNS \(server) answered \(answer.summary) for \(name)", watch, details), [])
        }
    }

    public static func host(name: DomainName, resolver: HostResolver, checkName: String = "dns-host") -> (CheckResult, [IPAddress]) {
        var watch = Stopwatch()
        let resolution: HostResolver.Resolution
        do {
            resolution = try resolver.resolve(name)
        } catch {
            watch.lap("resolve")
            return (fail(checkName, "cannot read the host's resolver configuration: \(error)", watch, [:]), [])
        }
        watch.lap("resolve")
        var details = ["source": resolution.source, "asked": resolution.asked.joined(separator: ","), "answer": resolution.answer.summary]
        switch resolution.answer {
        case .addresses(let a):
            details["addresses"] = a.map(\.description).joined(separator: ",")
            return (
                CheckResult(
                    name: checkName, outcome: .pass,
                    reason:
                        "the host resolves \(name)\(resolution.name == name.name ? "" : " as \(resolution.name)") to \(resolution.answer.summary) (via \(resolution.source))",
                    durationSeconds: watch.elapsed, phases: watch.phases, details: details), a
            )
        case .nxdomain:
            return (
                fail(
                    checkName,
                    "the host's resolver (\(resolution.source)) answered NXDOMAIN for \(name): containerd will not find the registry; the cluster domain is not routed to the cluster DNS",
                    watch, details), []
            )
        default:
            return (
                fail(
                    checkName,
                    "the host cannot resolve \(name): \(resolution.answer.summary) (asked \(resolution.asked.joined(separator: ", ")))",
                    watch, details), []
            )
        }
    }

    static func fail(_ name: String, _ reason: String, _ watch: Stopwatch, _ details: [String: String]) -> CheckResult {
        CheckResult(name: name, outcome: .fail, reason: reason, durationSeconds: watch.elapsed, phases: watch.phases, details: details)
    }
}
