import Probes
import Vocabulary

/// The light reconcile's rules: when one will do, what it found moved, and its checks merged
/// into the last full proof's.
extension Reconciler {
    /// A light reconcile where one will do, while the last full proof is younger than its due
    /// time: the node was ready and that proof connected to the registry (the address the light
    /// one asks); or the node is not ready because that proof could not connect to the registry
    /// at all (stopped, no endpoints: the backoff's retries are a TCP connect to where it failed,
    /// and the full proof follows at once when it connects).
    static func lightProof(_ settings: Settings, ready: Bool, proven: Report?, due: UInt64?, now: ReconcileInstant) -> Proof? {
        guard settings.proofInterval > settings.interval, let proven, let due, now.monotonic < due else { return nil }
        if ready {
            guard let address = proven.checks.first(where: { $0.name == "registry-api" })?.details["address"],
                let ip = try? IPAddress(address)
            else { return nil }
            return .light(ip)
        }
        return unreachable(proven).map { .light($0) }
    }

    /// The first address where the report's TCP connect to the registry failed, when it failed
    /// (its details: "ADDRESS:PORT" -> what happened).
    static func unreachable(_ report: Report) -> IPAddress? {
        guard let tcp = report.checks.first(where: { $0.name == "tcp" }), tcp.outcome == .fail else { return nil }
        return tcp.details.filter { $0.value != "connected" }.keys.sorted().lazy
            .compactMap { key in key.lastIndex(of: ":").flatMap { try? IPAddress(String(key[..<$0])) } }.first
    }

    /// What a light reconcile found moved since the last full proof (nil: nothing): a change it
    /// made to the node (drift reapplied), the runtimes' processes (a restart), a check whose
    /// outcome differs (with the full proof's other checks, as `Readiness` settles them), kube-dns
    /// answering other addresses than the full proof's (the registry's Service moved).
    static func moved(_ light: Report, merged: [CheckResult], since proven: Report) -> String? {
        if let change = light.changes.first { return "the reconcile changed the node (\(change))" }
        if light.runtimeProcesses != proven.runtimeProcesses {
            return
                "the runtime's processes changed (\(proven.runtimeProcesses.joined(separator: ", ")) -> \(light.runtimeProcesses.joined(separator: ", ")))"
        }
        // Told as the light check found it (its own outcome and reason), not as merged: beside
        // the last full proof's passing pull a refused connect reads as a warning.
        let fresh = Dictionary(light.checks.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for check in merged {
            guard let own = fresh[check.name] else { continue }
            let was = proven.checks.first { $0.name == check.name }?.outcome
            if was != check.outcome { return "\(check.name) \(own.outcome.verb) (was \(was?.rawValue ?? "not run")): \(own.reason)" }
        }
        func answer(_ r: Report) -> Set<Substring>? {
            r.checks.first { $0.name == "dns-cluster" }?.details["addresses"].map { Set($0.split(separator: ",")) }
        }
        // The light run asks for one family (the proven address's): compared where the full
        // proof's answer is of that family.
        if let now = answer(light), let was = answer(proven), now.first?.contains(":") == was.first?.contains(":"), now != was {
            return "dns-cluster answers \(now.sorted().joined(separator: ",")) (was \(was.sorted().joined(separator: ",")))"
        }
        return nil
    }

    /// The full proof's checks with the light reconcile's in their places, settled together.
    static func merge(_ light: [CheckResult], into proven: [CheckResult]) -> [CheckResult] {
        let fresh = Dictionary(light.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let known = Set(proven.map(\.name))
        return Readiness.settle(proven.map { fresh[$0.name] ?? $0 } + light.filter { !known.contains($0.name) })
    }
}

extension CheckResult.Outcome {
    /// What a check did, as a log line says it: "tcp failed".
    var verb: String {
        switch self {
        case .pass: "passed"
        case .fail: "failed"
        case .warn: "warned"
        case .skip: "was skipped"
        }
    }
}
