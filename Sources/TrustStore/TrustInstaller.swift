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

/// Installs a registry's CA in the host's OS trust store (per distribution family) and in the
/// runtimes' per-registry folders: containerd's `certs.d` (`hosts.toml` + `ca.crt`, read on
/// every pull, no restart), and Docker's and CRI-O's `certs.d/<host:port>/ca.crt` where those
/// runtimes are configured on the host.
public struct TrustInstaller: Sendable {
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
    public func gatherAndPlan(registry: RegistryAddress, certificates: [Certificate]) throws -> TrustPlan {
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
        var notes: [String] = []
        let native = refreshMode.isNative(facts)
        if !native {
            guard facts.toolPresent else {
                throw AgentError(
                    .unsupportedHost, "\(facts.layout.tool) is missing on the host",
                    hint: "install the host's CA certificates package (ca-certificates)")
            }
        }
        var (changes, refresh) = try osStore(facts, registry: registry, certificates: certificates, notes: &notes)
        if refresh != nil, let note = refreshMode.autoNote(native: native, facts) { notes.append(note) }
        changes += try certsDirChanges(facts, registry: registry, certificates: certificates, notes: &notes)
        return TrustPlan(
            certificates: certificates, layout: facts.layout, fileChanges: changes, refresh: refresh, notes: notes, native: native)
    }

    /// The OS store's part: one PEM file per CA, named and placed as the family's layout says,
    /// the agent's files no longer wanted removed; and the rebuild that takes, if any.
    static func osStore(_ facts: TrustFacts, registry: RegistryAddress, certificates: [Certificate], notes: inout [String]) throws
        -> (changes: [FileChange], refresh: [String]?)
    {
        var changes: [FileChange] = []
        let layout = facts.layout
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
        var refresh: [String]?
        if facts.refreshPending {
            refresh = [layout.tool.lastComponent] + layout.freshArguments
            notes.append("an earlier run was stopped before the trust bundle was rebuilt: rebuilding it from scratch")
        } else if let damage = facts.storeDamage {
            refresh = [layout.tool.lastComponent] + layout.freshArguments
            notes.append("\(damage): rebuilding it from scratch")
        } else if !changes.isEmpty || !bundleHolds(certificates, facts.bundle) {
            refresh = [layout.tool.lastComponent] + (removedFromStore ? layout.freshArguments : layout.refreshArguments)
        }
        return (changes, refresh)
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
}

/// The base64 body of a PEM block, without header, footer or line breaks' positions mattering.
func pemBody(_ pem: String) -> String {
    pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined(separator: "\n")
}
