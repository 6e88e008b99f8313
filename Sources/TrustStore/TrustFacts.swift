import Containerd
import HostSystem
import Vocabulary

/// What the host holds that a trust plan depends on, read in one pass and changed by nothing:
/// the OS store's layout and the agent's files in it, the bundle, containerd's effective
/// `config_path`, and the runtimes' per-registry files. A plan is computed from these alone
/// (`TrustInstaller.plan(_:registry:certificates:refreshMode:)`), so a unit test builds one from a
/// fixture and `--dry-run` prints it.
public struct TrustFacts: Sendable, Equatable {
    public var layout: OSTrustLayout
    /// Whether the layout's tool (update-ca-certificates, update-ca-trust, ...) is installed.
    public var toolPresent: Bool
    /// The agent's files in the OS store's anchors folder (named with its prefix), by name, with
    /// their contents.
    public var anchors: [String: [UInt8]]
    /// The OS bundle as it is now ("" when missing).
    public var bundle: String
    /// A run was stopped between changing the store and rebuilding the bundle.
    public var refreshPending: Bool
    public var containerd: ContainerdRegistryConfig
    /// The parents of Docker's and CRI-O's certs.d that exist (`/etc/docker`, `/etc/containers`).
    public var otherRuntimeParents: Set<HostPath>
    /// `<certs.d>/<name>/hosts.toml` and `ca.crt` as they are, for the names read (absent files
    /// have no entry).
    public var runtimeFiles: [HostPath: [UInt8]]
    /// Why the agent's native rebuild would not leave what the host's tool leaves (a hook, links
    /// out of step, another family); nil when it would, or when it was not read because nothing
    /// is to be rebuilt (the store already holds the certificates: a reconcile's usual case,
    /// which then does not walk /etc/ssl/certs).
    public var nativeBlocker: String?
    /// What is wrong with the OS bundle as a whole (`DebianTrustStore.bundleDamage`), nil when it
    /// holds exactly what the node's CA sources give, or on a family the agent does not check.
    public var storeDamage: String?

    public init(
        layout: OSTrustLayout, toolPresent: Bool = true, anchors: [String: [UInt8]] = [:], bundle: String = "",
        refreshPending: Bool = false, containerd: ContainerdRegistryConfig,
        otherRuntimeParents: Set<HostPath> = [], runtimeFiles: [HostPath: [UInt8]] = [:], nativeBlocker: String? = nil,
        storeDamage: String? = nil
    ) {
        self.nativeBlocker = nativeBlocker
        self.storeDamage = storeDamage
        self.layout = layout
        self.toolPresent = toolPresent
        self.anchors = anchors
        self.bundle = bundle
        self.refreshPending = refreshPending
        self.containerd = containerd
        self.otherRuntimeParents = otherRuntimeParents
        self.runtimeFiles = runtimeFiles
    }

    /// Reads the facts for one registry's trust (its OS-store files and the runtime folders of
    /// the names images give it), or, with `registry` nil, for every registry of the agent's.
    /// `certificates`: the CAs to install, when known; a store that already holds them exactly
    /// needs no rebuild, so the native path's preconditions are not read. `running`: the node's
    /// running containerd, when the caller has looked (nil: look now).
    public static func gather(
        files: HostFiles, registry: RegistryAddress?, certificates: [Certificate]? = nil, running: [RunningContainerd]? = nil
    ) throws -> TrustFacts {
        let layout = try OSTrustLayout.detect(try OSRelease.read(from: files))
        let prefix = layout.filePrefix(registry)
        var anchors: [String: [UInt8]] = [:]
        for name in try files.list(layout.anchors) where name.hasPrefix(prefix) && name.hasSuffix(".crt") {
            anchors[name] = try files.read(try layout.anchors.appending(name)) ?? []
        }
        let containerd = try ContainerdRegistryConfig.read(from: files, registry: registry, running: running)
        var parents: Set<HostPath> = []
        for (parent, _) in TrustInstaller.otherRuntimeCertsDirs where try files.exists(try HostPath(parent)) {
            parents.insert(try HostPath(parent))
        }
        let folders = containerd.configPaths + (try TrustInstaller.otherRuntimeCertsDirs.map { try HostPath($0.0).appending($0.1) })
        let names = registry.map { Set($0.referenceNames) }
        var runtimeFiles: [HostPath: [UInt8]] = [:]
        for certsD in Set(folders) {
            for name in try files.list(certsD) where names?.contains(name) ?? true {
                for file in ["hosts.toml", "ca.crt"] {
                    let path = try certsD.appending(name).appending(file)
                    if let bytes = try files.read(path) { runtimeFiles[path] = bytes }
                }
            }
        }
        let bundle = try files.readString(layout.bundle) ?? ""
        let refreshPending = try files.exists(TrustInstaller.refreshPending)
        // The whole store, not only the agent's CA in it: a bundle that lost the system CAs still
        // holds the agent's and would otherwise be called fine.
        let damage = layout.family == .debian ? try DebianTrustStore(files: files).bundleDamage(bundle: bundle) : nil
        let inStep =
            damage == nil
            && (certificates.map { !refreshPending && TrustInstaller.storeHolds($0, prefix: prefix, anchors: anchors, bundle: bundle) }
                ?? false)
        return TrustFacts(
            layout: layout, toolPresent: try files.exists(layout.tool), anchors: anchors,
            bundle: bundle, refreshPending: refreshPending,
            containerd: containerd, otherRuntimeParents: parents, runtimeFiles: runtimeFiles,
            nativeBlocker: layout.family != .debian
                ? "the agent rebuilds only the Debian family's bundle" : inStep ? nil : try DebianTrustStore.nativeBlocker(files: files),
            storeDamage: damage)
    }

    /// Of the OS-store file names `names` (named with the agent's prefix), those that carry its
    /// marker: named like the agent's is not enough. For each other one, a note that it is left alone.
    func ownedAnchors(_ names: [String], notes: inout [String]) -> [String] {
        names.filter { name in
            if HostFiles.isOwned(String(decoding: anchors[name] ?? [], as: UTF8.self)) { return true }
            notes.append("\(layout.anchors.path)/\(name) is named like the agent's but has no marker: left alone")
            return false
        }
    }

    /// Whether `path` is absent or carries the agent's mark.
    func isOursOrAbsent(_ path: HostPath) -> Bool {
        guard let bytes = runtimeFiles[path] else { return true }
        return HostFiles.isOwned(String(decoding: bytes, as: UTF8.self))
    }
}
