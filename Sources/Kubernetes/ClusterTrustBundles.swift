import FoundationEssentials
import Vocabulary

/// Which `certificates.k8s.io` ClusterTrustBundles hold the registry's CA: those of one signer
/// (`spec.signerName`, a field selector the API server indexes) whose labels match a selector,
/// as a pod's projected `clusterTrustBundle` volume selects them (`signerName` + `labelSelector`).
public struct ClusterTrustBundleSelection: Sendable, Equatable {
    public var signerName: String
    /// A label selector in the API's syntax (`key=value,key in (a,b),!key`); empty: every bundle
    /// of the signer.
    public var labelSelector: String

    /// Checks the signer name as the API server's ValidateSignerName does (`domain/path`, the
    /// domain DNS labels with at least one dot, the path DNS subdomains separated by dots); the
    /// label selector's syntax is the API server's to judge (a 400 names what is wrong).
    public init(signerName: String, labelSelector: String) throws {
        let parts = signerName.split(separator: "/", omittingEmptySubsequences: false)
        let label = #/[a-z0-9]([-a-z0-9]*[a-z0-9])?/#
        let domain = parts.first.map { $0.split(separator: ".", omittingEmptySubsequences: false) } ?? []
        let path = parts.count == 2 ? parts[1].split(separator: ".", omittingEmptySubsequences: false) : []
        guard parts.count == 2, domain.count >= 2, parts[0].count <= 253, signerName.count <= 571,
            domain.allSatisfy({ $0.count <= 63 && $0.wholeMatch(of: label) != nil }),
            path.allSatisfy({ $0.count <= 253 && $0.wholeMatch(of: label) != nil })
        else {
            throw AgentError(
                .invalidInput, "--ca-cluster-trust-bundle-signer '\(signerName.escapedForMessage)' is not a signer name",
                hint: "a signer name is a domain and a path, e.g. example.com/registry-ca (the bundles' spec.signerName)")
        }
        guard !labelSelector.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }), labelSelector.utf8.count <= 4096
        else {
            throw AgentError(
                .invalidInput, "--ca-cluster-trust-bundle-labels holds a control character or is longer than 4096 bytes",
                hint: "give a label selector such as app=registry-ca,tier in (prod)")
        }
        self.signerName = signerName
        self.labelSelector = labelSelector.trimmingWhitespace()
    }

    /// How messages name the selection.
    public var description: String {
        "ClusterTrustBundles of signer \(signerName)" + (labelSelector.isEmpty ? "" : " with labels \(labelSelector)")
    }

    /// The list's query: the signer as a field selector, the labels as a label selector.
    public var query: String {
        var query = "fieldSelector=" + "spec.signerName=\(signerName)".percentEncodedQueryValue
        if !labelSelector.isEmpty { query += "&labelSelector=" + labelSelector.percentEncodedQueryValue }
        return query
    }
}

/// One ClusterTrustBundle as listed: its name, its resourceVersion and its PEM trust anchors.
public struct ClusterTrustBundle: Sendable, Equatable {
    public var name: String
    public var resourceVersion: String
    public var signerName: String
    public var trustBundle: String

    public init(name: String, resourceVersion: String, signerName: String, trustBundle: String) {
        self.name = name
        self.resourceVersion = resourceVersion
        self.signerName = signerName
        self.trustBundle = trustBundle
    }
}

/// Lists the selected ClusterTrustBundles. The API version is found once: `v1` (GA), else
/// `v1beta1` (Kubernetes 1.33-1.36, with the ClusterTrustBundle feature gate and the beta API
/// enabled), else `v1alpha1` (1.27-1.32), each tried on the previous one's 404; a later 404 finds
/// it again (the API server was reconfigured).
///
/// A list, not a watch: the agent's API client reads whole answers, so the `run` loop lists at
/// its own pace and compares what it gets (`ClusterTrustBundleListing.fingerprint`).
public final class ClusterTrustBundleLister {
    public static let versions = ["v1", "v1beta1", "v1alpha1"]

    public let api: any KubeAPIClient
    public let selection: ClusterTrustBundleSelection
    /// The version that answered last; nil until one has.
    public private(set) var version: String?

    public init(api: any KubeAPIClient, selection: ClusterTrustBundleSelection) {
        self.api = api
        self.selection = selection
    }

    /// What a list failed on, and whether a later list may well succeed without anyone acting
    /// (the API server unreachable or overloaded) or someone must change something (RBAC, the
    /// selector, the API's versions).
    public struct Failure: Error, CustomStringConvertible {
        public var error: AgentError
        public var transient: Bool
        public var description: String { "\(error)" }
    }

    /// The bundles the API server selects, in its order (by name).
    public func list() throws(Failure) -> ClusterTrustBundleListing {
        let candidates = version.map { [$0] } ?? Self.versions
        for candidate in candidates {
            let path = "/apis/certificates.k8s.io/\(candidate)/clustertrustbundles?\(selection.query)"
            let answer: (status: Int, json: JSONValue?)
            do {
                answer = try api.request("GET", path, contentType: nil, body: nil)
            } catch {
                throw Failure(
                    error: AgentError(.io, "listing \(selection.description): the Kubernetes API did not answer: \(error)"),
                    transient: true)
            }
            switch answer.status {
            case 200:
                version = candidate
                return try parse(answer.json, version: candidate)
            case 404:
                // The resource is not served in this version (a list of a served collection is
                // never 404).
                continue
            default:
                throw refusal(answer, version: candidate)
            }
        }
        if version != nil {
            version = nil
            throw Failure(
                error: AgentError(
                    .io, "listing \(selection.description): the API server no longer serves certificates.k8s.io/\(candidates[0])"),
                transient: true)
        }
        throw Failure(
            error: AgentError(
                .invalidInput,
                "the API server serves no ClusterTrustBundles (certificates.k8s.io v1, v1beta1 and v1alpha1 all answered 404)",
                hint:
                    "on Kubernetes 1.33-1.36 enable the ClusterTrustBundle feature gate and --runtime-config=certificates.k8s.io/v1beta1/clustertrustbundles=true on the API server; or give the CA as a file (--ca)"
            ), transient: false)
    }

    func refusal(_ answer: (status: Int, json: JSONValue?), version: String) -> Failure {
        let said = KubeAPI.refusal(answer)
        let what = "listing \(selection.description) (certificates.k8s.io/\(version)): HTTP \(answer.status)\(said)"
        switch answer.status {
        case 400:
            return Failure(
                error: AgentError(
                    .invalidInput, what,
                    hint: "check --ca-cluster-trust-bundle-labels: the API's label selector syntax, e.g. app=registry-ca,env in (prod)"),
                transient: false)
        case 401:
            return Failure(error: AgentError(.invalidInput, what, hint: api.hint(401, needs: "")), transient: false)
        case 403:
            // RBAC (a read passes no admission policy).
            return Failure(
                error: AgentError(
                    .invalidInput, what,
                    hint:
                        "the service account's ClusterRole needs list on clustertrustbundles in certificates.k8s.io (daemonset.yaml has the rule)"
                ),
                transient: false)
        default:
            // 429 (API priority and fairness), 5xx, a proxy's answer: the API server's state.
            return Failure(error: AgentError(.io, what), transient: true)
        }
    }

    func parse(_ json: JSONValue?, version: String) throws(Failure) -> ClusterTrustBundleListing {
        func broken(_ why: String) -> Failure {
            Failure(
                error: AgentError(
                    .io, "listing \(selection.description) (certificates.k8s.io/\(version)): the answer is not a list: \(why)"),
                transient: true)
        }
        guard let json, json["kind"]?.string == "ClusterTrustBundleList", let items = json["items"]?.array else {
            throw broken("no ClusterTrustBundleList with items")
        }
        var bundles: [ClusterTrustBundle] = []
        for item in items {
            guard let name = item["metadata"]?["name"]?.string, let trust = item["spec"]?["trustBundle"]?.string else {
                throw broken("an item without metadata.name or spec.trustBundle")
            }
            let signer = item["spec"]?["signerName"]?.string ?? ""
            // The API server filtered by the field selector; an answer that did not is not taken.
            guard signer == selection.signerName else {
                throw broken("bundle \(name) is of signer '\(signer.escapedForMessage)', not \(selection.signerName)")
            }
            bundles.append(
                ClusterTrustBundle(
                    name: name, resourceVersion: item["metadata"]?["resourceVersion"]?.string ?? "", signerName: signer,
                    trustBundle: trust))
        }
        bundles.sort { $0.name < $1.name }
        return ClusterTrustBundleListing(
            version: version, resourceVersion: json["metadata"]?["resourceVersion"]?.string ?? "", bundles: bundles)
    }
}

/// One list's answer.
public struct ClusterTrustBundleListing: Sendable, Equatable {
    /// The API version that answered (v1, v1beta1, v1alpha1).
    public var version: String
    /// The list's resourceVersion (the store's revision when it was read).
    public var resourceVersion: String
    /// The selected bundles, by name.
    public var bundles: [ClusterTrustBundle]

    public init(version: String, resourceVersion: String, bundles: [ClusterTrustBundle]) {
        self.version = version
        self.resourceVersion = resourceVersion
        self.bundles = bundles
    }

    /// What changes when a selected bundle changes, appears or goes: the bundles' names and
    /// resourceVersions (each write of an object gives it a new one). The list's own
    /// resourceVersion moves with every write in the cluster, so it is not compared.
    public var fingerprint: [String] { bundles.map { "\($0.name)@\($0.resourceVersion)" } }
}
