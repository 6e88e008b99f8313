import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

/// Where this host's trust for one registry lives, as found on the host (no CA file needed):
/// the OS bundle, the CA files containerd reads for it from certs.d, and the agent's own OS-store files.
public struct RegistryTrustLocations: Sendable {
    public var osBundle: HostPath
    public var runtimeCAFiles: [HostPath]
    public var osStoreFiles: [HostPath]
    public var note: String?
    /// What a person can do when containerd's folders do not give it the registry's CA and the
    /// agent may not write them (k3s and RKE2: the restart, the `registries.yaml` lines).
    public var remedy: String?

    /// `running`: the node's running containerd, when the caller has looked (nil: look now).
    public static func discover(files: HostFiles, registry: RegistryAddress, running: [RunningContainerd]? = nil) throws
        -> RegistryTrustLocations
    {
        let containerd = try ContainerdRegistryConfig.read(from: files, registry: registry, running: running)
        var runtime: [HostPath] = []
        // containerd uses the first config_path folder that has a folder for the host.
        search: for certsD in containerd.configPaths {
            for name in registry.referenceNames {
                let dir = try certsD.appending(name)
                if let toml = try files.readString(try dir.appending("hosts.toml")) {
                    runtime += caPaths(inHostsTOML: toml, dir: dir)
                } else {
                    // Without hosts.toml containerd falls back to Docker's layout: *.crt files.
                    runtime += try files.list(dir).filter { $0.hasSuffix(".crt") }.map { try dir.appending($0) }
                }
                if !runtime.isEmpty { break search }
            }
        }
        let layout = try OSTrustLayout.detect(try OSRelease.read(from: files))
        let prefix = layout.filePrefix(registry)
        let own = try files.list(layout.anchors).filter { $0.hasPrefix(prefix) && $0.hasSuffix(".crt") }
            .map { try layout.anchors.appending($0) }
        return RegistryTrustLocations(
            osBundle: layout.bundle, runtimeCAFiles: runtime, osStoreFiles: own, note: containerd.note, remedy: containerd.remedy)
    }

    /// The `ca = "..."` (or `ca = ["...", ...]`) paths of a hosts.toml, TOML escapes decoded;
    /// relative paths are relative to the host's folder, as containerd reads them.
    static func caPaths(inHostsTOML text: String, dir: HostPath) -> [HostPath] {
        var out: [HostPath] = []
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingBlanks()
            guard line.hasPrefix("ca"), let eq = line.firstIndex(of: "="),
                line[..<eq].trimmingBlanks() == "ca"
            else { continue }
            for p in TOMLString.strings(inValue: line[line.index(after: eq)...]) where !p.isEmpty {
                if p.hasPrefix("/") {
                    if let hp = try? HostPath(p) { out.append(hp) }
                } else if let hp = try? dir.appending(p) {
                    out.append(hp)
                }
            }
        }
        return out
    }
}
