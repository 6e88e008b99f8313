import HostSystem
import Vocabulary

/// Trusts loaded once and kept while their source is unchanged: `run` probes every minute, and a
/// node's bundle (about 150 roots decoded or indexed) or containerd's pool rarely changes.
extension TLSTrust {
    /// The trust for `source`, loaded again only when its file changed (identity, size or
    /// modification time) or the pool is another.
    package static func cached(_ source: TrustSource) throws -> TLSTrust {
        switch source {
        case .file(let path):
            return try cached(name: path, version: fileVersion(path)) { try TLSTrust(trustFile: path) }
        case .hostFile(let files, let path):
            // Read inside the host root (links followed as a chroot would follow them).
            return try cached(name: "\(path) (host root \(files.root.directory))", version: files.version(path)) {
                guard let bytes = try files.read(path, limit: 16 << 20) else {
                    throw AgentError(.io, "cannot load trust from \(path): it does not exist")
                }
                return try TLSTrust(pem: bytes, naming: path.description)
            }
        case .pool(let pool):
            return try cacheLock.withLock {
                let key = "pool\u{0}" + pool.version
                if let (_, trust) = cache[key] { return trust }
                let trust = try TLSTrust(pool: pool)
                // A few pools (a node's hosts.toml gives one or two): start over past that.
                if cache.keys.filter({ $0.hasPrefix("pool\u{0}") }).count >= 4 { cache = cache.filter { !$0.key.hasPrefix("pool\u{0}") } }
                cache[key] = ([], trust)
                return trust
            }
        }
    }

    /// A file's trust under `name`, kept while `version` is the same (nil: not cached).
    private static func cached(name: String, version: [UInt64]?, load: () throws -> TLSTrust) throws -> TLSTrust {
        guard let version else { return try load() }
        return try cacheLock.withLock {
            if let (known, trust) = cache[name], known == version { return trust }
            let trust = try load()
            cache[name] = (version, trust)
            return trust
        }
    }

    private static let cacheLock = PlainLock()
    nonisolated(unsafe) private static var cache: [String: ([UInt64], TLSTrust)] = [:]
}
