import HostSystem
import Vocabulary

extension TrustInstaller {
    /// What removing the agent's trust takes: its OS-store files (for one registry, or all), the
    /// runtime folders' files that carry the marker, and a fresh rebuild of the bundle so that
    /// dangling links go too. Files of others are never listed.
    public func planRemoval(registry: RegistryAddress?) throws -> TrustPlan {
        var changes: [FileChange] = []
        let layout = try layout()
        let prefix = layout.filePrefix(registry)
        for name in try files.list(layout.anchors) where name.hasPrefix(prefix) && name.hasSuffix(".crt") {
            changes.append(FileChange(kind: .remove, path: try layout.anchors.appending(name), reason: "the agent's CA in the OS trust store"))
        }
        let interrupted = try files.exists(Self.refreshPending)
        let refresh: [String]? = changes.isEmpty && !interrupted ? nil : [layout.tool.lastComponent] + layout.freshArguments
        let wanted = registry.map { Set($0.referenceNames) }
        let containerd = try ContainerdRegistryConfig.read(from: files)
        let folders = containerd.configPaths + (try Self.otherRuntimeCertsDirs.map { try HostPath($0.0).appending($0.1) })
        for certsD in Set(folders).sorted() {
            for name in try files.list(certsD) where wanted?.contains(name) ?? true {
                let dir = try certsD.appending(name)
                for file in ["hosts.toml", "ca.crt"] {
                    let path = try dir.appending(file)
                    if HostFiles.isOwned(try files.readString(path)) {
                        changes.append(FileChange(kind: .remove, path: path, reason: "the agent's \(file == "ca.crt" ? "CA" : "host config") for \(name)"))
                    }
                }
            }
        }
        return TrustPlan(certificates: [], layout: layout, fileChanges: changes, refresh: refresh, notes: [])
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
            var plain = files
            plain.ledger = nil
            try plain.writeAtomically(ledger, (remaining + dirs.filter(ledgerChain.contains)).sorted().map(\.path).joined(separator: "\n") + "\n")
        }
        return removed
    }
}
