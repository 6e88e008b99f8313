import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

/// Debian's trust store rebuilt by the agent, with the result `update-ca-certificates --fresh`
/// gives (the integration tests compare the two): the bundle is the certificates named in
/// `/etc/ca-certificates.conf`, in its order, then every `*.crt` under
/// `/usr/local/share/ca-certificates` in byte order, each ending in a newline; each local
/// certificate has a `<name>.pem` link in `/etc/ssl/certs` and a `<subject hash>.<n>` link to
/// that, numbered in file-name order within a hash as `openssl rehash` numbers them.
///
/// It reads and writes only through the host root, runs no program and no hook: milliseconds
/// instead of the tool's seconds (see benchmarks/).
public struct DebianTrustStore {
    public let files: HostFiles
    static let conf = try! HostPath("/etc/ca-certificates.conf")
    static let certsDir = try! HostPath("/usr/share/ca-certificates")
    static let localDir = try! HostPath("/usr/local/share/ca-certificates")
    static let etcCerts = try! HostPath("/etc/ssl/certs")
    static let bundleName = "ca-certificates.crt"

    public init(files: HostFiles) { self.files = files }

    /// Rebuilds the bundle and the links of local certificates. Returns what changed.
    @discardableResult
    public func rebuild() throws -> [String] {
        var changes: [String] = []
        let sources = try sources()
        let bundle = Self.concatenation(sources.map(\.bytes))
        var wantedLinks: [String: String] = [:]
        var hashes: [String: String] = [:]
        for source in sources {
            guard source.local else { continue }
            let pem = Self.pemName(source.path.lastComponent)
            wantedLinks[pem] = source.path.path
            hashes[pem] = CertificateParser.subjectHash(source.bytes)
        }

        // <name>.pem links of local certificates: create the missing, drop those whose target is gone.
        let certs = try files.root.openDirectory(Self.etcCerts)
        if let certs { HostFiles.removeStaleTemporaries(in: certs) }
        for (name, target) in wantedLinks.sorted(by: { $0.key < $1.key }) where certs?.linkTarget(name) != target {
            try files.replaceSymlink(try Self.etcCerts.appending(name), target: target)
            changes.append("link \(Self.etcCerts.path)/\(name) -> \(target)")
        }
        // The folder's ~280 links read through its one descriptor, once for this and the rehash.
        var folder = try CertsFolder(files: files)
        for name in folder.names {
            guard let target = folder.linkTarget(name), target.hasPrefix(Self.localDir.path + "/"), wantedLinks[name] == nil else {
                continue
            }
            try files.removeEntry(try Self.etcCerts.appending(name))
            folder.forget(name)
            changes.append("remove \(Self.etcCerts.path)/\(name)")
        }
        changes += try rehash(localHashes: hashes, folder: &folder)

        let bundlePath = try Self.etcCerts.appending(Self.bundleName)
        if try files.read(bundlePath) != bundle {
            try files.writeAtomically(bundlePath, bundle, mode: 0o644)
            changes.append("rewrite \(bundlePath.path)")
        }
        return changes
    }

    /// What is wrong with the bundle, when it does not hold exactly the certificates the node's
    /// CA sources give (`/etc/ca-certificates.conf`'s and the local folder's, each as many times
    /// as they occur): two runs interleaved, a half-removed store, a bundle edited by hand. Nil
    /// when it is whole. Compared as a multiset of certificates, so order and spacing do not count.
    public func bundleDamage(bundle: String) throws -> String? {
        let sources = try sources()
        // The usual case, without parsing ~140 files: the bundle is, byte for byte, what the
        // rebuild writes from them, and no file ends inside a certificate (whose lines would run
        // on into the next file's): then both hold the same certificates, each as many times.
        if Self.concatenation(sources.map(\.bytes)) == Array(bundle.utf8), sources.allSatisfy({ Self.endsOutsideABlock($0.bytes) }) {
            return nil
        }
        var expected: [HashedBytes: Int] = [:]
        for source in sources {
            for body in Self.certificateBodies(source.bytes) { expected[HashedBytes(body), default: 0] += 1 }
        }
        var actual: [HashedBytes: Int] = [:]
        for body in Self.certificateBodies(Array(bundle.utf8)) { actual[HashedBytes(body), default: 0] += 1 }
        guard actual != expected else { return nil }
        let missing = expected.reduce(0) { $0 + max(0, $1.value - (actual[$1.key] ?? 0)) }
        let extra = actual.reduce(0) { $0 + max(0, $1.value - (expected[$1.key] ?? 0)) }
        let wanted = expected.values.reduce(0, +)
        return
            "the OS bundle \(Self.etcCerts.path)/\(Self.bundleName) does not hold what the node's CA sources give (\(wanted) certificates: \(missing) missing, \(extra) extra or repeated)"
    }

    /// The bundle the rebuild writes from the sources' bytes: each in order, ending in a newline.
    static func concatenation(_ files: [[UInt8]]) -> [UInt8] {
        var bundle: [UInt8] = []
        bundle.reserveCapacity(files.reduce(files.count) { $0 + $1.count })
        for bytes in files {
            bundle += bytes
            if let last = bytes.last, last != 10 { bundle.append(10) }
        }
        return bundle
    }

    /// Whether `certificateBodies` ends these bytes outside a certificate block: their last
    /// BEGIN or END CERTIFICATE line (CR before LF dropped) is an END line, or there is none.
    static func endsOutsideABlock(_ bytes: [UInt8]) -> Bool {
        // Line by line from the end: a CA file's last line is its END line.
        var end = bytes.endIndex
        while end > bytes.startIndex {
            var start = end
            while start > bytes.startIndex, bytes[start - 1] != UInt8(ascii: "\n") { start -= 1 }
            let line = bytes[start..<end].last == UInt8(ascii: "\r") ? bytes[start..<end - 1] : bytes[start..<end]
            if line.elementsEqual(PEMMarkers.endCertificate) { return true }
            if line.elementsEqual(PEMMarkers.beginCertificate) { return false }
            end = start - 1
        }
        return true
    }

    /// The node's CA sources in the bundle's order, each file's bytes: the certificates
    /// `/etc/ca-certificates.conf` names (under /usr/share/ca-certificates; `#` comments and `!`
    /// deselected ones skipped), then every local `*.crt` (`local`), as update-ca-certificates reads them.
    func sources() throws -> [(path: HostPath, bytes: [UInt8], local: Bool)] {
        var out: [(path: HostPath, bytes: [UInt8], local: Bool)] = []
        // ~140 files in one or two folders: each folder opened once.
        let reads = HostFolderReads(files: files)
        for line in (try files.readString(Self.conf) ?? "").split(separator: "\n", omittingEmptySubsequences: true) {
            guard !line.hasPrefix("#"), !line.hasPrefix("!") else { continue }
            let path = try Self.certsDir.appending(String(line))
            if let bytes = try reads.read(path) { out.append((path, bytes, false)) }
        }
        for cert in try localCertificates() {
            if let bytes = try reads.read(cert) { out.append((cert, bytes, true)) }
        }
        return out
    }

    /// The base64 bodies of the CERTIFICATE blocks of a PEM text, in order.
    package static func certificateBodies(_ text: String) -> [String] {
        certificateBodies(Array(text.utf8)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The same, of PEM bytes: read a line at a time as bytes (a node's ~140 CA files and its
    /// bundle; a String per line was most of the facts' time), lines split at LF with a CR
    /// before it dropped (CRLF files too: a String splits at "\r\n" as one character, so
    /// those gave no bodies), blanks before a body line dropped.
    package static func certificateBodies(_ bytes: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var current: [UInt8]?
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            let trimmed = line.last == UInt8(ascii: "\r") ? line.dropLast() : line
            if trimmed.elementsEqual(PEMMarkers.beginCertificate) {
                current = []
            } else if trimmed.elementsEqual(PEMMarkers.endCertificate) {
                if let body = current { out.append(body) }
                current = nil
            } else if current != nil {
                current!.append(contentsOf: trimmed.drop(while: { $0 == UInt8(ascii: " ") }))
            }
        }
        return out
    }

    /// `*.crt` files under the local folder, following symlinks as `find -L` does, in byte order.
    func localCertificates() throws -> [HostPath] {
        var out: [HostPath] = []
        func walk(_ path: HostPath, depth: Int) throws {
            guard depth < 16 else { return }
            for name in try files.list(path) {
                let child = try path.appending(name)
                switch files.kind(child) {
                case .directory: try walk(child, depth: depth + 1)
                case .regular where name.hasSuffix(".crt"): out.append(child)
                default: continue
                }
            }
        }
        try walk(Self.localDir, depth: 0)
        return out.sorted { Array($0.path.utf8).lexicographicallyPrecedes(Array($1.path.utf8)) }
    }

    /// The hash links of the buckets that hold a local certificate, numbered as `openssl rehash`
    /// numbers them: certificates of one subject hash in file-name order, 0, 1, ...; dangling hash
    /// links go. A bucket's other members are read from its existing links, so only local
    /// certificates are parsed.
    /// `folder`: /etc/ssl/certs as the rebuild left it, read in this pass.
    func rehash(localHashes: [String: String], folder: inout CertsFolder) throws -> [String] {
        var changes: [String] = []
        var links: [String: [Int: String]] = [:]  // hash -> index -> target
        for name in folder.names where Self.isHashLink(name) {
            guard let target = folder.linkTarget(name) else { continue }
            // Dangling as the node sees it: the target's own links resolve inside the host root.
            if !target.hasPrefix("/"), !target.contains(".."), !folder.leadsToFile(name) {
                try files.removeEntry(try Self.etcCerts.appending(name))
                changes.append("remove dangling \(Self.etcCerts.path)/\(name)")
                continue
            }
            let parts = name.split(separator: ".")
            links[String(parts[0]), default: [:]][Int(parts[1])!] = target
        }
        var members: [String: Set<String>] = [:]
        for (pem, hash) in localHashes { members[hash, default: []].insert(pem) }
        for (hash, local) in members.sorted(by: { $0.key < $1.key }) {
            let existing = links[hash] ?? [:]
            var all = local.union(existing.values).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            if all.count > 1 {
                // rehash skips a certificate identical to one earlier in the bucket.
                var seen: Set<String> = []
                all = all.filter { name in
                    guard let bytes = try? files.read(try Self.etcCerts.appending(name), limit: 1 << 20),
                        let cert = try? CertificateParser.parse(bytes, source: name).first
                    else { return true }
                    return seen.insert(cert.sha256Fingerprint).inserted
                }
            }
            for (i, member) in all.enumerated() where existing[i] != member {
                try files.replaceSymlink(try Self.etcCerts.appending("\(hash).\(i)"), target: member)
                changes.append("link \(Self.etcCerts.path)/\(hash).\(i) -> \(member)")
            }
            for i in existing.keys where i >= all.count {
                try files.removeEntry(try Self.etcCerts.appending("\(hash).\(i)"))
                changes.append("remove \(Self.etcCerts.path)/\(hash).\(i)")
            }
        }
        return changes
    }

    static func isHashLink(_ name: String) -> Bool {
        let parts = name.split(separator: ".")
        return parts.count == 2 && parts[0].count == 8 && parts[0].allSatisfy(\.isHexDigit) && parts[1].allSatisfy(\.isNumber)
    }

    static let hooks = try! HostPath("/etc/ca-certificates/update.d")

    /// Why the native rebuild would not leave what `update-ca-certificates` leaves on this host
    /// (nil: it would, as the integration tests compare byte for byte). The tool does more than
    /// the native path in three cases, each read from the host:
    /// - a hook: it runs each executable of /etc/ca-certificates/update.d that run-parts would
    ///   (names of letters, digits, `_` and `-`), e.g. ca-certificates-java's keystore;
    /// - system certificates' links out of step with /etc/ca-certificates.conf: it links a
    ///   selected certificate that has no `<name>.pem` link, unlinks a `!`-deselected one, and
    ///   then rehashes the folder; the native path maintains only local certificates' links;
    /// - a dangling link in /etc/ssl/certs: it removes every one when anything changed.
    public static func nativeBlocker(files: HostFiles) throws -> String? {
        for name in try files.list(hooks) where name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) {
            let hook = try hooks.appending(name)
            // run-parts runs what is executable, links followed (root: any execute bit).
            guard let st = try files.root.status(hook), st.st_mode & S_IFMT == S_IFREG,
                st.st_mode & 0o111 != 0
            else { continue }
            return "\(hook.path) is a hook update-ca-certificates runs"
        }
        guard let conf = try files.readString(Self.conf) else { return "\(Self.conf.path) is missing" }
        // One pass over /etc/ssl/certs, each folder resolved inside the root once: a few hundred
        // entries, read on every run (measured: 6,500 stat calls before, docs/evidence.md).
        var folder = try CertsFolder(files: files)
        for raw in conf.split(separator: "\n") {
            let line = String(raw)
            guard !line.hasPrefix("#") else { continue }
            if line.hasPrefix("!") {
                let name = String(line.dropFirst())
                let base = String(name.split(separator: "/").last ?? "")
                let pem = (base.hasSuffix(".crt") ? String(base.dropLast(4)) : base) + ".pem"
                if folder.linkTarget(pem) != nil {
                    return "\(Self.etcCerts.path)/\(pem) links \(name), which \(Self.conf.path) deselects"
                }
            } else {
                let target = Self.certsDir.path + "/" + line
                guard folder.isFile(target) else { continue }  // the tool skips it too, with a warning
                let pem = pemName(String(line.split(separator: "/").last ?? ""))
                if folder.linkTarget(pem) != target {
                    return "\(line), which \(Self.conf.path) selects, has no link \(Self.etcCerts.path)/\(pem)"
                }
            }
        }
        // leadsToFile is true for an entry that is not a link: only a dangling link fails it.
        for name in folder.names where !folder.leadsToFile(name) {
            return "\(Self.etcCerts.path)/\(name) is a dangling link"
        }
        return nil
    }

    /// The link name update-ca-certificates gives a certificate file.
    static func pemName(_ file: String) -> String {
        let base = file.hasSuffix(".crt") ? file.dropLast(4) : file[...]
        // One pass, Character by Character as `replacing` compared them (~140 names a run).
        guard base.contains(where: { $0 == " " || $0 == "(" || $0 == ")" || $0 == "," }) else { return base + ".pem" }
        return String(base.map { $0 == " " || $0 == "," ? "_" : $0 == "(" || $0 == ")" ? "=" : $0 }) + ".pem"
    }
}
