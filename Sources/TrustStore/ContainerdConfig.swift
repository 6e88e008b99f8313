import HostSystem

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
                    note: "\(distro) generates containerd's certs.d from /etc/rancher/\(distro)/registries.yaml and removes other folders: the agent leaves it alone; add the registry there (configs.<host:port>.tls.ca_file) and restart \(distro), or rely on the OS trust store")
            }
        }
        guard let text = try files.readString(configFile) else {
            return ContainerdRegistryConfig(
                configPaths: [defaultCertsD], configFile: nil,
                note: "no \(configFile); using \(defaultCertsD), containerd 2.x's default (containerd 1.x ignores certs.d unless config_path is set)")
        }
        return parse(text)
    }

    public static func parse(_ text: String) -> ContainerdRegistryConfig {
        var table = ""
        var found: String?
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = rawLine.trimmingBlanks()
            if let hash = line.firstIndex(of: "#"), !line[..<hash].contains("\"") { line = String(line[..<hash]) }
            line = line.trimmingBlanks()
            if line.hasPrefix("[") {
                table = line.trimming(charactersIn: "[] ")
                continue
            }
            let registryTables = ["plugins.\"io.containerd.grpc.v1.cri\".registry",
                                  "plugins.\"io.containerd.cri.v1.images\".registry"]
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingBlanks()
            let value = line[line.index(after: eq)...].trimmingBlanks()
            let fullKey = table.isEmpty ? key : table + "." + key
            if registryTables.contains(where: { fullKey == $0 + ".config_path" }) {
                found = value.trimming(charactersIn: "\"'")
            }
        }
        guard let found, !found.isEmpty else {
            return ContainerdRegistryConfig(
                configPaths: [], configFile: configFile,
                note: "containerd's config_path is not set in \(configFile): containerd ignores certs.d; set config_path = \"/etc/containerd/certs.d\" in its CRI registry table, or rely on the OS trust store (needs a containerd restart)")
        }
        let paths = found.split(separator: ":").compactMap { try? HostPath(String($0)) }
        return ContainerdRegistryConfig(configPaths: paths, configFile: configFile, note: nil)
    }
}

import FoundationEssentials
import Glibc
