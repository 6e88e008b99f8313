import Glibc
import HostSystem

/// /etc/ssl/certs as the node sees it, read once: its names, and whether each leads to a file
/// (a hash link to a `.pem` link to a certificate), links followed inside the host root with each
/// folder resolved once: a few hundred entries on every run, without a stat per path component.
struct CertsFolder {
    let files: HostFiles
    /// /etc/ssl/certs, opened inside the root once (nil: it does not exist).
    let etcCerts: HostDirectory?
    private(set) var names: [String]
    private(set) var listed: Set<String>
    /// The folders the links lead to, each opened once.
    let reads: HostFolderReads
    var alive: [String: Bool] = [:]
    /// What `isFile` found, by node path.
    private var filesSeen: [String: Bool] = [:]
    /// Each entry's link target, read once in the pass (nil: not a link).
    private var targets: [String: String?] = [:]

    init(files: HostFiles) throws {
        self.files = files
        etcCerts = try files.root.openDirectory(DebianTrustStore.etcCerts)
        names = (etcCerts?.names() ?? []).sorted()
        listed = Set(names)
        reads = HostFolderReads(files: files)
    }

    /// Whether a node path names a file, links followed inside the root; looked at once in the
    /// pass (the store's conf lines and the links to the same certificates ask for each twice).
    mutating func isFile(_ path: String) -> Bool {
        if let known = filesSeen[path] { return known }
        let result = Self.isFile(path, reads)
        filesSeen[path] = result
        return result
    }

    private static func isFile(_ path: String, _ reads: HostFolderReads) -> Bool {
        guard let p = try? HostPath(path), let folder = reads.folder(p.parent), let st = try? folder.entryStat(p.lastComponent) else {
            return false
        }
        return st.st_mode & S_IFMT != S_IFLNK || ((try? reads.status(p)) ?? nil) != nil
    }

    /// The target of the entry `name` as written in it, read once in this pass (nil: not a link).
    /// A pass that replaces a link reads it through `etcCerts` instead.
    mutating func linkTarget(_ name: String) -> String? {
        if let known = targets[name] { return known }
        let target = etcCerts?.linkTarget(name)
        targets[name] = .some(target)
        return target
    }

    /// The entry `name`, removed by the pass: gone from what the pass knows.
    mutating func forget(_ name: String) {
        names.removeAll { $0 == name }
        listed.remove(name)
        targets[name] = nil
        alive = [:]
        filesSeen = filesSeen.filter { !$0.key.hasPrefix(DebianTrustStore.etcCerts.path + "/") }
    }

    /// Whether the entry `name` leads to a file.
    mutating func leadsToFile(_ name: String, _ depth: Int = 0) -> Bool {
        if let known = alive[name] { return known }
        var result = listed.contains(name)
        if result, let target = linkTarget(name) {
            if !target.contains("/") {
                result = depth < 8 && leadsToFile(target, depth + 1)
            } else {
                result = isFile(target.hasPrefix("/") ? target : DebianTrustStore.etcCerts.path + "/" + target)
            }
        }
        alive[name] = result
        return result
    }
}
