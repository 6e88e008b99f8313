import FoundationEssentials
import Glibc
import Vocabulary

/// The folders the agent makes on the host, each listed in the ledger before it is made, so that
/// uninstall removes exactly those (when empty again) and no other.
extension HostFiles {
    /// Creates the folder and its missing parents (mode 0755), recording them in the ledger
    /// before creating them: a kill in between leaves a ledger entry for a folder that may not
    /// exist (uninstall skips it), never a folder of the agent's that the ledger does not know.
    public func makeDirectories(_ path: HostPath) throws { try makeDirectories([path]) }

    /// The folders and their missing parents, recorded in the ledger with one write. Returns the
    /// folders the ledger lists once they are made (the agent's, in which links are refused).
    /// One ledger change at a time in this process: a run writes its trust files and its DNS
    /// files side by side, and two read-modify-writes of the ledger at once would each write the
    /// list without the other's folders.
    /// (The ledger's own write, a HostFiles without a ledger, takes no lock.)
    @discardableResult
    public func makeDirectories(_ paths: [HostPath]) throws -> Set<HostPath> {
        guard ledger != nil else { return try makeDirectoriesAlone(paths) }
        return try Self.ledgerLock.withLock { try makeDirectoriesAlone(paths) }
    }

    static let ledgerLock = PlainLock()

    private func makeDirectoriesAlone(_ paths: [HostPath]) throws -> Set<HostPath> {
        var missing: [HostPath] = []
        for path in paths {
            for folder in try missingDirectories(path) where !missing.contains(folder) { missing.append(folder) }
        }
        var made = Set(try createdDirectories())
        guard !missing.isEmpty else { return made }
        if let ledger {
            var plain = self
            plain.ledger = nil
            // The ledger's own folder exists before the ledger can. Named for the agent, it is
            // always listed, also when a kill came between its creation and the ledger's.
            let forLedger = try missingDirectories(ledger.parent)
            try plain.create(forLedger, made: [])
            made.formUnion(missing)
            made.formUnion(forLedger)
            made.insert(ledger.parent)
            try plain.writeAtomically(ledger, Self.ledgerText(made.sorted()))
        }
        try create(missing, made: made)
        return made
    }

    /// The ledger's text: the marker, then one folder a line.
    static func ledgerText(_ folders: [HostPath]) -> String {
        ownershipMarker + "\n" + folders.map(\.path).joined(separator: "\n") + "\n"
    }

    /// Writes the ledger as listing exactly `folders`.
    public func writeLedger(_ folders: [HostPath]) throws {
        guard let ledger else { return }
        var plain = self
        plain.ledger = nil
        try plain.writeAtomically(ledger, Self.ledgerText(folders))
    }

    /// The folder `path` opened for a change inside it: links on the way are followed inside the
    /// root up to the first folder the agent made (ledger), and refused from there on, so a
    /// folder of the agent's swapped for a link cannot send a write or a removal elsewhere.
    public func directory(_ path: HostPath, created: Set<HostPath>? = nil) throws -> HostDirectory? {
        let made = try created ?? Set(createdDirectories())
        let first = path.components.indices.first { made.contains(HostPath(prefixOf: path, count: $0 + 1)) }
        return try root.openDirectory(path, linksRefusedFrom: first)
    }

    /// The folders recorded in the ledger as created by the agent.
    public func createdDirectories() throws -> [HostPath] {
        guard let ledger, let text = try readString(ledger) else { return [] }
        return text.split(separator: "\n").compactMap { try? HostPath(String($0)) }
    }

    /// The folders of `path` (itself and its parents) that do not exist yet, outermost first.
    private func missingDirectories(_ path: HostPath) throws -> [HostPath] {
        var missing: [HostPath] = []
        var current = HostPath.root
        for part in path.components {
            current = try current.appending(part)
            if try !missing.isEmpty || access(root.resolve(current), F_OK) != 0 { missing.append(current) }
        }
        return missing
    }

    /// Makes `folders` in order; `made`: the agent's folders (ledger), where links are refused.
    private func create(_ folders: [HostPath], made: Set<HostPath>) throws {
        for folder in folders {
            guard let parent = try directory(folder.parent, created: made) else {
                throw AgentError(.io, "cannot create folder \(folder): \(folder.parent) is missing")
            }
            if mkdirat(parent.fd, folder.lastComponent, 0o755) == 0 { continue }
            let code = errno
            guard code == EEXIST else {
                throw AgentError(.io, "cannot create folder \(folder)", errno: code, hint: Self.hint(errno: code))
            }
            // Made meanwhile, by another run: it must be a folder, not a link to one.
            guard parent.entryKind(folder.lastComponent) == .directory else {
                throw AgentError(
                    .notOwned, "\(folder) appeared as a link or a file where the agent makes a folder", hint: HostRoot.notOwnedHint)
            }
        }
    }

    /// Removes an empty folder; a missing or non-empty folder is left as it is. True when removed.
    @discardableResult
    public func removeEmptyDirectory(_ path: HostPath) throws -> Bool {
        guard path != .root, let parent = try directory(path.parent) else { return false }
        // The folder itself, not what a link in its place points to.
        guard parent.entryKind(path.lastComponent) == .directory, let folder = try parent.subdirectory(path.lastComponent) else {
            return false
        }
        Self.removeStaleTemporaries(in: folder)
        return unlinkat(parent.fd, path.lastComponent, AT_REMOVEDIR) == 0
    }
}
