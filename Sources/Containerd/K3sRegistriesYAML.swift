import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

/// k3s's and RKE2's registries.yaml: the registry hosts it configures (each a certs.d folder of
/// theirs), and the lines that give containerd the registry's CA through it.
extension K3sNode {
    /// The keys of `mirrors` and `configs`; k3s uses each verbatim as a folder name. Block
    /// style, as the k3s docs write it; anything else there (flow style, tabs, anchors) is a
    /// problem, so that the agent never writes a folder k3s may own. (No YAML library: Yams
    /// brings Foundation, which the agent's binary does not load.)
    package static func registryHosts(inRegistriesYAML text: String) throws -> Set<String> {
        var hosts: Set<String> = []
        var section: String?
        var keyIndent: Int?
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let trimmed = line.trimmingBlanks()
            if trimmed.isEmpty || trimmed == "---" { continue }
            func problem(_ what: String) -> AgentError {
                AgentError(.invalidInput, "line \(number + 1): \(what)", hint: "write registries.yaml in block style, as the k3s docs do")
            }
            if line.contains("\t") { throw problem("a tab") }
            let indent = line.prefix { $0 == " " }.count
            if indent == 0 {
                guard trimmed.hasSuffix(":") else {
                    if trimmed.hasPrefix("mirrors:") || trimmed.hasPrefix("configs:") { throw problem("a flow-style \(trimmed.prefix(7))") }
                    section = nil
                    continue
                }
                let name = String(trimmed.dropLast())
                section = name == "mirrors" || name == "configs" ? name : nil
                keyIndent = nil
                continue
            }
            guard section != nil else { continue }
            if keyIndent == nil { keyIndent = indent }
            guard indent == keyIndent else {
                if indent < keyIndent! { throw problem("an indentation that does not match the keys above") }
                continue
            }
            guard let colon = Self.keyEnd(trimmed) else { throw problem("a key without ':'") }
            var key = String(trimmed[..<colon]).trimmingBlanks()
            if key.count >= 2, let first = key.first, first == "\"" || first == "'", key.last == first {
                key = String(key.dropFirst().dropLast())
            } else if key.contains(where: { "&*{}[]!|>".contains($0) }) {
                throw problem("anchors, tags or flow style in a key")
            }
            hosts.insert(key)
        }
        return hosts
    }

    /// The `:` that ends a mapping key: outside quotes, followed by a blank or the line's end
    /// (host:port keys hold a colon of their own).
    package static func keyEnd(_ line: String) -> String.Index? {
        var quote: Character?
        var i = line.startIndex
        while i < line.endIndex {
            let c = line[i]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == ":" {
                let next = line.index(after: i)
                if next == line.endIndex || line[next] == " " { return i }
            }
            i = line.index(after: i)
        }
        return nil
    }

    /// The lines `registries.yaml` needs for containerd to trust `caFile` for the registry.
    public func registriesLines(_ key: String, caFile: String) -> String {
        "configs:\n  \"\(key)\":\n    tls:\n      ca_file: \(caFile)"
    }
}
