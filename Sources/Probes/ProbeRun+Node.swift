import FoundationEssentials
import HostSystem
import Vocabulary

/// The node's own state that breaks pulls later or elsewhere (the runtime's config, certs.d, a
/// runtime started before the CA, the CoreDNS loop), and the runtime's own pull.
extension ProbeRun {
    mutating func nodeChecks() {
        if let (word, disagreement) = s.trust.runtimeConfig {
            checks.append(
                disagreement.map { CheckResult(name: "runtime-config", outcome: .warn, reason: $0) }
                    ?? CheckResult(
                        name: "runtime-config", outcome: .pass,
                        reason:
                            "containerd \(word.version) runs with config_path \"\(word.configPath ?? "")\" (its CRI Status), as its config file gives"
                    ))
        }
        checks.append(
            HazardProbes.certsD(
                runtimeCAFiles: s.trust.runtimeCAFiles, note: [s.trust.note, s.trust.remedy].compactMap { $0 }.joined(separator: "; ")))
        checks.append(
            HazardProbes.runtimeRestartPending(
                files: files, caFiles: s.trust.osStoreFiles, certsDInUse: !s.trust.runtimeCAFiles.isEmpty,
                runtimes: suite.runtimes?(), running: running, containerdPID: runtime?.pid))
        if case .name = s.registry.host {
            checks.append(HazardProbes.coreDNSLoop(files: files, resolvConf: s.kubeletResolvConf, clusterDNS: s.clusterDNS))
        }
    }

    /// The runtime's own pull, started before the other checks. Cut short by the agent's budget
    /// while the node's lookup waits, it is asked again with the rest of the deadline
    /// (RuntimePullProbe.askAgain).
    mutating func runtimePull(_ pull: BackgroundWork<RuntimePullProbe.Outcome>) {
        var outcome = pull.wait()
        let left = Int32(max(0, (s.deadlineSeconds - Date().timeIntervalSince(start)) * 1000))
        if let runtimePull = suite.runtimePull, left >= 1000, RuntimePullProbe.askAgain(after: outcome, checks: checks) {
            let first = outcome.seconds
            outcome = RuntimePullProbe.pull(image: s.pullImage, registry: s.registry, milliseconds: left) { try runtimePull($0, left) }
            outcome.earlier = first
        }
        checks.append(RuntimePullProbe.check(outcome, image: s.pullImage, runtime: runtime?.summary ?? "the runtime"))
    }
}
