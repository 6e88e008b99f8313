import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

/// Which k3s or RKE2 release a node runs, and the version rule that follows from it: from
/// k3s-io/k3s#10823 (v1.28.14, v1.29.9, v1.30.5, v1.31.1 and later) they leave alone a certs.d
/// folder they did not write; before, they delete the whole certs.d at each start.
extension K3sNode {
    /// `v1.30.5+k3s1`, `v1.30.5-rke2r1`: the Kubernetes version the release follows.
    public struct Version: Sendable, Equatable, CustomStringConvertible {
        public var major: Int
        public var minor: Int
        public var patch: Int
        public var description: String

        public init?(_ text: String) {
            guard text.hasPrefix("v") else { return nil }
            let numbers = text.dropFirst().prefix { $0.isNumber || $0 == "." }.split(separator: ".").compactMap { Int($0) }
            guard numbers.count == 3 else { return nil }
            (major, minor, patch, description) = (numbers[0], numbers[1], numbers[2], text)
        }
    }

    /// Whether this version leaves alone a certs.d folder without its header whose host is not
    /// in `registries.yaml`; nil when the version is not known.
    public var keepsForeignFolders: Bool? {
        guard let v = version else { return nil }
        guard v.major == 1 else { return v.major > 1 }
        switch v.minor {
        case ..<28: return false
        case 28: return v.patch >= 14
        case 29: return v.patch >= 9
        case 30: return v.patch >= 5
        case 31: return v.patch >= 1
        default: return true
        }
    }

    /// RKE2 unpacks each release into `data/<tag>-<digest>` and links `bin` to the one running.
    package static func rke2Version(_ files: HostFiles, dataDir: String = "/var/lib/rancher/rke2") throws -> Version? {
        if let target = files.symlinkTarget(try HostPath(dataDir + "/bin")),
            let folder = target.split(separator: "/").dropLast().last, let v = Version(String(folder))
        {
            return v
        }
        let names = (try? files.list(try HostPath(dataDir + "/data"))) ?? []
        let versions = names.compactMap { Version($0) }
        return versions.count == 1 ? versions[0] : nil
    }

    /// k3s keeps its version only in its binary (`-X …/pkg/version.Version=v1.31.1+k3s1`): the
    /// first `v<n>.<n>.<n>+k3s<n>` in the file. Read once per file version.
    package static func k3sVersion(_ files: HostFiles, dataDir: String = "/var/lib/rancher/k3s") -> Version? {
        for candidate in ["/usr/local/bin/k3s", dataDir + "/data/current/bin/k3s"] {
            guard let path = try? HostPath(candidate), let stamp = files.version(path) else { continue }
            let key = files.root.directory + "\u{0}" + path.path
            if let cached = cacheLock.withLock({ versionCache[key] }), cached.stamp == stamp {
                if let v = cached.version { return v }
                continue
            }
            let found = scanForK3sVersion(files, path)
            cacheLock.withLock { versionCache[key] = (stamp, found) }
            if let found { return found }
        }
        return nil
    }

    /// Host root and binary path → its file version and the version found in it (k3s's binary is ~70 MB).
    nonisolated(unsafe) static var versionCache: [String: (stamp: [UInt64], version: Version?)] = [:]
    package static let cacheLock = PlainLock()

    package static func scanForK3sVersion(_ files: HostFiles, _ path: HostPath) -> Version? {
        let marker = Array("+k3s".utf8)
        let chunk = 1 << 20
        var offset = 0
        while let bytes = try? files.readRegion(path, offset: offset, count: chunk + 64), !bytes.isEmpty {
            var i = 0
            while i + marker.count <= bytes.count {
                if bytes[i] == marker[0], Array(bytes[i..<i + marker.count]) == marker {
                    // Back to the `v`, forward over the digits of the k3s release.
                    var start = i
                    while start > 0, bytes[start - 1] == UInt8(ascii: ".") || (bytes[start - 1] >= 48 && bytes[start - 1] <= 57) {
                        start -= 1
                    }
                    var end = i + marker.count
                    while end < bytes.count, bytes[end] >= 48 && bytes[end] <= 57 { end += 1 }
                    if start > 0, bytes[start - 1] == UInt8(ascii: "v"), end > i + marker.count,
                        let v = Version(String(decoding: bytes[(start - 1)..<end], as: UTF8.self))
                    {
                        return v
                    }
                }
                i += 1
            }
            if bytes.count < chunk + 64 { break }
            offset += chunk
        }
        return nil
    }
}
