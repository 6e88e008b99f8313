import HostSystem
import Vocabulary

/// Hosts mode: the agent's lines in the node's /etc/hosts (`IP NAME # node-agent`), for nodes
/// where resolved is not running or nsswitch asks no DNS source.
extension ResolvedFiles {
    public static let hostsMarker = "# node-agent"

    /// /etc/hosts with the agent's lines (`IP NAME # node-agent`) replaced by `entries`; every
    /// other line is kept as it is, in its place.
    public static func renderHosts(_ current: String, entries: [(IPAddress, DomainName)]) -> String {
        var lines = current.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        lines.removeAll { $0.hasSuffix(" " + hostsMarker) }
        lines += entries.map { "\($0.0) \($0.1) \(hostsMarker)" }
        return lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
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
