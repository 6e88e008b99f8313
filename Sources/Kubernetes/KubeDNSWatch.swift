import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

/// The Service whose EndpointSlices say whether kube-dns serves: `NAMESPACE/NAME`, kubeadm's and
/// k3s's `kube-system/kube-dns` by default (RKE2: `kube-system/rke2-coredns-rke2-coredns`).
public struct KubeDNSService: Sendable, Equatable, CustomStringConvertible {
    public var namespace: String
    public var name: String

    public static let kubeadm = KubeDNSService(namespace: "kube-system", name: "kube-dns")

    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    /// `NAMESPACE/NAME`, each a DNS label as the API requires.
    public init(_ text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        let label = #/[a-z0-9]([-a-z0-9]*[a-z0-9])?/#
        guard parts.count == 2, parts.allSatisfy({ $0.count <= 63 && $0.wholeMatch(of: label) != nil }) else {
            throw AgentError(
                .invalidInput, "--kube-dns-service '\(text.escapedForMessage)' is not NAMESPACE/NAME",
                hint: "the cluster DNS Service, e.g. kube-system/kube-dns (kubeadm, k3s) or kube-system/rke2-coredns-rke2-coredns (RKE2)")
        }
        self.init(namespace: String(parts[0]), name: String(parts[1]))
    }

    public var description: String { "\(namespace)/\(name)" }
    var servicePath: String { "/api/v1/namespaces/\(namespace)/services/\(name)" }
    var slicesPath: String {
        "/apis/discovery.k8s.io/v1/namespaces/\(namespace)/endpointslices?labelSelector="
            + "kubernetes.io/service-name=\(name)".percentEncodedQueryValue
    }
}

/// What the cluster says of kube-dns now, as the light reconcile takes it.
public struct KubeDNSReading: Sendable, Equatable {
    /// The ready endpoints of the Service's EndpointSlices; nil: the cluster's word is not taken
    /// now (`said` tells why), and kube-dns is asked as without a watch.
    public var ready: Int?
    public var said: String

    public init(ready: Int?, said: String) {
        self.ready = ready
        self.said = said
    }
}

/// The kube-dns Service's EndpointSlices as the watch last saw them (pure: the tests feed it).
public struct EndpointSliceSet: Sendable, Equatable {
    /// Ready endpoints by slice name.
    public private(set) var slices: [String: Int] = [:]
    public private(set) var resourceVersion = ""
    /// At most this many slices (a Service of 100,000 endpoints has 1,000).
    public static let maximumSlices = 1000

    public init() {}

    /// How a stream ended other than by the server's timeout.
    public enum End: Error, Equatable {
        /// 410: the resourceVersion is too old; list again.
        case gone(String)
        case error(String)
    }

    public var ready: Int { slices.values.reduce(0, +) }

    /// A list's answer: every slice, and the resourceVersion to watch from.
    public mutating func list(_ json: JSONValue?) throws(End) {
        guard let items = json?["items"]?.array, let version = json?["metadata"]?["resourceVersion"]?.string else {
            throw .error("the EndpointSlice list is not an EndpointSliceList")
        }
        guard items.count <= Self.maximumSlices else { throw .error("more than \(Self.maximumSlices) EndpointSlices") }
        slices = [:]
        for item in items {
            guard let name = item["metadata"]?["name"]?.string else { throw .error("an EndpointSlice without a name") }
            slices[name] = Self.readyEndpoints(item)
        }
        resourceVersion = version
    }

    /// One watch event's line: ADDED, MODIFIED, DELETED, BOOKMARK (a newer resourceVersion), or
    /// ERROR (410: `.gone`; else `.error`).
    public mutating func apply(_ line: [UInt8]) throws(End) {
        guard let event = try? JSONValue.parse(line), let type = event["type"]?.string, let object = event["object"] else {
            throw .error("a watch event that is not JSON {type, object}")
        }
        if type == "ERROR" {
            let message = String((object["message"]?.string ?? "").prefix(256))
            throw object["code"]?.int == 410 ? .gone(message) : .error("the watch ended with an error: \(message)")
        }
        guard let version = object["metadata"]?["resourceVersion"]?.string, !version.isEmpty, version.utf8.count <= 64 else {
            throw .error("a \(type.prefix(16)) event without a resourceVersion")
        }
        switch type {
        case "ADDED", "MODIFIED", "DELETED":
            guard let name = object["metadata"]?["name"]?.string else { throw .error("an EndpointSlice without a name") }
            if type == "DELETED" {
                slices[name] = nil
            } else {
                guard slices[name] != nil || slices.count < Self.maximumSlices else {
                    throw .error("more than \(Self.maximumSlices) EndpointSlices")
                }
                slices[name] = Self.readyEndpoints(object)
            }
        case "BOOKMARK": break
        default: throw .error("a watch event of type '\(type.escapedForMessage)'")
        }
        resourceVersion = version
    }

    /// The endpoints kube-proxy sends traffic to while any is ready: `conditions.ready` true or
    /// absent (the API's "unknown, taken as ready").
    static func readyEndpoints(_ slice: JSONValue) -> Int {
        (slice["endpoints"]?.array ?? []).filter { $0["conditions"]?["ready"]?.bool != false }.count
    }
}
