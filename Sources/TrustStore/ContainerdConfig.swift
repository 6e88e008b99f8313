import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

/// Where containerd reads per-registry `hosts.toml` folders from (`config_path`).
public struct ContainerdRegistryConfig: Sendable, Equatable {
    /// The folders of `config_path`, in containerd's order; empty when certs.d is not enabled.
    public var configPaths: [HostPath]
    /// The config file read, if any.
    public var configFile: HostPath?
    /// What a person should know about how this was found.
    public var note: String?

    public static let configFile = try! HostPath("/etc/containerd/config.toml")
    public static let defaultCertsD = try! HostPath("/etc/containerd/certs.d")

    /// Reads containerd's config from the host. CRI's registry table is
    /// `plugins."io.containerd.grpc.v1.cri".registry` in 1.x/2.0 (config version 2) and
    /// `plugins."io.containerd.cri.v1.images".registry` in 2.x (version 3).
    public static func read(from files: HostFiles) throws -> ContainerdRegistryConfig {
        // k3s and RKE2 run their own containerd, generate its certs.d from registries.yaml and
        // delete the folders that lack their header: writing there would be undone.
        for distro in ["k3s", "rke2"] {
            let generated = try HostPath("/var/lib/rancher/\(distro)/agent/etc/containerd/config.toml")
            if try files.exists(generated) {
                return ContainerdRegistryConfig(
                    configPaths: [], configFile: generated,
                    note:
                        "\(distro) generates containerd's certs.d from /etc/rancher/\(distro)/registries.yaml and removes other folders: the agent leaves it alone; add the registry there (configs.<host:port>.tls.ca_file) and restart \(distro), or rely on the OS trust store"
                )
            }
        }
        guard let text = try files.readString(configFile) else {
            return ContainerdRegistryConfig(
                configPaths: [defaultCertsD], configFile: nil,
                note:
                    "no \(configFile); using \(defaultCertsD), containerd 2.x's default (containerd 1.x ignores certs.d unless config_path is set)"
            )
        }
        let main = ConfigFile(parsing: text)
        var configPath = main.configPath
        var decidedBy = configFile
        // Its `imports`, in order, each over what came before. containerd 1.x (config version 2
        // and older) replaces a plugin's whole table with an imported file's when that file has
        // one, so an import that configures the CRI plugin without config_path drops certs.d
        // (measured: `containerd config dump` of 1.6.20 shows config_path = ""); version 3
        // (containerd 2.x) merges keys.
        for importPath in try expandImports(main.imports, files: files) {
            guard let imported = try files.readString(importPath).map(ConfigFile.init(parsing:)) else { continue }
            if main.version >= 3 {
                if let path = imported.configPath {
                    configPath = path
                    decidedBy = importPath
                }
            } else if imported.mentionsCRI {
                configPath = imported.configPath
                decidedBy = importPath
            }
        }
        return settled(configPath, decidedBy: decidedBy)
    }

    /// What `config_path` (nil or empty: unset) gives, with a note naming the file that decided
    /// it when it is not config.toml itself.
    static func settled(_ configPath: String?, decidedBy: HostPath) -> ContainerdRegistryConfig {
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

    /// The files of `imports`: paths relative to /etc/containerd, a `*`/`?`/`[` pattern in the
    /// last component matched as Go's filepath.Glob does (sorted; a leading dot matches too), the
    /// config file itself skipped.
    static func expandImports(_ imports: [String], files: HostFiles) throws -> [HostPath] {
        var out: [HostPath] = []
        for item in imports {
            let absolute = item.hasPrefix("/") ? item : "/etc/containerd/" + item
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

    /// What one containerd config file says that matters here: its version, imports, CRI
    /// registry config_path, and whether it configures the CRI plugin at all.
    struct ConfigFile {
        var version = 1
        var imports: [String] = []
        var configPath: String?
        var mentionsCRI = false

        static let criPlugins = ["plugins.\"io.containerd.grpc.v1.cri\"", "plugins.\"io.containerd.cri.v1.images\""]

        init(parsing text: String) {
            var table = ""
            for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
                var line = rawLine.trimmingBlanks()
                if let hash = line.firstIndex(of: "#"), !line[..<hash].contains("\"") { line = String(line[..<hash]) }
                line = line.trimmingBlanks()
                if line.hasPrefix("[") {
                    table = line.trimming(charactersIn: "[] ")
                    if Self.criPlugins.contains(where: { table == $0 || table.hasPrefix($0 + ".") }) { mentionsCRI = true }
                    continue
                }
                guard let eq = line.firstIndex(of: "=") else { continue }
                let key = line[..<eq].trimmingBlanks()
                let value = line[line.index(after: eq)...].trimmingBlanks()
                let fullKey = table.isEmpty ? key : table + "." + key
                if Self.criPlugins.contains(where: { fullKey.hasPrefix($0 + ".") }) { mentionsCRI = true }
                if Self.criPlugins.contains(where: { fullKey == $0 + ".registry.config_path" }) {
                    configPath = value.trimming(charactersIn: "\"'")
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
