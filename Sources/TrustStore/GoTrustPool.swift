import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

/// The certificates containerd verifies one host with, as its Go builds the pool on the node:
/// - Go's system roots (crypto/x509, root_linux.go): `SSL_CERT_FILE` from containerd's
///   environment, else the first of Go's bundle files that reads; then every file of each folder
///   of `SSL_CERT_DIR` (`:`-separated), else of /etc/ssl/certs and /etc/pki/tls/certs, skipping
///   links to a name in the same folder (the hash links). A certificate put straight into
///   /etc/ssl/certs counts, as it does not for OpenSSL with the bundle file.
/// - with the host's `ca` files from hosts.toml (containerd's `updateTLSConfigFromHost`): the
///   system roots plus every certificate of each file. A file that cannot be read, or holds no
///   certificate, makes containerd refuse the registry's hosts altogether.
/// Every certificate of the pool is an anchor (Go ends a chain at any of them), and the
/// certificates are taken as Go's `AppendCertsFromPEM` takes them: `CERTIFICATE` blocks without
/// headers, duplicates once.
public struct GoTrustPool: Sendable {
    /// The pool's certificates, DER, each once.
    public var certificates: [[UInt8]]
    /// Where they came from, for a report.
    public var summary: String
    /// What containerd does instead of verifying: refuses (a `ca` it cannot load).
    public var failure: String?
    /// Changes when any file read changes (for a cache of what is built from it).
    public var version: String

    /// Go's bundle files, in its order (root_linux.go).
    static let goBundles = [
        "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem",
        "/etc/pki/tls/cacert.pem", "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "/etc/ssl/cert.pem",
    ]
    static let goFolders = ["/etc/ssl/certs", "/etc/pki/tls/certs"]

    /// The pool for `caFiles` (nil: the system roots alone) on the node of `files`, for a
    /// containerd with `environment`. `lenient`: a file without a certificate is passed over
    /// (containers/image's `SetupCertificates`) rather than refused (containerd's).
    /// `notLoaded`: certificates of the system roots the runtime's Go has not loaded (added to
    /// the OS store after the process started: Go reads the roots once), taken out of its roots.
    /// `system`: the system roots when the caller has them (`systemRoots`), for several hosts.
    public static func build(
        files: HostFiles, environment: [String: String], caFiles: [HostPath]?, lenient: Bool = false,
        notLoaded: Set<[UInt8]> = [], system: GoTrustPool? = nil
    ) -> GoTrustPool {
        var pool = system ?? systemRoots(files: files, environment: environment)
        if !notLoaded.isEmpty {
            let before = pool.certificates.count
            let drop = Set(notLoaded.map(HashedBytes.init))
            pool.certificates.removeAll { drop.contains(HashedBytes($0)) }
            if pool.certificates.count < before {
                pool.summary += " less \(before - pool.certificates.count) added to the OS store after the runtime started"
                pool.version += "|-\(notLoaded.hashValue)"
            }
        }
        var seen = Set(pool.certificates.map(HashedBytes.init))
        for path in caFiles ?? [] {
            guard let bytes = try? files.read(path, limit: CertificateParser.maximumFileSize) else {
                pool.failure =
                    pool.failure
                    ?? "containerd cannot read the CA file \(path) that hosts.toml names (\"unable to read CA cert\"): it refuses every pull from this registry"
                continue
            }
            pool.version += "|\(path):\(bytes.count):\(bytes.hashValue)"
            let certs = pemCertificates(bytes)
            if certs.isEmpty, !lenient {
                pool.failure =
                    pool.failure
                    ?? "the CA file \(path) that hosts.toml names holds no certificate containerd can load (\"unable to load CA cert\"): it refuses every pull from this registry"
            }
            for der in certs where seen.insert(HashedBytes(der)).inserted { pool.certificates.append(der) }
        }
        if let caFiles, !caFiles.isEmpty { pool.summary += " + " + caFiles.map(\.path).joined(separator: ", ") }
        return pool
    }

    /// Go's system roots on the node (parsed again only when a file changed).
    public static func systemRoots(files: HostFiles, environment: [String: String]) -> GoTrustPool {
        let bundles = environment["SSL_CERT_FILE"].map { [$0] } ?? goBundles
        let folders = environment["SSL_CERT_DIR"].map { $0.split(separator: ":").map(String.init) } ?? goFolders
        // Every file Go would read, in its order, with its version, each looked at and read in one
        // pass (a folder, FIFO or device is looked at, never opened). A folder's ~280 entries (its
        // files are links to a folder of ~140) through one descriptor per folder.
        let reads = HostFolderReads(files: files)
        var found: [(path: HostPath, bytes: [UInt8])] = []
        var key = ""
        func take(_ path: HostPath, as name: HostPath? = nil) -> Bool {
            let looked: (stat: stat, bytes: [UInt8]?)?
            do {
                looked = try reads.statusAndBytes(path, limit: 16 << 20)
            } catch {
                // A file that cannot be read (too large): taken, as a regular file, without certificates.
                looked = ((try? reads.status(path)) ?? nil).map { ($0, nil) }
            }
            guard let (st, bytes) = looked, st.st_mode & S_IFMT == S_IFREG else { return false }
            if let bytes { found.append((name ?? path, bytes)) }
            key +=
                "\(key.isEmpty ? "" : "|")\((name ?? path).path):\(st.st_dev).\(st.st_ino).\(st.st_size).\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
            return true
        }
        var bundle: String?
        for name in bundles {
            guard let path = try? HostPath(name), take(path) else { continue }
            bundle = name
            break
        }
        var folderCount: [(String, Int)] = []
        for name in folders {
            guard let folder = try? HostPath(name), let st = (try? reads.status(folder)) ?? nil, st.st_mode & S_IFMT == S_IFDIR else {
                continue
            }
            let opened = reads.folder(folder)
            var count = 0
            for entry in (opened?.names() ?? []).sorted() {
                guard let path = try? folder.appending(entry) else { continue }
                let target = opened?.linkTarget(entry)
                if let target, !target.contains("/") { continue }
                // A link into another folder (Debian's <name>.pem): followed from here, by the
                // rules `statusAndBytes` follows it with, its target read once.
                if take(target.map { HostFolderReads.following($0, from: path) } ?? path, as: path) { count += 1 }
            }
            folderCount.append((name, count))
        }
        let cacheKey = files.root.directory + "\u{0}" + key
        if let cached = cacheLock.withLock({ cache[cacheKey] }) { return cached }
        var certificates: [[UInt8]] = []
        var seen = Set<HashedBytes>()
        for (_, bytes) in found {
            for der in pemCertificates(bytes) where seen.insert(HashedBytes(der)).inserted { certificates.append(der) }
        }
        let parts = [bundle] + folderCount.map { "\($0.1) files of \($0.0)" }
        let summary = "Go's system roots (\(parts.compactMap { $0 }.joined(separator: " and ")): \(certificates.count) certificates)"
        let pool = GoTrustPool(certificates: certificates, summary: summary, failure: nil, version: key)
        cacheLock.withLock { cache = [cacheKey: pool] }
        return pool
    }

    private static let cacheLock = PlainLock()
    nonisolated(unsafe) private static var cache: [String: GoTrustPool] = [:]

    /// The DER of each `CERTIFICATE` block without headers (Go's `AppendCertsFromPEM`, which
    /// skips other blocks and certificates it cannot parse: here, whose DER does not walk).
    public static func pemCertificates(_ bytes: [UInt8]) -> [[UInt8]] {
        // Read as bytes, a line at a time (as Go's encoding/pem): a node's pool is ~280
        // certificates (the bundle and /etc/ssl/certs' files), each line a String was most of
        // tls-runtime-trust's time.
        var out: [[UInt8]] = []
        var body: [UInt8]?
        var hasHeaders = false
        for raw in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            let line = raw.last == UInt8(ascii: "\r") ? raw.dropLast() : raw
            if line.starts(with: PEMMarkers.beginPrefix) {
                body = line.elementsEqual(PEMMarkers.beginCertificate) ? [] : nil
                hasHeaders = false
            } else if line.starts(with: PEMMarkers.endPrefix) {
                if let b = body, !hasHeaders, line.elementsEqual(PEMMarkers.endCertificate),
                    let data = Data(base64Encoded: Data(b), options: .ignoreUnknownCharacters)
                {
                    // One copy out of the Data, walked and kept (~280 certificates a pool).
                    let der = [UInt8](data)
                    if DERWalk.isOneElement(der) { out.append(der) }
                }
                body = nil
            } else if body != nil {
                if line.contains(UInt8(ascii: ":")) { hasHeaders = true }
                body!.append(contentsOf: line)
            }
        }
        return out
    }
}

/// The PEM lines the readers of this module look for, as bytes.
enum PEMMarkers {
    static let beginPrefix = Array("-----BEGIN ".utf8)
    static let endPrefix = Array("-----END ".utf8)
    static let beginCertificate = Array("-----BEGIN CERTIFICATE-----".utf8)
    static let endCertificate = Array("-----END CERTIFICATE-----".utf8)
}

/// A DER element's outer framing, checked without decoding what it holds.
enum DERWalk {
    /// Whether `der` is exactly one SEQUENCE whose length matches the bytes.
    static func isOneElement(_ der: [UInt8]) -> Bool {
        guard der.count >= 2, der[0] == 0x30 else { return false }
        var length = Int(der[1])
        var offset = 2
        if length & 0x80 != 0 {
            let n = length & 0x7F
            guard n >= 1, n <= 4, der.count >= 2 + n else { return false }
            length = 0
            for i in 0..<n { length = length << 8 | Int(der[2 + i]) }
            offset += n
        }
        return offset + length == der.count
    }
}
