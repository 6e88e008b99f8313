import Containerd
import HostSystem
import Vocabulary

/// The runtimes' per-registry folders the agent writes, read on every pull (no restart):
/// containerd's `certs.d/<name>/` (`hosts.toml` naming the registry with its `ca.crt`, for each
/// name references give the registry), and Docker's and CRI-O's `certs.d/<host:port>/ca.crt`
/// where those runtimes are configured on the host. A file of the same name without the agent's
/// marker is left alone, with a note.
extension TrustInstaller {
    /// Docker's and CRI-O's (containers-common) per-registry folders, used when their parent exists.
    static let otherRuntimeCertsDirs = [("/etc/docker", "certs.d"), ("/etc/containers", "certs.d")]

    /// The certs.d files `certificates` for `registry` take on a host with these facts.
    static func certsDirChanges(_ facts: TrustFacts, registry: RegistryAddress, certificates: [Certificate], notes: inout [String])
        throws -> [FileChange]
    {
        var changes: [FileChange] = []
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
        return changes
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
