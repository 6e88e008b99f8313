import HostSystem

extension TrustInstaller {
    /// What removing the agent's trust takes: its OS-store files (for one registry, or all), the
    /// certs.d folders whose hosts.toml carries the marker, and a `--fresh` rebuild of the bundle
    /// so that dangling links go too. Files of others are never listed.
    public func planRemoval(registry: RegistryAddress?) throws -> TrustPlan {
        var changes: [FileChange] = []
        let prefix = registry.map(Self.fileNamePrefix) ?? ""
        for name in try files.list(Self.localCADirectory) where name.hasPrefix(prefix) && name.hasSuffix(".crt") {
            changes.append(FileChange(kind: .remove, path: try Self.localCADirectory.appending(name), reason: "the agent's CA in the OS trust store"))
        }
        let refresh: [String]? = changes.isEmpty ? nil : ["update-ca-certificates", "--fresh"]
        let containerd = try ContainerdRegistryConfig.read(from: files)
        var wanted: Set<String>?
        if let registry {
            wanted = [registry.hostAndPort]
            if registry.port == 443 { wanted?.insert(registry.hostForURL) }
        }
        for certsD in containerd.configPaths {
            for name in try files.list(certsD) where wanted?.contains(name) ?? true {
                let dir = try certsD.appending(name)
                guard let toml = try files.readString(try dir.appending("hosts.toml")), toml.hasPrefix(Self.marker) else { continue }
                changes.append(FileChange(kind: .remove, path: try dir.appending("hosts.toml"), reason: "the agent's containerd host config"))
                if try files.exists(try dir.appending("ca.crt")) {
                    changes.append(FileChange(kind: .remove, path: try dir.appending("ca.crt"), reason: "the agent's CA for containerd"))
                }
            }
        }
        return TrustPlan(certificates: [], fileChanges: changes, refresh: refresh, notes: [],
                         osBundle: Self.debianBundle, runtimeCAFiles: [])
    }

    /// Removes the folders the agent created (from the ledger) that are empty now, deepest
    /// first; those still in use stay listed. The ledger and its folder go last, when nothing is left.
    public func removeCreatedDirectories() throws -> [HostPath] {
        guard let ledger = files.ledger else { return [] }
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
