import HostSystem
import ResolvedConfig
import SystemBus
import TrustStore
import Vocabulary

/// Removes what the agent put on the node (its CA files, certs.d files, DNS link and settings)
/// for one registry or all, and rebuilds the OS bundle; files of others are never touched.
public struct Uninstall {
    public var root: HostRoot
    /// One registry's trust only; nil: everything of the agent's.
    public var registry: RegistryAddress?
    public var dbusAddress: String?
    public var refreshMode: TrustRefreshMode
    public var runner: CommandRunner
    public var dryRun: Bool
    /// How long it waits for another agent changing the node (`HostRunLock`).
    public var lockTimeout: Double = 120

    public init(
        root: HostRoot, registry: RegistryAddress?, dbusAddress: String?, refreshMode: TrustRefreshMode,
        runner: CommandRunner, dryRun: Bool
    ) {
        self.root = root
        self.registry = registry
        self.dbusAddress = dbusAddress
        self.refreshMode = refreshMode
        self.runner = runner
        self.dryRun = dryRun
    }

    public func run() throws -> Report {
        let files = HostFiles(root: root, ledger: HostFiles.defaultLedger)
        // Not while another agent changes the node (a bootstrap would put back what this removes,
        // or rebuild the bundle from a half-removed store).
        let lock = dryRun ? nil : try HostRunLock.acquire(files: files, what: "uninstall", timeout: lockTimeout)
        defer { withExtendedLifetime(lock) {} }
        let trust = TrustInstaller(files: files, runner: runner, refreshMode: refreshMode)
        let facts = try TrustFacts.gather(files: files, registry: registry)
        let plan = try TrustInstaller.planRemoval(facts, registry: registry, refreshMode: refreshMode)
        var changes = plan.summary
        var notes = plan.notes
        // The DNS route is shared by every registry of the cluster domain: it goes with the last
        // one. Decided before the removal, so that a dry run says what a run does.
        let layout = facts.layout
        let removed = Set(plan.fileChanges.filter { $0.path.parent == layout.anchors }.map(\.path.lastComponent))
        let othersRemain =
            try registry != nil
            && files.list(layout.anchors).contains { $0.hasPrefix(layout.filePrefix(nil)) && $0.hasSuffix(".crt") && !removed.contains($0) }
        if !dryRun { try trust.apply(plan) }

        if othersRemain {
            notes.append("the DNS route stays: other registries of the agent's remain")
        } else {
            let address = dbusAddress ?? SystemBus.address(hostRoot: root.directory)
            changes += try DNSSetup(files: files, runner: runner, bus: try? SystemBus(address: address), busAddress: address).removeAll(
                dryRun: dryRun)
        }
        if !dryRun {
            changes += try trust.removeCreatedDirectories().map { "remove folder \($0): created by the agent, empty now" }
        }
        return Report(
            ready: false, dryRun: dryRun, registry: registry?.description ?? "every registry", changes: changes,
            notes: notes, checks: [])
    }
}
