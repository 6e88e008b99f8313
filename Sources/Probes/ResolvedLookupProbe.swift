import HostSystem
import Transport
import Vocabulary

/// Asks systemd-resolved itself (`ResolveHostname` over D-Bus), as its own clients are answered:
/// shows whether resolved routes the cluster domain, independent of what /etc/resolv.conf says.
public enum ResolvedLookupProbe {
    public static func run(name: DomainName, lookup: (String) throws -> [IPAddress]) -> CheckResult {
        var watch = Stopwatch()
        do {
            let addresses = try lookup(name.name)
            watch.lap("resolve")
            guard !addresses.isEmpty else {
                return CheckResult(
                    name: "dns-resolved", outcome: .fail, reason: "resolved returned no address for \(name)",
                    durationSeconds: watch.elapsed, phases: watch.phases)
            }
            let list = addresses.map(\.description).joined(separator: ", ")
            return CheckResult(
                name: "dns-resolved", outcome: .pass, reason: "systemd-resolved resolves \(name) to \(list)",
                durationSeconds: watch.elapsed, phases: watch.phases, details: ["addresses": list])
        } catch {
            watch.lap("resolve")
            return CheckResult(
                name: "dns-resolved", outcome: .fail, reason: "systemd-resolved cannot resolve \(name): \(error)",
                durationSeconds: watch.elapsed, phases: watch.phases)
        }
    }
}
