import FoundationEssentials
import Glibc
import HostSystem
import Transport
import Vocabulary

/// Where and how to reach the Kubernetes API: in a pod, the service account's token and CA
/// and the KUBERNETES_SERVICE_HOST/PORT variables.
public struct KubeAPI: Sendable {
    public var base: String
    public var address: IPAddress
    public var tokenFile: String
    public var caFile: String
    /// How long one request may take, connecting included (the reporter's: 10 s).
    public var timeoutMilliseconds: Int32 = 10_000

    public static let serviceAccount = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The largest API answer taken. A Node is the largest object the agent reads (GET and PATCH
    /// answer with the whole Node), and one with many images in `status.images` is several
    /// hundred KiB; etcd holds objects up to 1.5 MiB by default. A cut answer would be an error,
    /// so the startup taint would stay: this leaves room above what the API server sends.
    public static let maximumResponseBytes = 4 << 20

    /// The API from `--kube-api` (https://IP:PORT) or the in-cluster environment; nil when neither is there.
    public static func resolve(url: String?, tokenFile: String?, caFile: String?, environment: [String: String]) throws -> KubeAPI? {
        var base = url
        if base == nil, let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"] {
            base = host.contains(":") ? "https://[\(host)]:\(port)" : "https://\(host):\(port)"
        }
        guard let base else { return nil }
        guard base.hasPrefix("https://"), let authority = base.dropFirst(8).split(separator: "/").first,
            let registry = try? RegistryAddress(String(authority)), case .ip(let ip) = registry.host
        else {
            throw AgentError(.invalidInput, "the Kubernetes API '\(base.escapedForMessage)' must be https://IP:PORT")
        }
        return KubeAPI(
            base: "https://\(registry.hostAndPort)", address: ip, tokenFile: tokenFile ?? serviceAccount + "/token",
            caFile: caFile ?? serviceAccount + "/ca.crt")
    }

    public func request(_ method: String, _ path: String, contentType: String? = nil, body: JSONValue? = nil) throws -> (
        status: Int, json: JSONValue?
    ) {
        var headers = [("Authorization", "Bearer " + (try token())), ("Accept", "application/json")]
        var bytes: [UInt8] = []
        if let body {
            bytes = body.encoded()
            headers.append(("Content-Type", contentType ?? "application/json"))
        }
        let r = try httpRequest(
            method, url: base + path, address: address, trustFile: caFile, headers: headers, body: bytes,
            timeoutMilliseconds: timeoutMilliseconds, maximumBodyBytes: Self.maximumResponseBytes)
        return (r.status, try? JSONValue.parse(r.body))
    }

    /// The service account token, read for each request (the kubelet rotates the file).
    func token() throws -> String {
        guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8).trimmingWhitespace(), !token.isEmpty else {
            throw AgentError(.io, "cannot read the service account token \(tokenFile)")
        }
        return token
    }

    /// The API's own word on a refused request, from its Status: ": REASON: MESSAGE" (e.g.
    /// `: Forbidden: nodes "n" is forbidden: User "…" cannot patch resource "nodes/status" …`),
    /// or "" when the answer is not a Status.
    public static func refusal(_ r: (status: Int, json: JSONValue?)) -> String {
        guard let json = r.json, json["kind"]?.string == "Status" else { return "" }
        var text = ""
        if let reason = json["reason"]?.string, !reason.isEmpty { text += ": " + reason }
        if let message = json["message"]?.string, !message.isEmpty, message != json["reason"]?.string {
            text += ": " + String(message.prefix(512))
        }
        // On one line, whole (escapedForMessage would cut it at 80 characters, mid-sentence).
        return String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? " " : $0 }))
    }

    /// What to do about a refusal: the token (401) or the ClusterRole (403, `needs` says what).
    public func hint(_ status: Int, needs: String) -> String? {
        switch status {
        case 401: return "the API does not accept the token in \(tokenFile)"
        // A ValidatingAdmissionPolicy's refusal is a 403 too: its message (in the error) names it.
        case 403: return "the service account needs \(needs), or an admission policy refused the change (its message names the policy)"
        default: return nil
        }
    }
}

/// The Kubernetes API as the reporter uses it: a request, and what to do about a refusal.
/// `KubeAPI` is the real one; the tests give a recording fake.
public protocol KubeAPIClient {
    func request(_ method: String, _ path: String, contentType: String?, body: JSONValue?) throws -> (status: Int, json: JSONValue?)
    func hint(_ status: Int, needs: String) -> String?
}

extension KubeAPI: KubeAPIClient {}
