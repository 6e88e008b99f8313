import HostSystem

/// The DNS settings of kubelet's config file (`KubeletConfiguration`): the cluster DNS, the
/// cluster domain, and the resolv.conf kubelet hands to pods with dnsPolicy Default (CoreDNS).
public struct KubeletDNSConfig: Equatable, Sendable {
    public var clusterDNS: [IPAddress] = []
    public var clusterDomain: String?
    public var resolvConf: String?
    public var file: HostPath?

    public static let defaultFile = try! HostPath("/var/lib/kubelet/config.yaml")

    public init() {}

    public static func read(from files: HostFiles, path: HostPath = defaultFile) throws -> KubeletDNSConfig? {
        guard let text = try files.readString(path, limit: 1 << 20) else { return nil }
        var c = parse(text)
        c.file = path
        return c
    }

    /// Reads the three top-level keys from the YAML, in block (`- 10.96.0.10`) or flow
    /// (`[10.96.0.10]`) style; other keys are ignored.
    public static func parse(_ text: String) -> KubeletDNSConfig {
        var c = KubeletDNSConfig()
        var inClusterDNS = false
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let topLevel = !line.hasPrefix(" ") && !line.hasPrefix("\t") && !trimmed.hasPrefix("-")
            if inClusterDNS, !topLevel, trimmed.hasPrefix("-") {
                if let ip = try? IPAddress(unquote(String(trimmed.dropFirst()))) { c.clusterDNS.append(ip) }
                continue
            }
            inClusterDNS = false
            guard topLevel, let colon = trimmed.firstIndex(of: ":") else { continue }
            let key = trimmed[..<colon]
            let value = unquote(String(trimmed[trimmed.index(after: colon)...]))
            switch key {
            case "clusterDNS":
                if value.hasPrefix("[") {
                    c.clusterDNS = value.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: ",")
                        .compactMap { try? IPAddress(unquote(String($0))) }
                } else {
                    inClusterDNS = true
                }
            case "clusterDomain": c.clusterDomain = value.isEmpty ? nil : value
            case "resolvConf": c.resolvConf = value.isEmpty ? nil : value
            default: break
            }
        }
        return c
    }

    static func unquote(_ s: String) -> String {
        s.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
    }
}

import Foundation
