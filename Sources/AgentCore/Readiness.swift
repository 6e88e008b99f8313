import Probes

/// The readiness rule: the node is ready to pull when no check failed and at least one passed.
/// A warning is ready with something to fix soon (expiry, a restart for other users of the
/// store); a skipped check did not apply to this node.
public enum Readiness {
    public static func isReady(_ checks: [CheckResult]) -> Bool {
        !checks.contains { $0.outcome == .fail } && checks.contains { $0.outcome == .pass }
    }

    /// The reasons the node is not ready, one per failed check.
    public static func blockers(_ checks: [CheckResult]) -> [String] {
        checks.filter { $0.outcome == .fail }.map { "\($0.name): \($0.reason)" }
    }
}
