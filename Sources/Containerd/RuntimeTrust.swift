import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

/// Where this host's trust for one registry lives, as found on the host (no CA file needed):
/// the OS bundle, the CA files containerd reads for it from certs.d, and the agent's own OS-store files.
public struct RegistryTrustLocations: Sendable {
    public var osBundle: HostPath
    public var runtimeCAFiles: [HostPath]
    /// What containerd reads for the registry's references (`host:port`): its folder, hosts
    /// and CAs, by containerd's own rules.
    public var runtimeHosts: ContainerdHosts
    public var osStoreFiles: [HostPath]
    public var note: String?
    /// What a person can do when containerd's folders do not give it the registry's CA and the
    /// agent may not write them (k3s and RKE2: the restart, the `registries.yaml` lines).
    public var remedy: String?

    /// What the running containerd said of its own config, and where that disagrees with its
    /// config files (a restart pending); nil when it was not asked or cannot tell.
    public var runtimeConfig: (word: RuntimeWord, disagreement: String?)?

    /// `running`: the node's running containerd, when the caller has looked (nil: look now).
    /// `runtime`: what it said over its CRI socket, when asked: its `config_path` as it runs
    /// decides which folders are read, and its version which parser rules apply.
    public static func discover(
        files: HostFiles, registry: RegistryAddress, running: [RunningContainerd]? = nil, runtime: RuntimeWord? = nil
    ) throws -> RegistryTrustLocations {
        let containerd = try ContainerdRegistryConfig.read(from: files, major: runtime?.major, registry: registry, running: running)
        var roots = containerd.configPaths
        var runtimeConfig: (word: RuntimeWord, disagreement: String?)?
        if let runtime, runtime.reportsRegistry {
            let said = (runtime.configPath ?? "").split(separator: ":").compactMap { try? HostPath(String($0)) }
            var disagreement: String?
            if said != roots {
                let files = roots.isEmpty ? "no config_path" : "config_path \"\(roots.map(\.path).joined(separator: ":"))\""
                disagreement =
                    "containerd \(runtime.version) runs with config_path \"\(runtime.configPath ?? "")\" (its CRI Status), while its config gives \(files) (\(containerd.configFile?.path ?? "no config file")): it reads its config only when it starts, so the checks follow what it runs with; restart containerd to load the file"
                roots = said
            }
            runtimeConfig = (runtime, disagreement)
        }
        let major = runtime?.major ?? ContainerdRegistryConfig.binaryMajor(files) ?? 2
        var note = containerd.note
        // containerd 2.1 and later pull for CRI through their transfer service (unless the CRI
        // config asks for the local pull), which takes config_path as one folder (v2.1.9 to
        // v2.2.7: registry.WithHostDir(ConfigPath), not split; containerd#12808): a list names
        // a folder with colons in its name, which is no folder, so no certs.d is read. Where the
        // minor version is not known, the transfer service is taken: the checks then do not
        // count on folders containerd may not read.
        if roots.count > 1, major >= 2, major > 2 || (runtime?.minor ?? 1) >= 1, !containerd.localPull,
            let one = try? HostPath(roots.map(\.path).joined(separator: ":"))
        {
            note = [
                note,
                "containerd \(runtime?.version ?? "\(major).x") pulls through its transfer service, which takes config_path \"\(one.path)\" as one folder, not a list (containerd#12808): no certs.d is read; set config_path to one folder (\(roots[0].path)) and restart containerd",
            ].compactMap { $0 }.joined(separator: "; ")
            roots = [one]
        }
        // The probe's reference names the registry host:port (RuntimePullProbe.probeReference).
        let hosts = try ContainerdHosts.select(files: files, roots: roots, host: registry.hostAndPort, major: major)
        var cas: [HostPath] = []
        for host in hosts.hosts where host.isEndpoint(of: registry) {
            for ca in host.caFiles ?? [] where !cas.contains(ca) { cas.append(ca) }
        }
        let layout = try OSTrustLayout.detect(try OSRelease.read(from: files))
        let prefix = layout.filePrefix(registry)
        let own = try files.list(layout.anchors).filter { $0.hasPrefix(prefix) && $0.hasSuffix(".crt") }
            .map { try layout.anchors.appending($0) }
        var locations = RegistryTrustLocations(
            osBundle: layout.bundle, runtimeCAFiles: cas, runtimeHosts: hosts, osStoreFiles: own, note: note,
            remedy: containerd.remedy)
        locations.runtimeConfig = runtimeConfig
        return locations
    }
}

/// What the node's running containerd says of itself over its CRI socket (CRI `Version`, and
/// `Status` with `verbose`, whose `info["config"]` is its effective CRI config: what `crictl info`
/// prints). containerd 1.6 and 1.7 give their registry `configPath` there; 2.x gives no registry
/// config (measured on 1.6.20, 1.7.24 and 2.1.9), so for 2.x the files decide.
public struct RuntimeWord: Sendable, Equatable {
    /// As the runtime gives it: `1.6.20~ds1`, `v1.7.24`, `2.1.9`.
    public var version: String
    /// Whether its Status carries a CRI registry config at all.
    public var reportsRegistry: Bool
    /// Its registry `config_path` as it runs ("" when unset); nil where it does not report one.
    public var configPath: String?

    public init(version: String, reportsRegistry: Bool, configPath: String?) {
        (self.version, self.reportsRegistry, self.configPath) = (version, reportsRegistry, configPath)
    }

    /// The major version (`v1.7.24` -> 1); nil when the text does not start with one.
    public var major: Int? {
        let digits = (version.hasPrefix("v") ? version.dropFirst() : version[...]).prefix { $0.isASCII && $0.isNumber }
        return Int(digits)
    }

    /// The minor version (`2.1.9+unknown` -> 1); nil when the text has none.
    public var minor: Int? {
        let parts = (version.hasPrefix("v") ? version.dropFirst() : version[...]).split(separator: ".", maxSplits: 2)
        guard parts.count >= 2 else { return nil }
        return Int(parts[1].prefix { $0.isASCII && $0.isNumber })
    }
}
