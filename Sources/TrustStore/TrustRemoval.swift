import HostSystem
import Vocabulary

extension TrustInstaller {
    /// What removing the agent's trust takes: its OS-store files (for one registry, or all), the
    /// runtime folders' files that carry the marker, and a fresh rebuild of the bundle so that
    /// dangling links go too. Files of others are never listed.
    public func planRemoval(registry: RegistryAddress?) throws -> TrustPlan {
        try Self.planRemoval(try TrustFacts.gather(files: files, registry: registry), registry: registry, refreshMode: refreshMode)
    }

    /// The removal from facts gathered beforehand; reads nothing.
    public static func planRemoval(_ facts: TrustFacts, registry: RegistryAddress?, refreshMode: TrustRefreshMode = .auto) throws
        -> TrustPlan
    {
        var changes: [FileChange] = []
        let layout = facts.layout
        let prefix = layout.filePrefix(registry)
        var notes: [String] = []
        let named = facts.anchors.keys.sorted().filter { $0.hasPrefix(prefix) && $0.hasSuffix(".crt") }
        for name in facts.ownedAnchors(named, notes: &notes) {
            changes.append(
                FileChange(kind: .remove, path: try layout.anchors.appending(name), reason: "the agent's CA in the OS trust store"))
        }
        let refresh: [String]? =
            changes.isEmpty && !facts.refreshPending && facts.storeDamage == nil ? nil : [layout.tool.lastComponent] + layout.freshArguments
        let wanted = registry.map { Set($0.referenceNames) }
        // Each folder's hosts.toml before its ca.crt: a stop in between never leaves a hosts.toml
        // that names a CA file no longer there.
        for path in facts.runtimeFiles.keys.sorted(by: {
            ($0.parent, $0.lastComponent == "hosts.toml" ? 0 : 1) < ($1.parent, $1.lastComponent == "hosts.toml" ? 0 : 1)
        }) {
            let name = path.parent.lastComponent
            guard wanted?.contains(name) ?? true, HostFiles.isOwned(String(decoding: facts.runtimeFiles[path]!, as: UTF8.self)) else {
                continue
            }
            changes.append(
                FileChange(
                    kind: .remove, path: path, reason: "the agent's \(path.lastComponent == "ca.crt" ? "CA" : "host config") for \(name)"))
        }
        return TrustPlan(
            certificates: [], layout: layout, fileChanges: changes, refresh: refresh, notes: notes, native: refreshMode.isNative(facts))
    }

    /// Removes the folders the agent created (from the ledger) that are empty now, deepest
    /// first; those still in use stay listed. The ledger and its folder go last, when nothing is left.
    public func removeCreatedDirectories() throws -> [HostPath] {
        guard let ledger = files.ledger else { return [] }
        // A kill after the ledger's folder was made and before the ledger was written leaves
        // that folder (named for the agent) empty and unrecorded.
        guard try files.exists(ledger) else {
            return try files.removeEmptyDirectory(ledger.parent) ? [ledger.parent] : []
        }
        let ledgerChain = Set(ledger.parent.components.indices.map { HostPath(prefixOf: ledger.parent, count: $0 + 1) })
        let dirs = try files.createdDirectories().sorted { $0.components.count > $1.components.count }
        var removed: [HostPath] = []
        var remaining: [HostPath] = []
        for dir in dirs where !ledgerChain.contains(dir) {
            if try files.removeEmptyDirectory(dir) { removed.append(dir) } else if try files.exists(dir) { remaining.append(dir) }
        }
        if remaining.isEmpty {
            try files.remove(ledger)
            for dir in dirs where ledgerChain.contains(dir) {
                if try files.removeEmptyDirectory(dir) { removed.append(dir) }
            }
        } else {
            try files.writeLedger((remaining + dirs.filter(ledgerChain.contains)).sorted())
        }
        return removed
    }
}
