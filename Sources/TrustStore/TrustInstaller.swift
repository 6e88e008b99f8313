import Foundation
import HostSystem

/// What installing a registry CA on this host takes: file changes and whether the OS bundle has
/// to be rebuilt. Computed without changing anything; `TrustInstaller.apply` performs it.
public struct TrustPlan: Sendable {
    public var certificates: [Certificate]
    public var fileChanges: [FileChange]
    /// The command that rebuilds the OS bundle, when it has to run.
    public var refresh: [String]?
    /// Facts a person should know (certs.d disabled, foreign files left alone, ...).
    public var notes: [String]
    /// The OS bundle that programs using the system trust read.
    public var osBundle: HostPath
    /// The CA files the container runtime reads for this registry, on every pull.
    public var runtimeCAFiles: [HostPath]

    public var isEmpty: Bool { fileChanges.isEmpty && refresh == nil }

    /// One line per change, for `--dry-run` and the report.
    public var summary: [String] {
        fileChanges.map(\.description) + (refresh.map { ["run \($0.joined(separator: " ")): rebuild the OS trust bundle"] } ?? [])
    }
}

/// Installs a registry's CA in the host's OS trust store (Debian family) and in containerd's
/// per-registry `certs.d`, which containerd reads on every pull, without a restart.
public struct TrustInstaller: Sendable {
    public static let marker = "# managed by node-agent: do not edit, it is rewritten on every run"
    /// Everything below this folder is the agent's; nothing else in the trust store is touched.
    public static let localCADirectory = try! HostPath("/usr/local/share/ca-certificates/node-agent")
    public static let debianBundle = try! HostPath("/etc/ssl/certs/ca-certificates.crt")
    static let updateTool = try! HostPath("/usr/sbin/update-ca-certificates")

    public let files: HostFiles
    public let runner: CommandRunner

    public init(files: HostFiles, runner: CommandRunner) {
        self.files = files
        self.runner = runner
    }

    public func plan(registry: RegistryAddress, certificates: [Certificate]) throws -> TrustPlan {
        var changes: [FileChange] = []
        var notes: [String] = []

        // OS store, Debian family: one PEM file per CA in our own folder.
        let os = try OSRelease.read(from: files)
        guard let os, os.id == "debian" || os.id == "ubuntu" || os.idLike.contains("debian") else {
            throw AgentError(.unsupportedHost,
                             "the OS trust store of '\(os?.prettyName ?? "an unknown OS")' is not supported yet (Debian and Ubuntu are)",
                             hint: "on other distributions install the CA by hand for now")
        }
        guard try files.exists(Self.updateTool) else {
            throw AgentError(.unsupportedHost, "\(Self.updateTool) is missing on the host",
                             hint: "install the ca-certificates package on the node")
        }
        let prefix = Self.fileNamePrefix(registry)
        var wanted: Set<String> = []
        for (i, cert) in certificates.enumerated() {
            let name = "\(prefix)\(i + 1).crt"
            wanted.insert(name)
            if let change = try FileChange.ensure(try Self.localCADirectory.appending(name), holds: Array(cert.pem.utf8),
                                                  reason: "CA '\(cert.subject)' for the OS trust store", files: files) {
                changes.append(change)
            }
        }
        var removedFromStore = false
        for name in try files.list(Self.localCADirectory) where name.hasPrefix(prefix) && !wanted.contains(name) {
            changes.append(FileChange(kind: .remove, path: try Self.localCADirectory.appending(name),
                                      reason: "CA no longer wanted for \(registry)"))
            removedFromStore = true
        }
        let bundle = try files.readString(Self.debianBundle) ?? ""
        let bundleHasAll = certificates.allSatisfy { bundle.contains(pemBody($0.pem)) }
        var refresh: [String]?
        if !changes.isEmpty || !bundleHasAll {
            refresh = ["update-ca-certificates"] + (removedFromStore ? ["--fresh"] : [])
        }

        // containerd: certs.d/<host:port>/ and, for port 443, certs.d/<host>/ too, since
        // `registry/img` and `registry:443/img` are different names to containerd.
        let containerd = try ContainerdRegistryConfig.read(from: files)
        if let note = containerd.note { notes.append(note) }
        var runtimeCAFiles: [HostPath] = []
        if let certsD = containerd.configPaths.first {
            var names = [registry.hostAndPort]
            if registry.port == 443 { names.append(registry.hostForURL) }
            let caText = certificates.map(\.pem).joined()
            for name in names {
                let dir = try certsD.appending(name)
                let hostsToml = try dir.appending("hosts.toml")
                let caFile = try dir.appending("ca.crt")
                if let existing = try files.readString(hostsToml), !existing.hasPrefix(Self.marker) {
                    notes.append("\(hostsToml) was not written by node-agent: left alone")
                    continue
                }
                if try files.readString(hostsToml) == nil, let existingCA = try files.read(caFile), existingCA != Array(caText.utf8) {
                    notes.append("\(caFile) was not written by node-agent: left alone")
                    continue
                }
                runtimeCAFiles.append(caFile)
                if let c = try FileChange.ensure(caFile, holds: Array(caText.utf8), reason: "CA for containerd pulls from \(name)", files: files) {
                    changes.append(c)
                }
                let toml = hostsTOML(registry: registry, caFile: caFile)
                if let c = try FileChange.ensure(hostsToml, holds: Array(toml.utf8), reason: "containerd host config for \(name)", files: files) {
                    changes.append(c)
                }
            }
        }
        return TrustPlan(certificates: certificates, fileChanges: changes, refresh: refresh, notes: notes,
                         osBundle: Self.debianBundle, runtimeCAFiles: runtimeCAFiles)
    }

    /// Performs the plan: files first (each atomic), then the OS bundle rebuild with the host's own
    /// tool, run inside the host root so that its links and hooks are the node's.
    public func apply(_ plan: TrustPlan) throws {
        for change in plan.fileChanges { try change.apply(to: files) }
        if let refresh = plan.refresh {
            let result: CommandResult
            if files.root.directory == "/" {
                result = try runner.run(Self.updateTool.path, Array(refresh.dropFirst()))
            } else {
                guard let chroot = findExecutable("chroot") else {
                    throw AgentError(.commandFailed, "chroot is not installed", hint: "install coreutils")
                }
                result = try runner.run(chroot, [files.root.directory, Self.updateTool.path] + refresh.dropFirst())
            }
            guard result.succeeded else {
                throw AgentError(.commandFailed,
                                 "update-ca-certificates failed (exit \(result.status)): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).escapedForMessage)",
                                 hint: "run it by hand on the node to see why")
            }
        }
    }

    func hostsTOML(registry: RegistryAddress, caFile: HostPath) -> String {
        let server = "https://\(registry.hostAndPort)"
        return """
        \(Self.marker)
        server = "\(server)"

        [host."\(server)"]
          capabilities = ["pull", "resolve"]
          ca = "\(caFile.path)"

        """
    }

    /// Our OS-store files for a registry are named `<host>_<port>-<n>.crt`.
    static func fileNamePrefix(_ registry: RegistryAddress) -> String {
        registry.hostAndPort.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? String($0) : "_" }.joined() + "-"
    }
}

/// The base64 body of a PEM block, without header, footer or line breaks' positions mattering.
func pemBody(_ pem: String) -> String {
    pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined(separator: "\n")
}
