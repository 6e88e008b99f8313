import FoundationEssentials
import HostSystem
import Vocabulary

#if canImport(Glibc)
    import Glibc
#endif

/// Conditions of the node that break pulls later, or other workloads, though probes pass now.
/// Each has a file of its own: CoreDNSLoopHazard, RuntimeRestartPending; certs-d is here.
public enum HazardProbes {
    /// certs-d: whether containerd's certs.d carries the registry's CA (read on every pull), or
    /// pulls rely on the OS store, which the runtime reads only when it starts.
    public static func certsD(runtimeCAFiles: [HostPath], note: String) -> CheckResult {
        if !runtimeCAFiles.isEmpty {
            return CheckResult(
                name: "certs-d", outcome: .pass,
                reason: "containerd reads this registry's CA from \(runtimeCAFiles.map(\.path).joined(separator: ", ")) on every pull")
        }
        return CheckResult(
            name: "certs-d", outcome: .warn,
            reason: note.isEmpty
                ? "containerd's certs.d has no CA for this registry: pulls rely on the OS store, read only when the runtime starts" : note)
    }
}
