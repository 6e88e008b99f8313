import FoundationEssentials
import HostSystem
import Vocabulary

/// The hosts containerd tries for one registry host of an image reference, in order, and the TLS
/// each is given: containerd's own rules (remotes/docker/config: `HostDirFromRoot`, `loadHostDir`,
/// `parseHostsFile`, `loadCertFiles`, `ConfigureHosts`), as 1.6.20, 1.7.24 and 2.1.9 read them
/// (their sources compared; the layouts tested against each release's real pulls in
/// ContainerdHostsIntegrationTests):
/// - the folder: for each `config_path` root in order (`:`-separated), the first that exists of
///   `<host>_<port>_`, `<host:port>` and `_default` (for a reference without a port, `<host>` then
///   `_default`). Never the port-less folder for a `host:port` reference.
/// - in it, `hosts.toml`; when it is missing or empty, or does not decode, Docker's layout: every
///   `*.crt` is a CA of one host, the reference's own. containerd 1.x (go-toml v1's
///   `getSortedHosts`) also takes a file without any `[host."URL"]` table as one that does not
///   decode: its top-level `ca`, `skip_verify` and `server` count from 2.0 only (measured: a
///   hosts.toml of `skip_verify = true` alone fails 1.6's pull, passes 2.1's).
/// - the hosts: each `[host."URL"]` table in the file's order, then the top level (`server`, else
///   the reference's host over https) last. A host given `ca`, `client` or `skip_verify` gets a
///   pool of its own: the system roots plus its `ca` files; the others verify with the system
///   roots alone.
public struct ContainerdHosts: Sendable, Equatable {
    public struct Host: Sendable, Equatable {
        public var scheme: String
        /// `host[:port]` as containerd dials it.
        public var host: String
        public var capabilities: Set<String>
        /// Its `ca` files (relative ones made absolute against the folder); nil: none given, the
        /// system roots alone.
        public var caFiles: [HostPath]?
        public var skipVerify: Bool?
        /// The top level of hosts.toml, or the reference's host: the last one tried.
        public var isServer: Bool

        package init(
            scheme: String, host: String, capabilities: Set<String>, caFiles: [HostPath]?, skipVerify: Bool?, isServer: Bool
        ) {
            self.scheme = scheme
            self.host = host
            self.capabilities = capabilities
            self.caFiles = caFiles
            self.skipVerify = skipVerify
            self.isServer = isServer
        }

        /// Whether this host is `registry` itself: the same name and port (the scheme's default
        /// port when none is written).
        public func isEndpoint(of registry: RegistryAddress) -> Bool {
            guard let address = try? RegistryAddress(host) else { return false }
            let port = address.portWasGiven ? address.port : (scheme == "http" ? 80 : 443)
            return address.host == registry.host && port == registry.port
        }
    }

    /// The folder containerd reads for the host (nil: none exists, the defaults apply).
    public var folder: HostPath?
    /// Its hosts.toml when containerd reads it (nil: Docker's `*.crt` layout, or no folder).
    public var hostsTOML: HostPath?
    /// The hosts in the order containerd tries them; the last is the server.
    public var hosts: [Host]

    package init(folder: HostPath?, hostsTOML: HostPath?, hosts: [Host]) {
        self.folder = folder
        self.hostsTOML = hostsTOML
        self.hosts = hosts
    }
    /// What a person should know: a hosts.toml that does not decode, a table containerd skips.
    public var notes: [String] = []
    /// Why the runtime refuses every pull from the registry before it connects, if it does.
    public var failure: String?
    /// Every folder whose existence decides the selection, in containerd's order: a folder made
    /// or removed there (another writer of certs.d, e.g. Spegel clearing it) changes what it reads.
    public var candidates: [HostPath] = []

    public var server: Host? { hosts.last }

    /// The reference host containerd is asked about (`host` or `host:port`, as the image
    /// reference writes it) read from `roots` (containerd's `config_path` list).
    /// `major`: containerd's major version (1 or 2).
    public static func select(files: HostFiles, roots: [HostPath], host: String, major: Int = 2) throws -> ContainerdHosts {
        var selected = ContainerdHosts(folder: nil, hostsTOML: nil, hosts: [])
        search: for root in roots {
            for name in folderNames(host) {
                let path = try root.appending(name)
                selected.candidates.append(path)
                if files.kind(path) != nil {
                    selected.folder = path
                    break search
                }
            }
        }
        if let folder = selected.folder {
            let tomlPath = try folder.appending("hosts.toml")
            let bytes = files.kind(folder) == .directory ? try files.read(tomlPath, limit: 1 << 20) : nil
            if let bytes, !bytes.isEmpty {
                do {
                    selected.hosts = try parse(String(decoding: bytes, as: UTF8.self), folder: folder, major: major)
                    selected.hostsTOML = tomlPath
                } catch {
                    selected.notes.append(
                        "containerd cannot decode \(tomlPath) (\(error)) and falls back to the folder's *.crt files, as Docker's layout")
                    selected.hosts = try certFiles(files, folder: folder)
                }
            } else {
                selected.hosts = try certFiles(files, folder: folder)
            }
        } else {
            selected.hosts = [Host(scheme: "", host: "", capabilities: all, caFiles: nil, skipVerify: nil, isServer: true)]
        }
        // The last host without a name is the reference's own, over https.
        if var last = selected.hosts.last, last.host.isEmpty {
            last.host = host == "docker.io" ? "registry-1.docker.io" : host
            last.scheme = "https"
            selected.hosts[selected.hosts.count - 1] = last
        }
        return selected
    }

    package static let all: Set<String> = ["pull", "resolve", "push"]

    /// containerd's `hostPaths`: `host_port_` (for `host:port`), the host as written, `_default`.
    package static func folderNames(_ host: String) -> [String] {
        var names: [String] = []
        if let colon = host.lastIndex(of: ":"), colon > host.startIndex {
            names.append(host[..<colon] + "_" + host[host.index(after: colon)...] + "_")
        }
        return names + [host, "_default"]
    }

    /// `loadCertFiles`: one host, the reference's, with every `*.crt` of the folder as its CA.
    package static func certFiles(_ files: HostFiles, folder: HostPath) throws -> [Host] {
        var cas: [HostPath]?
        for name in try files.list(folder) where name.hasSuffix(".crt") {
            let path = try folder.appending(name)
            if files.kind(path) != .directory { cas = (cas ?? []) + [path] }
        }
        return [Host(scheme: "", host: "", capabilities: all, caFiles: cas, skipVerify: nil, isServer: true)]
    }

    package struct Invalid: Error, CustomStringConvertible {
        package var description: String
    }

    /// `parseHostsFile`: the `[host."URL"]` tables in the file's order, then the top level.
    /// A value of the wrong type, an unknown capability or a `server` that is no URL fails the
    /// whole file, as in containerd.
    package static func parse(_ text: String, folder: HostPath, major: Int = 2) throws -> [Host] {
        let document = try TOMLDocument(parsing: text)
        let table = document.root
        var hosts: [Host] = []
        let tables = table["host"]?.table
        if major < 2, tables == nil {
            throw Invalid(description: "it has no [host.\"URL\"] table, which containerd \(major).x's parser requires")
        }
        for name in hostTablesInOrder(document.headers) {
            guard let config = tables?[name]?.table else { continue }
            hosts.append(try host(server: name, config, folder: folder, isServer: false))
        }
        var serverName = ""
        if let value = table["server"] {
            guard let s = value.string else { throw Invalid(description: "server is not a string") }
            serverName = s
        }
        hosts.append(try host(server: serverName, table, folder: folder, isServer: true))
        return hosts
    }

    package static func host(server: String, _ config: TOMLTable, folder: HostPath, isServer: Bool) throws -> Host {
        var result = Host(scheme: "", host: "", capabilities: all, caFiles: nil, skipVerify: nil, isServer: isServer)
        if !server.isEmpty {
            let url = server.hasPrefix("http") ? server : "https://" + server
            guard let sep = url.firstRange(of: "://") else { throw Invalid(description: "unable to parse server \(server)") }
            result.scheme = String(url[..<sep.lowerBound])
            let rest = url[sep.upperBound...]
            result.host = String(rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" })
        }
        if let value = config["skip_verify"] {
            guard let b = value.bool else { throw Invalid(description: "skip_verify is not a boolean") }
            result.skipVerify = b
        }
        if let value = config["capabilities"] {
            guard let list = value.array else { throw Invalid(description: "capabilities is not an array") }
            var caps: Set<String> = []
            for item in list {
                guard let c = item.string?.lowercased(), all.contains(c) else {
                    throw Invalid(description: "unknown capability \(item.string ?? "(not a string)")")
                }
                caps.insert(c)
            }
            if !caps.isEmpty { result.capabilities = caps }
        }
        if let value = config["ca"] {
            var paths: [String] = []
            if let s = value.string {
                paths = [s]
            } else if let list = value.array {
                for item in list {
                    guard let s = item.string else { throw Invalid(description: "a ca entry is not a string") }
                    paths.append(s)
                }
            } else {
                throw Invalid(description: "invalid type for \"ca\"")
            }
            result.caFiles = try paths.map { p in
                p.hasPrefix("/") ? try HostPath(p) : try HostPath(folder.path + "/" + p)
            }
        }
        if let value = config["client"] {
            // A client pair does not change what the host trusts.
            guard value.string != nil || value.array != nil else { throw Invalid(description: "invalid type for \"client\"") }
        }
        if let value = config["override_path"], value.bool == nil { throw Invalid(description: "override_path is not a boolean") }
        if let value = config["dial_timeout"], value.string == nil { throw Invalid(description: "dial_timeout is not a string") }
        return result
    }

    /// The names of the `[host."NAME"]` table headers in the order the file writes them
    /// (containerd's `getSortedHosts`; sub-tables such as `[host."NAME".header]` add none).
    package static func hostTablesInOrder(_ headers: [[String]]) -> [String] {
        var names: [String] = []
        for path in headers where path.count >= 2 && path[0] == "host" && names.last != path[1] { names.append(path[1]) }
        return names
    }
}
