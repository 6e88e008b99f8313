import HostSystem
import Vocabulary

/// Where a distribution family keeps locally added CAs, the tool that rebuilds its bundle, and
/// the bundle programs read. One row per family; detection from `os-release` (ID, then ID_LIKE).
public struct OSTrustLayout: Sendable, Equatable {
    public enum Family: String, Sendable { case debian, alpine, rhel, suse }

    public var family: Family
    /// The folder the agent's CA files go into.
    public var anchors: HostPath
    /// True when `anchors` is a folder of the agent's own; else its files are named `node-agent-*`
    /// among the admin's (tools that do not read subfolders).
    public var ownFolder: Bool
    public var tool: HostPath
    public var refreshArguments: [String]
    /// Arguments that also drop what was removed (Debian's `--fresh`).
    public var freshArguments: [String]
    public var bundle: HostPath

    package static func path(_ p: String) -> HostPath { try! HostPath(p) }

    public static let debian = OSTrustLayout(
        family: .debian, anchors: path("/usr/local/share/ca-certificates/node-agent"), ownFolder: true,
        tool: path("/usr/sbin/update-ca-certificates"), refreshArguments: [],
        freshArguments: ["--fresh"], bundle: path("/etc/ssl/certs/ca-certificates.crt"))
    public static let alpine = OSTrustLayout(
        family: .alpine, anchors: path("/usr/local/share/ca-certificates"), ownFolder: false,
        tool: path("/usr/sbin/update-ca-certificates"), refreshArguments: [],
        freshArguments: [], bundle: path("/etc/ssl/certs/ca-certificates.crt"))
    public static let rhel = OSTrustLayout(
        family: .rhel, anchors: path("/etc/pki/ca-trust/source/anchors"), ownFolder: false,
        tool: path("/usr/bin/update-ca-trust"), refreshArguments: ["extract"],
        freshArguments: ["extract"], bundle: path("/etc/pki/tls/certs/ca-bundle.crt"))
    public static let suse = OSTrustLayout(
        family: .suse, anchors: path("/etc/pki/trust/anchors"), ownFolder: false,
        tool: path("/usr/sbin/update-ca-certificates"), refreshArguments: [],
        freshArguments: [], bundle: path("/var/lib/ca-certificates/ca-bundle.pem"))

    /// `os-release` IDs of each family; ID_LIKE is matched against the same lists.
    package static let families: [(ids: [String], layout: OSTrustLayout)] = [
        (["debian", "ubuntu", "raspbian", "linuxmint", "pop"], debian),
        (["alpine"], alpine),
        (["rhel", "centos", "fedora", "rocky", "almalinux", "amzn", "ol", "azurelinux", "mariner"], rhel),
        (["sles", "sled", "opensuse", "opensuse-leap", "opensuse-tumbleweed", "sle-micro", "suse"], suse),
    ]

    /// Systems whose OS trust store cannot be changed from a node agent, and what to do instead.
    package static let immutable: [String: String] = [
        "bottlerocket": "Bottlerocket's trust store is set through its API: settings.pki.<name> (apiclient or user data)",
        "talos": "Talos's trust store is set in the machine config: a TrustedRootsConfig document",
        "cos": "Container-Optimized OS keeps / read-only: add the CA through GKE's containerd private CA config",
        "flatcar": "Flatcar keeps /usr read-only: provide the CA at provisioning (Ignition, /etc/ssl/certs) instead",
    ]

    public static func detect(_ os: OSRelease?) throws -> OSTrustLayout {
        guard let os else {
            throw AgentError(
                .unsupportedHost, "the host has no os-release file: its OS trust store layout is unknown",
                hint: "check --host-root: it must be the node's / (with etc/os-release)")
        }
        if let why = immutable[os.id] {
            throw AgentError(
                .unsupportedHost, "\(os.prettyName) does not allow host trust changes from an agent: nothing was changed",
                hint: why)
        }
        for candidate in [os.id] + os.idLike {
            if let row = families.first(where: { $0.ids.contains(candidate) }) { return row.layout }
        }
        throw AgentError(
            .unsupportedHost, "the OS trust store of '\(os.prettyName)' (ID=\(os.id)) is not known to the agent",
            hint: "supported: Debian/Ubuntu, RHEL/Fedora/CentOS/Rocky/Alma/Amazon Linux, SUSE, Alpine")
    }

    /// Our files for a registry are named `<prefix><n>.crt`.
    public func filePrefix(_ registry: RegistryAddress?) -> String {
        let slug =
            registry.map { r in r.hostAndPort.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? String($0) : "_" }.joined() + "-"
            } ?? ""
        return ownFolder ? slug : "node-agent-" + slug
    }
}
