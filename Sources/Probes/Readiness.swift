/// The readiness rule, and every rule that changes one check's outcome because of another. Pure:
/// the checks in, the verdict out.
///
/// Ready means no check failed and at least one passed. A warning is ready with something to fix
/// soon (expiry, a restart for other users of the store); a skipped check did not apply to this node.
public enum Readiness {
    public static func isReady(_ checks: [CheckResult]) -> Bool {
        !checks.contains { $0.outcome == .fail } && checks.contains { $0.outcome == .pass }
    }

    /// The reasons the node is not ready, one per failed check.
    public static func blockers(_ checks: [CheckResult]) -> [String] {
        checks.filter { $0.outcome == .fail }.map { "\($0.name): \($0.reason)" }
    }

    /// The checks with each rule below applied, in this order.
    public static func settle(_ checks: [CheckResult]) -> [CheckResult] {
        var checks = checks
        hostsFileAnswers(&checks)
        proxyResolves(&checks)
        runtimePullGotThrough(&checks)
        return checks
    }

    /// dns-resolved failed, but the node's lookup (dns-host) found the name in /etc/hosts:
    /// programs that read /etc/hosts first (containerd and kubelet, Go) find it there, whatever
    /// resolved's routing says. A warning.
    static func hostsFileAnswers(_ checks: inout [CheckResult]) {
        guard checks.first(where: { $0.name == "dns-host" })?.details["source"] == "/etc/hosts" else { return }
        for i in checks.indices where checks[i].name == "dns-resolved" && checks[i].outcome == .fail {
            checks[i].outcome = .warn
            checks[i].reason += " (the host's /etc/hosts has the name, and Go programs such as containerd read it first)"
        }
    }

    /// The runtime pulls through a proxy that answers (runtime-proxy passed): the proxy resolves
    /// the registry's name, so the node's own lookup failing (dns-host) is a warning.
    static func proxyResolves(_ checks: inout [CheckResult]) {
        guard checks.contains(where: { $0.name == "runtime-proxy" && $0.outcome == .pass }) else { return }
        for i in checks.indices where checks[i].name == "dns-host" && checks[i].outcome == .fail {
            checks[i].outcome = .warn
            checks[i].reason += " (containerd does not resolve it itself: the proxy does)"
        }
    }

    /// The checks a succeeding pull overrules: each stands for a step of the pull, and the
    /// runtime has just taken that step. Their failures become warnings that say so.
    public static let pathChecks: Set<String> = [
        "dns-cluster", "dns-host", "dns-resolved", "runtime-proxy", "tcp", "tls", "tls-os-trust",
        "tls-runtime-trust", "tls-containers-trust", "certs-d", "runtime-restart-pending",
    ]

    /// The runtime's word decides: a passing runtime-pull turns the failures of the path checks
    /// into warnings (the model was wrong or the runtime took another path).
    static func runtimePullGotThrough(_ checks: inout [CheckResult]) {
        guard let pull = checks.first(where: { $0.name == "runtime-pull" }), pull.outcome == .pass else { return }
        for i in checks.indices where checks[i].outcome == .fail && pathChecks.contains(checks[i].name) {
            checks[i].outcome = .warn
            checks[i].reason += " (yet the runtime's own pull got through: see runtime-pull)"
        }
        // registry-api stands for more than the path (the registry's health, the credentials),
        // but where it failed only on verifying the registry's certificate with the agent's
        // OpenSSL view, the runtime has just verified it with its own (Go's pool and rules).
        for i in checks.indices
        where checks[i].name == "registry-api" && checks[i].outcome == .fail && checks[i].details["verify_failed"] == "registry" {
            checks[i].outcome = .warn
            checks[i].reason += " (yet the runtime verified the registry's certificate on its own pull: see runtime-pull)"
        }
    }
}
