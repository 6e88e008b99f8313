import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

/// What installing a registry CA on this host takes: file changes and whether the OS bundle has
/// to be rebuilt. Computed without changing anything; `TrustInstaller.apply` performs it.
public struct TrustPlan: Sendable {
    public var certificates: [Certificate]
    public var layout: OSTrustLayout
    public var fileChanges: [FileChange]
    /// The command that rebuilds the OS bundle, when it has to run.
    public var refresh: [String]?
    /// Facts a person should know (certs.d disabled, foreign files left alone, ...).
    public var notes: [String]
    /// Whether the agent rebuilds it itself (the Debian family) instead of running `refresh`.
    public var native = false

    public var osBundle: HostPath { layout.bundle }
    public var isEmpty: Bool { fileChanges.isEmpty && refresh == nil }

    /// One line per change, for `--dry-run` and the report.
    public var summary: [String] {
        fileChanges.map(\.description)
            + (refresh.map {
                native
                    ? ["rebuild \(layout.bundle.path) natively: what \($0.joined(separator: " ")) writes"]
                    : ["run \($0.joined(separator: " ")): rebuild the OS trust bundle"]
            } ?? [])
    }
}

/// How the OS bundle is rebuilt after a change.
public enum TrustRefreshMode: String, Sendable, CaseIterable {
    /// Native where it leaves exactly what the host's tool would and nothing else would run
    /// (`TrustFacts.nativeBlocker` is nil), the tool otherwise: the default.
    case auto
    /// The host's own tool, run inside the host root: exactly the host's result, hooks included.
    case tool
    /// The agent rebuilds the Debian bundle and links itself: the same result (tested against the
    /// tool), in milliseconds instead of seconds; the host's hooks do not run.
    case native
}

extension TrustRefreshMode {
    /// Whether the agent rebuilds the bundle itself on a host with these facts.
    public func isNative(_ facts: TrustFacts) -> Bool {
        switch self {
        case .native: facts.layout.family == .debian
        // Where the tool is missing, auto does what the tool would: refuse.
        case .auto: facts.layout.family == .debian && facts.nativeBlocker == nil && facts.toolPresent
        case .tool: false
        }
    }
}

/// Installs a registry's CA in the host's OS trust store (per distribution family) and in the
/// runtimes' per-registry folders: containerd's `certs.d` (`hosts.toml` + `ca.crt`, read on
/// every pull, no restart), and Docker's and CRI-O's `certs.d/<host:port>/ca.crt` where those
/// runtimes are configured on the host.
public struct TrustInstaller: Sendable {
    /// Docker's and CRI-O's (containers-common) per-registry folders, used when their parent exists.
    static let otherRuntimeCertsDirs = [("/etc/docker", "certs.d"), ("/etc/containers", "certs.d")]

    public let files: HostFiles
    public let runner: CommandRunner
    public let refreshMode: TrustRefreshMode

    public init(files: HostFiles, runner: CommandRunner, refreshMode: TrustRefreshMode = .auto) {
        self.files = files
        self.runner = runner
        self.refreshMode = refreshMode
    }

    public func layout() throws -> OSTrustLayout {
        try OSTrustLayout.detect(try OSRelease.read(from: files))
    }

    /// Gathers the host's facts, then plans from them.
    public func plan(registry: RegistryAddress, certificates: [Certificate]) throws -> TrustPlan {
        try Self.plan(
            try TrustFacts.gather(files: files, registry: registry), registry: registry, certificates: certificates,
            refreshMode: refreshMode)
    }

    /// What installing `certificates` for `registry` takes on a host with these facts. Reads
    /// nothing: every input is in `facts`.
    public static func plan(
        _ facts: TrustFacts, registry: RegistryAddress, certificates: [Certificate],
        refreshMode: TrustRefreshMode
    ) throws -> TrustPlan {
        var changes: [FileChange] = []
        var notes: [String] = []

        // OS store: one PEM file per CA, named and placed as the family's layout says.
        let layout = facts.layout
        let native = refreshMode.isNative(facts)
        if !native {
            guard facts.toolPresent else {
                throw AgentError(
                    .unsupportedHost, "\(layout.tool) is missing on the host",
                    hint: "install the host's CA certificates package (ca-certificates)")
            }
        }
        let prefix = layout.filePrefix(registry)
        var wanted: Set<String> = []
        for (i, cert) in certificates.enumerated() {
            let name = anchorName(prefix, i)
            wanted.insert(name)
            if let change = FileChange.ensure(
                try layout.anchors.appending(name), holds: anchorText(cert), current: facts.anchors[name],
                reason: "CA '\(cert.subject)' for the OS trust store")
            {
                changes.append(change)
            }
        }
        var removedFromStore = false
        let unwanted = facts.anchors.keys.sorted().filter { $0.hasPrefix(prefix) && $0.hasSuffix(".crt") && !wanted.contains($0) }
        for name in facts.ownedAnchors(unwanted, notes: &notes) {
            changes.append(
                FileChange(kind: .remove, path: try layout.anchors.appending(name), reason: "CA no longer wanted for \(registry)"))
            removedFromStore = true
        }
        let bundleHasAll = bundleHolds(certificates, facts.bundle)
        var refresh: [String]?
        if facts.refreshPending {
            refresh = [layout.tool.lastComponent] + layout.freshArguments
            notes.append("an earlier run was stopped before the trust bundle was rebuilt: rebuilding it from scratch")
        } else if let damage = facts.storeDamage {
            refresh = [layout.tool.lastComponent] + layout.freshArguments
            notes.append("\(damage): rebuilding it from scratch")
        } else if !changes.isEmpty || !bundleHasAll {
            refresh = [layout.tool.lastComponent] + (removedFromStore ? layout.freshArguments : layout.refreshArguments)
        }

        if refresh != nil, refreshMode == .auto {
            notes.append(
                native
                    ? "trust refresh auto: native (no hook in \(DebianTrustStore.hooks.path), the system certificates' links in step: what \(layout.tool.lastComponent) would write)"
                    : "trust refresh auto: \(layout.tool.lastComponent) (\(facts.nativeBlocker ?? ""))")
        }

        // containerd: a folder of certs.d for each name references give the registry
        // (certs.d/<host:port>/ and, for port 443, certs.d/<host>/ too).
        let containerd = facts.containerd
        if let note = containerd.note { notes.append(note) }
        let caText = HostFiles.ownershipMarker + "\n" + certificates.map(\.pem).joined()
        if containerd.agentWrites, let certsD = containerd.configPaths.first {
            for name in registry.referenceNames {
                let dir = try certsD.appending(name)
                let hostsToml = try dir.appending("hosts.toml")
                let caFile = try dir.appending("ca.crt")
                guard facts.isOursOrAbsent(hostsToml) else {
                    notes.append("\(hostsToml) was not written by node-agent: left alone")
                    continue
                }
                guard facts.isOursOrAbsent(caFile) else {
                    notes.append("\(caFile) was not written by node-agent: left alone")
                    continue
                }
                if let c = FileChange.ensure(
                    caFile, holds: Array(caText.utf8), current: facts.runtimeFiles[caFile],
                    reason: "CA for containerd pulls from \(name)")
                {
                    changes.append(c)
                }
                let toml = hostsTOML(registry: registry, caFile: caFile)
                if let c = FileChange.ensure(
                    hostsToml, holds: Array(toml.utf8), current: facts.runtimeFiles[hostsToml],
                    reason: "containerd host config for \(name)")
                {
                    changes.append(c)
                }
            }
        }
        // Docker and CRI-O read <certs.d>/<host:port>/*.crt on every pull too.
        for (parent, sub) in otherRuntimeCertsDirs where facts.otherRuntimeParents.contains(try HostPath(parent)) {
            let certsD = try HostPath(parent).appending(sub)
            if containerd.configPaths.first == certsD { continue }
            let caFile = try certsD.appending(registry.hostAndPort).appending("ca.crt")
            guard facts.isOursOrAbsent(caFile) else {
                notes.append("\(caFile) was not written by node-agent: left alone")
                continue
            }
            if let c = FileChange.ensure(
                caFile, holds: Array(caText.utf8), current: facts.runtimeFiles[caFile],
                reason: "CA for \(parent == "/etc/docker" ? "Docker" : "CRI-O/Podman") pulls from \(registry.hostAndPort)")
            {
                changes.append(c)
            }
        }
        return TrustPlan(certificates: certificates, layout: layout, fileChanges: changes, refresh: refresh, notes: notes, native: native)
    }

    /// The OS-store file of the `i`th certificate (from 0).
    static func anchorName(_ prefix: String, _ i: Int) -> String { "\(prefix)\(i + 1).crt" }

    /// What the agent's OS-store file of a certificate holds: the ownership marker (a comment
    /// line, which update-ca-certificates copies into the bundle as the agent's native rebuild
    /// does, and PEM readers skip), then the PEM. The marker makes it the agent's to replace or
    /// remove; a file of the same name without it is left alone.
    public static func anchorText(_ certificate: Certificate) -> [UInt8] {
        Array((HostFiles.ownershipMarker + "\n" + certificate.pem).utf8)
    }

    static func bundleHolds(_ certificates: [Certificate], _ bundle: String) -> Bool {
        certificates.allSatisfy { bundle.contains(pemBody($0.pem)) }
    }

    /// Whether the store already holds exactly these certificates, as the agent writes them, and
    /// the bundle all of them: then a plan rebuilds nothing.
    static func storeHolds(_ certificates: [Certificate], prefix: String, anchors: [String: [UInt8]], bundle: String) -> Bool {
        anchors.count == certificates.count
            && certificates.enumerated().allSatisfy { anchors[anchorName(prefix, $0.offset)] == anchorText($0.element) }
            && bundleHolds(certificates, bundle)
    }

    /// Written before the files of a plan that rebuilds the bundle change, removed once it is
    /// rebuilt: a run stopped in between (a kill, a crash, a full disk) leaves it, and the next run
    /// rebuilds even when the files themselves are already as wanted.
    public static let refreshPending = try! HostPath("/var/lib/node-agent/trust-refresh-pending")

    /// Performs the plan: files first (each atomic), then the OS bundle rebuild: with the host's
    /// own tool, run inside the host root so that its links and hooks are the node's, or natively.
    public func apply(_ plan: TrustPlan) throws {
        try applyFiles(plan)
        try refreshStore(plan)
    }

    /// The plan's files, in one batch. With a rebuild to come, the marker goes first in the same
    /// batch: its rename comes before the CA files' (and ext4's journal keeps that order), so a
    /// crash that leaves them in place leaves it too, and the next run rebuilds.
    public func applyFiles(_ plan: TrustPlan) throws {
        let marker: [HostFiles.Operation] =
            plan.refresh == nil ? [] : [.write(Self.refreshPending, Array("\(HostFiles.ownershipMarker)\n".utf8), mode: 0o644)]
        try files.perform(
            marker
                + plan.fileChanges.map(\.operation))
    }

    /// The OS store's rebuild the plan asks for (after `applyFiles`), then the marker goes.
    public func refreshStore(_ plan: TrustPlan) throws {
        guard let refresh = plan.refresh else { return }
        try rebuild(plan.layout, refresh, native: plan.native)
        // Not synced: should a crash undo the removal, the next run rebuilds once more.
        try files.removeEntry(Self.refreshPending)
    }

    func rebuild(_ layout: OSTrustLayout, _ refresh: [String], native: Bool) throws {
        if native && layout.family == .debian {
            try DebianTrustStore(files: files).rebuild()
            return
        }
        let result = try runner.run(hostTool: layout.tool, Array(refresh.dropFirst()), in: files.root)
        guard result.succeeded else {
            throw AgentError(
                .commandFailed,
                "\(refresh[0]) failed (exit \(result.status)): \(result.stderr.trimmingWhitespace().escapedForMessage)",
                hint: "run it by hand on the node to see why", cause: .exitStatus(result.status))
        }
    }

    /// The registry's `hosts.toml`: its server, with the CA file. Every string is a TOML basic
    /// string, escaped: a `config_path` may hold any character a file name can.
    static func hostsTOML(registry: RegistryAddress, caFile: HostPath) -> String {
        let server = TOMLString.basic("https://\(registry.hostAndPort)")
        return """
            \(HostFiles.ownershipMarker)
            server = \(server)

            [host.\(server)]
              capabilities = ["pull", "resolve"]
              ca = \(TOMLString.basic(caFile.path))

            """
    }
}

/// The base64 body of a PEM block, without header, footer or line breaks' positions mattering.
func pemBody(_ pem: String) -> String {
    pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined(separator: "\n")
}
