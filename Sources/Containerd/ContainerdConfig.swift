import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

/// Where containerd reads per-registry `hosts.toml` folders from (`config_path`).
public struct ContainerdRegistryConfig: Sendable, Equatable {
    /// The folders of `config_path`, in containerd's order; empty when certs.d is not enabled.
    /// containerd reads them on every pull, whoever wrote them.
    public var configPaths: [HostPath]
    /// The config file read, if any.
    public var configFile: HostPath?
    /// What a person should know about how this was found.
    public var note: String?
    /// Whether the agent may write its folder into the first of `configPaths`: false where
    /// another program owns certs.d (k3s and RKE2 versions that delete foreign folders, a host
    /// their registries.yaml claims).
    public var agentWrites = true
    /// Whether the CRI config asks for containerd's local pull, not its transfer service (2.1
    /// and later): `use_local_image_pull`, or an option the transfer service does not take
    /// (containerd's CheckLocalImagePullConfigs), in the main file or an import.
    public var localPull = false
    /// What a person can do when containerd's folders do not give it the registry's CA and the
    /// agent may not write them (the `registries.yaml` lines on k3s and RKE2).
    public var remedy: String?

    public init(configPaths: [HostPath], configFile: HostPath?, note: String?, agentWrites: Bool = true, remedy: String? = nil) {
        (self.configPaths, self.configFile, self.note, self.agentWrites, self.remedy) = (configPaths, configFile, note, agentWrites, remedy)
    }

    public static let configFile = try! HostPath("/etc/containerd/config.toml")
    public static let defaultCertsD = try! HostPath("/etc/containerd/certs.d")

    /// Reads containerd's config from the host. CRI's registry table is
    /// `plugins."io.containerd.grpc.v1.cri".registry` in 1.x/2.0 (config version 2) and
    /// `plugins."io.containerd.cri.v1.images".registry` in 2.x (version 3).
    ///
    /// `major`: containerd's major version (nil: found from its binary's Go build information
    /// where the node keeps it). It decides how `imports` combine: 1.x replaces a plugin's table,
    /// 2.x merges keys, whatever the files' `version` (measured with each release's own
    /// `containerd config dump`: ContainerdConfigIntegrationTests).
    ///
    /// `registry`: the registry the folders are for (on k3s and RKE2 it decides whether their
    /// certs.d is the agent's to write); nil for every registry of the agent's.
    public static func read(
        from files: HostFiles, major: Int? = nil, registry: RegistryAddress? = nil, running: [RunningContainerd]? = nil
    ) throws -> ContainerdRegistryConfig {
        let running = running ?? RunningContainerd.find(files)
        // k3s and RKE2 run their own containerd with a config they generate.
        if let k3s = try K3sNode.detect(files: files, running: running) { return try k3sConfig(k3s, files: files, registry: registry) }
        // The file the running containerd was started with (-c), else containerd's default.
        let configFile = running.lazy.compactMap(\.config).first ?? Self.configFile
        guard let layers = try layers(configFile, files: files) else {
            // Measured on 1.6.20, 1.7.24 and 2.1.9: with no file, config_path is empty and a
            // pull does not read /etc/containerd/certs.d (2.1.9 included).
            return ContainerdRegistryConfig(
                configPaths: [], configFile: nil,
                note:
                    "no \(configFile): containerd's config_path is empty, so it ignores certs.d; create the file with config_path = \"\(defaultCertsD)\" in its CRI registry table, or rely on the OS trust store (needs a containerd restart)"
            )
        }
        let main = layers.main
        var configPath = main.configPath
        var decidedBy = configFile
        // Its `imports`, in order, each over what came before. containerd 1.x replaces a
        // plugin's whole table with an imported file's when that file has one, so an import that
        // configures the CRI plugin without config_path drops certs.d (measured: `containerd
        // config dump` of 1.6.20 and 1.7.24 shows config_path = ""); 2.x merges keys (2.1.9
        // keeps the main file's config_path, version 2 files included).
        let merges = (major ?? binaryMajor(files) ?? (main.version >= 3 ? 2 : 1)) >= 2
        var localPull = main.localPull
        for (importPath, imported) in layers.imports {
            localPull = localPull || imported.localPull
            if merges {
                if let path = imported.configPath {
                    configPath = path
                    decidedBy = importPath
                }
            } else if imported.mentionsCRI {
                configPath = imported.configPath
                decidedBy = importPath
            }
        }
        var config = settled(configPath, decidedBy: decidedBy, main: configFile)
        config.localPull = localPull
        return config
    }

    /// containerd's folders on a k3s or RKE2 node: their certs.d, which their containerd reads
    /// on every pull. The agent writes there only where the running version keeps its folder
    /// across restarts and `registries.yaml` does not claim the registry; otherwise the folders
    /// are read as they are (k3s's own entry may hold a CA that verifies) and `remedy` gives the
    /// restart and the `registries.yaml` lines.
    package static func k3sConfig(_ k3s: K3sNode, files: HostFiles, registry: RegistryAddress?) throws -> ContainerdRegistryConfig {
        let name = k3s.distribution.rawValue
        let generated = k3s.generatedConfig
        let bundle = (try? OSTrustLayout.detect(try OSRelease.read(from: files)).bundle.path) ?? "/etc/ssl/certs/ca-certificates.crt"
        let fix =
            registry.map {
                "\(name)'s containerd reads the OS bundle, which holds the CA once the agent installed it, when it starts: \(k3s.restartAdvice); to name the CA in \(name)'s own config as well, add to \(k3s.registriesFile) before that restart:\n"
                    + k3s.registriesLines($0.hostAndPort, caFile: bundle)
            }
        guard k3s.started else {
            return ContainerdRegistryConfig(
                configPaths: [], configFile: nil,
                note:
                    "\(name) is installed and has not started on this node yet (no \(generated)): its containerd will read the OS bundle, which holds the CA once the agent installed it, when it starts"
            )
        }
        let configPath = ConfigFile(parsing: try files.readString(generated) ?? "").configPath ?? ""
        let paths = configPath.split(separator: ":").compactMap { try? HostPath(String($0)) }
        func none(_ why: String) -> ContainerdRegistryConfig {
            ContainerdRegistryConfig(configPaths: paths, configFile: generated, note: why, agentWrites: false, remedy: fix)
        }
        guard !paths.isEmpty else {
            return none(
                "\(name)'s generated \(generated) sets no config_path (a version before certs.d support, or a template without it): its containerd reads no certs.d"
            )
        }
        let version = k3s.version.map { "\(name) \($0)" } ?? name
        switch k3s.keepsForeignFolders {
        case nil:
            return none(
                "\(name)'s version is not known (k3s: no version string in its binary; RKE2: no data/<version> folder): releases before v1.28.14, v1.29.9, v1.30.5 and v1.31.1 delete every certs.d folder at start, so the agent writes nothing into \(paths[0])"
            )
        case false?:
            return none(
                "\(version) deletes every folder of \(paths[0]) at each start (fixed in v1.28.14, v1.29.9, v1.30.5, v1.31.1): a folder of the agent's would not outlive its next restart"
            )
        case true?:
            if let problem = k3s.registriesProblem { return none(problem + ": the agent cannot tell which folders \(name) rewrites") }
            if let registry, let claimed = registry.referenceNames.first(where: { k3s.registryHosts.contains($0) }) {
                var left = none(
                    "\(k3s.registriesFile) has an entry for \(claimed): \(name) rewrites \(paths[0].path)/\(claimed) at each start, so the agent leaves it to that entry, which must give containerd the registry's CA (a tls.ca_file of the OS bundle does once the agent installed it)"
                )
                left.remedy =
                    "\(name)'s containerd trusts the OS bundle as it read it when it started, and the tls.ca_file of \(k3s.registriesFile)'s entry for \(claimed): make that the OS bundle, which holds the CA once the agent installed it, and \(k3s.restartAdvice):\n"
                    + k3s.registriesLines(claimed, caFile: bundle)
                return left
            }
            return ContainerdRegistryConfig(
                configPaths: paths, configFile: generated,
                note:
                    "\(version) keeps certs.d folders without its header whose host is not in \(k3s.registriesFile): the agent's folder in \(paths[0]) is read on every pull and outlives \(name)'s restarts"
            )
        }
    }

    /// The major version of the node's containerd binary, from its Go build information: the
    /// main module or package path (`github.com/containerd/containerd/v2/...` is 2); nil when no
    /// binary is found or it says nothing.
    public static func binaryMajor(_ files: HostFiles) -> Int? {
        for candidate in ["/usr/bin/containerd", "/usr/local/bin/containerd"] {
            guard let path = try? HostPath(candidate), (try? files.exists(path)) == true,
                let info = (try? GoBuildInfo.read({ try files.readRegion(path, offset: $0, count: $1) })) ?? nil,
                let major = majorVersion(goPath: info.mainModule ?? info.mainPath)
            else { continue }
            return major
        }
        return nil
    }

    /// `github.com/containerd/containerd/v2/cmd/containerd` -> 2, `.../containerd/cmd/containerd` -> 1.
    package static func majorVersion(goPath: String?) -> Int? {
        let prefix = "github.com/containerd/containerd"
        guard let goPath, goPath.hasPrefix(prefix) else { return nil }
        let next = goPath.dropFirst(prefix.count).split(separator: "/").first ?? ""
        if next.hasPrefix("v"), let n = Int(next.dropFirst()), n >= 2 { return n }
        return 1
    }

    /// What `config_path` (nil or empty: unset) gives, with a note naming the file that decided
    /// it when it is not config.toml itself.
    package static func settled(_ configPath: String?, decidedBy: HostPath, main configFile: HostPath = configFile)
        -> ContainerdRegistryConfig
    {
        guard let found = configPath, !found.isEmpty else {
            let how =
                decidedBy == configFile
                ? "is not set in \(configFile)"
                : "is dropped by \(decidedBy), imported by \(configFile): containerd 1.x replaces the CRI plugin's whole table with an imported one"
            return ContainerdRegistryConfig(
                configPaths: [], configFile: configFile,
                note:
                    "containerd's config_path \(how): containerd ignores certs.d; set config_path = \"/etc/containerd/certs.d\" in its CRI registry table\(decidedBy == configFile ? "" : " of \(decidedBy)"), or rely on the OS trust store (needs a containerd restart)"
            )
        }
        let paths = found.split(separator: ":").compactMap { try? HostPath(String($0)) }
        return ContainerdRegistryConfig(
            configPaths: paths, configFile: configFile,
            note: decidedBy == configFile ? nil : "config_path from \(decidedBy), imported by \(configFile)")
    }

    /// The files of `imports`: paths relative to the config file's folder, a `*`/`?`/`[`
    /// pattern in the last component matched as Go's filepath.Glob does (sorted; a leading dot
    /// matches too), the config file itself skipped.
    package static func expandImports(_ imports: [String], of configFile: HostPath = configFile, files: HostFiles) throws -> [HostPath] {
        var out: [HostPath] = []
        for item in imports {
            let absolute = item.hasPrefix("/") ? item : configFile.parent.path + "/" + item
            guard let path = try? HostPath(absolute) else { continue }
            let name = path.lastComponent
            if name.contains(where: { "*?[".contains($0) }) {
                let folder = path.parent
                let matches = ((try? files.list(folder)) ?? []).filter { fnmatch(name, $0, 0) == 0 }.sorted()
                out += matches.compactMap { try? folder.appending($0) }
            } else {
                out.append(path)
            }
        }
        return out.filter { $0 != configFile }
    }

    public static func parse(_ text: String) -> ContainerdRegistryConfig {
        settled(ConfigFile(parsing: text).configPath, decidedBy: configFile)
    }

    /// The socket a containerd started with config file `configFile` (its `-c`; nil: the
    /// default file) and no `-a` serves: the `[grpc]` table's `address`, the last file of the
    /// main one and its `imports` (in order) that sets it, as containerd merges them (each
    /// release's own `containerd config dump` agrees: ContainerdConfigIntegrationTests); nil when
    /// none does (containerd's default socket) or the files cannot be read.
    public static func grpcAddress(configFile: HostPath?, files: HostFiles) -> String? {
        guard let layers = (try? layers(configFile ?? Self.configFile, files: files)) ?? nil else { return nil }
        return ([layers.main] + layers.imports.map(\.file)).compactMap(\.grpcAddress).last
    }

    /// A config file and the files of its `imports` (`expandImports`), each parsed, in the order
    /// containerd merges them; an import that does not exist is passed over. nil when `main`
    /// does not exist.
    package static func layers(_ main: HostPath, files: HostFiles) throws -> (
        main: ConfigFile, imports: [(path: HostPath, file: ConfigFile)]
    )? {
        guard let text = try files.readString(main) else { return nil }
        let config = ConfigFile(parsing: text)
        var imports: [(path: HostPath, file: ConfigFile)] = []
        for path in try expandImports(config.imports, of: main, files: files) {
            if let imported = try files.readString(path) { imports.append((path, ConfigFile(parsing: imported))) }
        }
        return (config, imports)
    }

    /// containerd 2.1.9's CheckLocalImagePullConfigs, for one key of the CRI image config and
    /// its value: an option the transfer service does not take, set (or off its default).
    static func asksLocalPull(_ key: String, value: String) -> Bool {
        switch key {
        case "use_local_image_pull", "discard_unpacked_layers", "image_pull_with_sync_fs": return value == "true"
        case "disable_snapshot_annotations": return value == "false"
        case "max_concurrent_downloads": return value != "3"
        default:
            return ["registry.mirrors.", "registry.configs.", "registry.auths."].contains { key.hasPrefix($0) }
        }
    }

    /// What one containerd config file says that matters here: its version, imports, CRI
    /// registry config_path, whether it configures the CRI plugin at all, and its gRPC socket.
    package struct ConfigFile {
        var version = 1
        var imports: [String] = []
        var configPath: String?
        /// `[grpc] address` (nil: unset or empty, as containerd takes an empty one).
        var grpcAddress: String?
        /// A CRI image option that makes containerd 2.1+ pull locally, not through its transfer
        /// service (CheckLocalImagePullConfigs, v2.1.9: the option set, or not at its default).
        var localPull = false
        var mentionsCRI = false

        static let criPlugins = ["plugins.\"io.containerd.grpc.v1.cri\"", "plugins.\"io.containerd.cri.v1.images\""]

        init(parsing text: String) {
            var table = ""
            for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
                var line = rawLine.trimmingBlanks()
                if let hash = line.firstIndex(of: "#"), !line[..<hash].contains("\"") { line = String(line[..<hash]) }
                line = line.trimmingBlanks()
                if line.hasPrefix("[") {
                    // containerd 2.x writes plugin names in single quotes ('io.containerd.cri.v1.images').
                    table = line.trimming(charactersIn: "[] ").replacing("'", with: "\"")
                    if Self.criPlugins.contains(where: { table == $0 || table.hasPrefix($0 + ".") }) { mentionsCRI = true }
                    // A mirrors, configs or auths table of the CRI registry: the local pull.
                    if let plugin = Self.criPlugins.first(where: { table.hasPrefix($0 + ".registry.") }) {
                        let sub = table.dropFirst(plugin.count + ".registry.".count)
                        if ["mirrors", "configs", "auths"].contains(where: { sub.hasPrefix($0 + ".") }) { localPull = true }
                    }
                    continue
                }
                guard let eq = line.firstIndex(of: "=") else { continue }
                let key = line[..<eq].trimmingBlanks().replacing("'", with: "\"")
                let value = line[line.index(after: eq)...].trimmingBlanks()
                let fullKey = table.isEmpty ? key : table + "." + key
                if let plugin = Self.criPlugins.first(where: { fullKey.hasPrefix($0 + ".") }) {
                    mentionsCRI = true
                    let option = String(fullKey.dropFirst(plugin.count + 1))
                    if ContainerdRegistryConfig.asksLocalPull(option, value: value.trimming(charactersIn: "\"'")) { localPull = true }
                }
                if Self.criPlugins.contains(where: { fullKey == $0 + ".registry.config_path" }) {
                    configPath = value.trimming(charactersIn: "\"'")
                } else if fullKey == "grpc.address" {
                    let address = value.trimming(charactersIn: "\"'")
                    grpcAddress = address.isEmpty ? nil : address
                } else if fullKey == "version", let v = Int(value) {
                    version = v
                } else if fullKey == "imports" {
                    // imports = ["a.toml", "/etc/containerd/conf.d/*.toml"] (one line)
                    imports = value.trimming(charactersIn: "[] ").split(separator: ",")
                        .map { $0.trimmingBlanks().trimming(charactersIn: "\"'") }.filter { !$0.isEmpty }
                }
            }
        }
    }
}
