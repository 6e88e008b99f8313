import Containerd
import FoundationEssentials
import HostSystem
import Vocabulary

/// What containers/image (the pull library of CRI-O, Podman and skopeo) uses for one registry
/// host, by its own rules (docker/docker_client.go `dockerCertDir` and `newDockerClient`,
/// pkg/tlsclientconfig `SetupCertificates`, pkg/sysregistriesv2 `FindRegistry`), in the same
/// shape as containerd's (`ContainerdHosts`):
/// - the certificate folder: the first that exists of `certs.d/<host:port>` under root's
///   `~/.config/containers`, `/etc/containers` and `/etc/docker`; every `*.crt` in it joins
///   Go's system roots (a file without a certificate is passed over, unlike containerd); a
///   `.cert` without its `.key` (or a `.key` without its `.cert`) fails every pull;
/// - `registries.conf` and `registries.conf.d/*.conf`: the `[[registry]]` whose prefix matches
///   the reference longest (v2), or the v1 `[registries.insecure]`/`[registries.block]` lists:
///   `insecure = true` skips verification, `blocked = true` refuses; a file that does not decode
///   fails every pull.
/// Mirrors are not modelled: the registry itself is what is verified.
public enum ContainersImageHosts {
    static let certDirs = ["/root/.config/containers/certs.d", "/etc/containers/certs.d", "/etc/docker/certs.d"]
    static let registriesConf = "/etc/containers/registries.conf"
    static let registriesConfD = "/etc/containers/registries.conf.d"

    /// Whether the node has containers/image's configuration at all (containers-common).
    public static func present(_ files: HostFiles) -> Bool {
        files.kind(try! HostPath("/etc/containers")) == .directory
    }

    /// `host`: the reference's registry as written (`host:port`); `repository`: the reference's
    /// name without its tag (`host:port/repo`), which registries.conf prefixes match.
    public static func select(files: HostFiles, host: String, repository: String) throws -> ContainerdHosts {
        var selected = ContainerdHosts(folder: nil, hostsTOML: nil, hosts: [])
        for dir in certDirs {
            let path = try HostPath(dir).appending(host)
            if files.kind(path) != nil {
                selected.folder = path
                break
            }
        }
        var server = ContainerdHosts.Host(
            scheme: "https", host: host, capabilities: ContainerdHosts.all, caFiles: nil, skipVerify: nil, isServer: true)
        if let folder = selected.folder, files.kind(folder) == .directory {
            let names = try files.list(folder)
            for name in names {
                let path = try folder.appending(name)
                if name.hasSuffix(".crt"), files.kind(path) != .directory { server.caFiles = (server.caFiles ?? []) + [path] }
                if name.hasSuffix(".cert"), !names.contains(String(name.dropLast(5)) + ".key") {
                    selected.failure =
                        "\(path) has no \(name.dropLast(5)).key beside it: containers/image refuses every pull from this registry"
                }
                if name.hasSuffix(".key"), !names.contains(String(name.dropLast(4)) + ".cert") {
                    selected.failure =
                        "\(path) has no \(name.dropLast(4)).cert beside it: containers/image refuses every pull from this registry"
                }
            }
        }
        do {
            if let registry = try registry(files: files, repository: repository) {
                if registry.blocked {
                    selected.failure = "\(registry.source) blocks \(registry.prefix): containers/image refuses every pull from it"
                }
                if registry.insecure {
                    server.skipVerify = true
                    selected.notes.append("\(registry.source) marks \(registry.prefix) insecure")
                }
            }
        } catch {
            selected.failure = "\(error): containers/image refuses every pull until it decodes"
        }
        selected.hosts = [server]
        return selected
    }

    struct Registry: Equatable {
        var prefix: String
        var insecure = false
        var blocked = false
        var source: String
    }

    /// The registries.conf entry for `repository`: the longest matching prefix, drop-ins (in
    /// name order) replacing the main file's entries of the same prefix.
    static func registry(files: HostFiles, repository: String) throws -> Registry? {
        var entries: [Registry] = []
        var paths = [try HostPath(registriesConf)]
        let dropIns = try HostPath(registriesConfD)
        paths += try files.list(dropIns).filter { $0.hasSuffix(".conf") }.map { try dropIns.appending($0) }
        for path in paths {
            guard let text = try files.readString(path) else { continue }
            let document: TOMLDocument
            do { document = try TOMLDocument(parsing: text) } catch { throw TOMLError("\(path) does not decode (\(error))") }
            for entry in try registries(document.root, source: path.path) {
                entries.removeAll { $0.prefix == entry.prefix }
                entries.append(entry)
            }
        }
        var best: Registry?
        for e in entries where matches(repository, prefix: e.prefix) && e.prefix.count > (best?.prefix.count ?? 0) { best = e }
        return best
    }

    static func registries(_ root: TOMLTable, source: String) throws -> [Registry] {
        var out: [Registry] = []
        for item in root["registry"]?.array ?? [] {
            guard let t = item.table else { throw TOMLError("\(source): registry is not an array of tables") }
            guard let prefix = t["prefix"]?.string ?? t["location"]?.string, !prefix.isEmpty else { continue }
            var r = Registry(prefix: prefix, source: source)
            if let v = t["insecure"] {
                guard let b = v.bool else { throw TOMLError("\(source): insecure is not a boolean") }
                r.insecure = b
            }
            if let v = t["blocked"] {
                guard let b = v.bool else { throw TOMLError("\(source): blocked is not a boolean") }
                r.blocked = b
            }
            out.append(r)
        }
        // The v1 format: lists of registries.
        for (list, flag) in [("insecure", true), ("block", false)] {
            for item in root["registries"]?.table?[list]?.table?["registries"]?.array ?? [] {
                guard let prefix = item.string else { continue }
                var r = out.first { $0.prefix == prefix } ?? Registry(prefix: prefix, source: source)
                if flag { r.insecure = true } else { r.blocked = true }
                out.removeAll { $0.prefix == prefix }
                out.append(r)
            }
        }
        return out
    }

    /// sysregistriesv2's `refMatchingPrefix`: the prefix, then the end or one of `:`, `/`, `@`;
    /// `*.domain` matches the subdomains of domain.
    static func matches(_ repository: String, prefix: String) -> Bool {
        if prefix.hasPrefix("*.") {
            let host = repository.prefix { $0 != "/" && $0 != ":" }
            return host.hasSuffix(prefix.dropFirst())
        }
        guard repository.hasPrefix(prefix) else { return false }
        guard repository.count > prefix.count else { return true }
        let next = repository[repository.index(repository.startIndex, offsetBy: prefix.count)]
        return next == ":" || next == "/" || next == "@"
    }
}
