import HostSystem
import Vocabulary

/// Hosts mode: the agent's lines in the node's /etc/hosts (`IP NAME # node-agent`), for nodes
/// where resolved is not running or nsswitch asks no DNS source.
extension ResolvedFiles {
    public static let hostsMarker = "# node-agent"

    /// The first line of an /etc/hosts the agent created where there was none (minimal roots
    /// lack it): the file goes with the agent's last line, unless someone else's lines are in it.
    public static let hostsCreatedLine =
        HostFiles.creationMarker + " (there was no /etc/hosts): removed with its last node-agent line unless other lines were added"

    /// /etc/hosts with the agent's lines (`IP NAME # node-agent`) replaced by `entries`, from what
    /// it holds now (`current`, nil: there is none); every other line is kept as it is, in its
    /// place. nil: no file. A file the agent creates starts with `hostsCreatedLine`; when the
    /// agent's lines go, such a file goes too if nothing else is in it, else that line goes (the
    /// file is no longer the agent's alone: it stays, with the others' lines). A file the agent
    /// did not create stays, even empty. Where nothing is the agent's and no entries come, the
    /// text is returned as it is.
    public static func renderHosts(_ current: String?, entries: [(IPAddress, DomainName)]) -> String? {
        let ours = entries.map { "\($0.0) \($0.1) \(hostsMarker)" }
        guard let current else { return ours.isEmpty ? nil : ([hostsCreatedLine] + ours).joined(separator: "\n") + "\n" }
        var lines = current.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        let created = lines.first == hostsCreatedLine
        let others = lines.filter { !$0.hasSuffix(" " + hostsMarker) && $0 != hostsCreatedLine }
        if others.count == lines.count && ours.isEmpty { return current }
        if created && others.isEmpty && ours.isEmpty { return nil }
        lines = (created && !ours.isEmpty ? [hostsCreatedLine] : []) + others + ours
        return lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
    }

    /// The change that gives /etc/hosts the agent's lines for `entries` (none: its lines go), from
    /// what it holds now (`current`, nil: there is none); nil when it already does.
    public static func hostsChange(_ current: String?, entries: [(IPAddress, DomainName)], reason: String) -> FileChange? {
        let text = renderHosts(current, entries: entries)
        guard text != current else { return nil }
        guard let text else {
            return FileChange(kind: .remove, path: hosts, reason: reason + "; the agent created the file and nothing else is in it")
        }
        return FileChange(kind: current == nil ? .create : .replace, path: hosts, contents: Array(text.utf8), reason: reason)
    }

    /// The addresses the agent's lines give, by name.
    public static func hostsEntries(_ text: String) -> [(IPAddress, DomainName)] {
        text.split(separator: "\n").compactMap { line in
            guard line.hasSuffix(" " + hostsMarker) else { return nil }
            let f = line.split(separator: " ")
            guard f.count >= 3, let ip = try? IPAddress(String(f[0])), let name = try? DomainName(String(f[1])) else { return nil }
            return (ip, name)
        }
    }
}
