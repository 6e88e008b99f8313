import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

/// The DNS settings of kubelet's config file (`KubeletConfiguration`): the cluster DNS, the
/// cluster domain, and the resolv.conf kubelet hands to pods with dnsPolicy Default (CoreDNS).
public struct KubeletDNSConfig: Equatable, Sendable {
    public var clusterDNS: [IPAddress] = []
    public var clusterDomain: String?
    public var resolvConf: String?
    /// The CRI socket kubelet pulls through (`containerRuntimeEndpoint`, `--container-runtime-endpoint`).
    public var containerRuntimeEndpoint: String?
    public var file: HostPath?

    public static let defaultFile = try! HostPath("/var/lib/kubelet/config.yaml")

    public init() {}

    /// Files that carry kubelet's command-line flags (kubeadm, Debian/Ubuntu and RHEL packaging).
    public static let flagFiles = ["/var/lib/kubelet/kubeadm-flags.env", "/etc/default/kubelet", "/etc/sysconfig/kubelet"]

    /// kubelet's DNS settings: its config file, then its flags, which win as they do for kubelet.
    public static func read(from files: HostFiles, path: HostPath = defaultFile) throws -> KubeletDNSConfig? {
        var found = false
        var c = KubeletDNSConfig()
        if let text = try files.readString(path, limit: 1 << 20) {
            c = parse(text)
            c.file = path
            found = true
        }
        for flagFile in flagFiles {
            guard let text = try files.readString(try HostPath(flagFile), limit: 1 << 20) else { continue }
            let flags = parseFlags(text)
            if let dns = flags["cluster-dns"] {
                c.clusterDNS = dns.split(separator: ",").compactMap { try? IPAddress(String($0)) }
                found = true
            }
            if let resolv = flags["resolv-conf"] {
                c.resolvConf = resolv
                found = true
            }
            if let endpoint = flags["container-runtime-endpoint"] {
                c.containerRuntimeEndpoint = endpoint
                found = true
            }
            if let domain = flags["cluster-domain"] { c.clusterDomain = domain }
        }
        return found ? c : nil
    }

    /// `--name=value` and `--name value` flags anywhere in an environment file's values.
    public static func parseFlags(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\"" || $0 == "'" })
            .map(String.init)
        var i = 0
        while i < words.count {
            var word = words[i]
            if let eq = word.firstIndex(of: "="), !word.hasPrefix("--") { word = String(word[word.index(after: eq)...]) }
            if word.hasPrefix("--") {
                let body = word.dropFirst(2)
                if let eq = body.firstIndex(of: "=") {
                    out[String(body[..<eq])] = String(body[body.index(after: eq)...])
                } else if i + 1 < words.count, !words[i + 1].hasPrefix("--") {
                    out[String(body)] = words[i + 1]
                    i += 1
                }
            }
            i += 1
        }
        return out
    }

    /// Reads its keys from the YAML, in block (`- 10.96.0.10`) or flow (`[10.96.0.10]`) style;
    /// other keys are ignored.
    public static func parse(_ text: String) -> KubeletDNSConfig {
        var c = KubeletDNSConfig()
        c.merge(text)
        return c
    }

    /// Sets what `text` sets, over what is there: kubelet's drop-in files override its config
    /// file and each other, key by key.
    mutating func merge(_ text: String) {
        for (key, values) in FlatYAML.entries(text) {
            switch key {
            case "clusterDNS": clusterDNS = values.compactMap { try? IPAddress($0) }
            case "clusterDomain": clusterDomain = values.first
            case "resolvConf": resolvConf = values.first
            case "containerRuntimeEndpoint": containerRuntimeEndpoint = values.first
            default: break
            }
        }
    }

    /// kubelet's settings from a drop-in folder (`--config-dir`: its `*.conf` files, by name,
    /// each over the ones before), as k3s and RKE2 give them to their kubelet in
    /// `<data>/agent/etc/kubelet.conf.d` (`00-k3s-defaults.conf`, `00-rke2-defaults.conf`, then a
    /// person's); nil when no file is there.
    public static func read(from files: HostFiles, directory: HostPath) throws -> KubeletDNSConfig? {
        var c: KubeletDNSConfig?
        for name in try files.list(directory) where name.hasSuffix(".conf") {
            let path = try directory.appending(name)
            guard let text = try files.readString(path, limit: 1 << 20) else { continue }
            var next = c ?? KubeletDNSConfig()
            next.merge(text)
            next.file = path
            c = next
        }
        return c
    }
}
