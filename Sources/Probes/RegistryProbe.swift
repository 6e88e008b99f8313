import FoundationEssentials
import Glibc
import HostSystem
import Transport
import Vocabulary

/// Credentials for one registry, from a Docker `config.json` (the file a pull secret holds).
public struct RegistryCredentials: Sendable {
    public var username: String
    public var password: String
    /// The `auths` key they came from: said in reports; the secret never is.
    public var key: String
    /// Hosts besides the registry's own to which a Bearer token realm may take these
    /// credentials (`--token-realm-hosts`), lowercased. Whatever host and scheme a registry's
    /// challenge names, the credentials go only there, and only over https.
    public var tokenRealmHosts: [String] = []

    /// Finds the registry's entry in a Docker config (`auths.<key>.auth` = base64 of
    /// `user:password`, or `username` and `password`). Keys are matched as Docker does: with or
    /// without scheme, under any of the registry's `referenceNames` (`host:port`, or `host` alone
    /// when the port is 443).
    public static func fromDockerConfig(_ bytes: [UInt8], registry: RegistryAddress, source: String) throws -> RegistryCredentials? {
        guard let root = try? JSONValue.parse(bytes), root.object != nil else {
            throw AgentError(.invalidInput, "\(source) is not a Docker config.json (JSON object expected)")
        }
        guard let auths = root["auths"]?.object else { return nil }
        let wanted = registry.referenceNames
        for (key, value) in auths {
            var bare = key.lowercased()
            for prefix in ["https://", "http://"] where bare.hasPrefix(prefix) { bare = String(bare.dropFirst(prefix.count)) }
            if let slash = bare.firstIndex(of: "/") { bare = String(bare[..<slash]) }
            guard wanted.contains(bare), case .object = value else { continue }
            if let auth = value["auth"]?.string, let decoded = Data(base64Encoded: auth).map({ String(decoding: $0, as: UTF8.self) }),
                let colon = decoded.firstIndex(of: ":")
            {
                return RegistryCredentials(
                    username: String(decoded[..<colon]), password: String(decoded[decoded.index(after: colon)...]), key: key)
            }
            if let user = value["username"]?.string, let password = value["password"]?.string {
                return RegistryCredentials(username: user, password: password, key: key)
            }
            throw AgentError(.invalidInput, "\(source): the entry for \(key) has neither `auth` nor `username`/`password`")
        }
        return nil
    }

    var basicAuthorization: String { "Basic " + Data("\(username):\(password)".utf8).base64EncodedString() }

    /// `--token-realm-hosts` as given (each entry may hold several, comma-separated): host
    /// names or IP addresses, without scheme or port (a realm's port does not change whose
    /// machine it is).
    public static func tokenRealmHosts(_ entries: [String]) throws -> [String] {
        try entries.flatMap { $0.split(separator: ",") }.map { raw in
            let entry = raw.trimmingBlanks().lowercased()
            if let ip = try? IPAddress(entry) { return ip.description }
            guard !entry.contains(":"), !entry.contains("/"), !entry.contains("@"), let name = try? DomainName(entry) else {
                throw AgentError(
                    .invalidInput, "--token-realm-hosts: '\(Redaction.url(entry).escapedForMessage)' is not a host name or IP address",
                    hint: "give hosts alone, comma-separated, e.g. --token-realm-hosts auth.example.com")
            }
            return name.description
        }
    }

    /// Why these credentials must not go to `realm` (nil when they may): it is not https, or it
    /// is on neither the registry's host nor one allowed by `--token-realm-hosts`. A registry
    /// (or whoever answers at its address) names the realm, so it must not be able to send the
    /// pull secret to a host of its choosing, or over plain http where anyone on the path reads it.
    func realmRefusal(_ realm: SimpleURL, registry: RegistryAddress) -> String? {
        let host = realm.host.lowercased()
        let shown = "\(realm.tls ? "https" : "http")://\(realm.host)\(realm.port == (realm.tls ? 443 : 80) ? "" : ":\(realm.port)")"
        guard realm.tls else {
            return
                "the registry's token realm \(shown) is plain http: the credentials for \(key) go to a token realm only over https; not sent"
        }
        guard host == registry.hostName.lowercased() || tokenRealmHosts.contains(host) else {
            return
                "the registry's token realm is on another host, \(realm.host): the credentials for \(key) go only to the registry's own host \(registry.hostName) or to a host allowed with --token-realm-hosts (NODE_AGENT_TOKEN_REALM_HOSTS), e.g. --token-realm-hosts \(realm.host); not sent"
        }
        return nil
    }
}

/// One `WWW-Authenticate` challenge: scheme and parameters (RFC 7235).
package struct AuthChallenge: Equatable {
    package var scheme: String
    package var parameters: [String: String]

    package init?(_ header: String) {
        let trimmed = header.trimmingBlanks()
        guard let space = trimmed.firstIndex(of: " ") else {
            guard !trimmed.isEmpty else { return nil }
            scheme = trimmed.lowercased()
            parameters = [:]
            return
        }
        scheme = trimmed[..<space].lowercased()
        var params: [String: String] = [:]
        var rest = Substring(trimmed[trimmed.index(after: space)...])
        while !rest.isEmpty {
            rest = rest.drop(while: { $0 == " " || $0 == "," })
            guard let eq = rest.firstIndex(of: "=") else { break }
            let key = rest[..<eq].trimmingBlanks().lowercased()
            rest = rest[rest.index(after: eq)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                while let c = rest.first {
                    rest = rest.dropFirst()
                    if escaped {
                        value.append(c)
                        escaped = false
                    } else if c == "\\" {
                        escaped = true
                    } else if c == "\"" {
                        break
                    } else {
                        value.append(c)
                    }
                }
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = rest[..<end].trimmingBlanks()
                rest = rest[end...]
            }
            params[key] = value
        }
        parameters = params
    }
}

/// `GET /v2/` over TLS: 200, or 401 with `WWW-Authenticate`, means the registry API is alive.
/// With credentials it also proves that they work, through Basic or Bearer (token) auth.
public enum RegistryProbe {
    /// `connection`: one to `target` whose handshake a TLS check made; the first request is
    /// made on it once its peer chain verifies with `trust` (`HTTPClient`'s rule for it).
    package static func run(
        target: ProbeTarget, trust: TrustSource, trustLabel: String,
        credentials: RegistryCredentials? = nil, resolve: (String) -> IPAddress? = { try? IPAddress($0) },
        connection: TLSConnection? = nil
    ) -> CheckResult {
        var watch = Stopwatch()
        let base = "https://\(target.registry.hostAndPort)/v2/"
        var details: [String: String] = ["url": base, "address": target.address.description, "trust": trustLabel]
        let client = HTTPClient(timeoutMilliseconds: target.timeoutMilliseconds)
        let url = SimpleURL(base)!
        func result(_ outcome: CheckResult.Outcome, _ reason: String) -> CheckResult {
            CheckResult(
                name: "registry-api", outcome: outcome, reason: reason, durationSeconds: watch.elapsed, phases: watch.phases,
                details: details)
        }
        do {
            let first = try client.get(url, address: target.address, trust: trust, reusing: connection, watch: &watch)
            details["status"] = String(first.status)
            let apiVersion = first.header("docker-distribution-api-version")
            details["api_version"] = apiVersion ?? ""
            let apiNote = apiVersion == "registry/2.0" ? "registry/2.0 API" : "no Docker-Distribution-API-Version header"
            if first.status == 200 {
                return result(.pass, "GET /v2/ answered 200 (no auth required); \(apiNote)")
            }
            guard first.status == 401, let header = first.header("www-authenticate"), let challenge = AuthChallenge(header) else {
                return result(
                    .fail, "GET /v2/ answered \(first.status)\(first.status == 401 ? " without WWW-Authenticate" : ""): not a registry API")
            }
            details["auth"] = challenge.scheme
            guard let credentials else {
                return result(
                    .pass, "GET /v2/ answered 401 with a \(challenge.scheme) challenge (alive; no credentials given to test); \(apiNote)")
            }
            details["credentials"] = credentials.key
            let authorization: String
            switch challenge.scheme {
            case "basic":
                authorization = credentials.basicAuthorization
            case "bearer":
                let token = try fetchToken(
                    challenge: challenge, credentials: credentials, client: client, registryTarget: target,
                    trust: trust, resolve: resolve, watch: &watch)
                authorization = "Bearer " + token
            default:
                return result(.fail, "the registry asks for \(challenge.scheme) auth, which the agent does not speak")
            }
            let second = try client.get(
                url, address: target.address, trust: trust, headers: [("Authorization", authorization)], watch: &watch)
            details["status_with_credentials"] = String(second.status)
            if second.status == 200 {
                return result(
                    .pass, "GET /v2/ answered 200 with the credentials for \(credentials.key) (\(challenge.scheme) auth); \(apiNote)")
            }
            return result(
                .fail,
                "the registry refused the credentials for \(credentials.key): GET /v2/ answered \(second.status) (\(challenge.scheme) auth); check the pull secret"
            )
        } catch let e as SocketError {
            let endpoint = "\(target.address):\(target.registry.port)"
            return result(
                .fail,
                e.isRefused
                    ? "nothing listens on \(endpoint)"
                    : e.isTimeout && e.what != "connect"
                        ? "\(endpoint) accepted the connection but did not complete TLS and HTTP within the timeout"
                        : e.description)
        } catch let e as HTTPClient.VerifyFailed {
            // The registry's own certificate (before its first answer), not a token realm's: the
            // one step of this check that a passing runtime-pull has just taken itself.
            if details["status"] == nil { details["verify_failed"] = "registry" }
            return result(.fail, "not asked: the certificate does not verify with \(trustLabel) (\(e))")
        } catch {
            return result(.fail, "\(error)")
        }
    }

    /// The Bearer flow of the distribution spec: GET the realm with service and scope, Basic
    /// credentials, and read `token` (or `access_token`) from the JSON answer.
    static func fetchToken(
        challenge: AuthChallenge, credentials: RegistryCredentials, client: HTTPClient, registryTarget: ProbeTarget,
        trust: TrustSource, resolve: (String) -> IPAddress?, watch: inout Stopwatch
    ) throws -> String {
        guard let realm = challenge.parameters["realm"], var url = SimpleURL(realm) else {
            // SimpleURL refuses userinfo in a realm; the message must not carry it either.
            let said = challenge.parameters["realm"].map { " (\(String(Redaction.url($0).prefix(200)).escapedForMessage))" } ?? ""
            throw AgentError(.io, "the Bearer challenge has no usable realm\(said)")
        }
        if let refusal = credentials.realmRefusal(url, registry: registryTarget.registry) {
            throw AgentError(.invalidInput, refusal)
        }
        var query: [String] = []
        for key in ["service", "scope"] {
            if let value = challenge.parameters[key] {
                query.append("\(key)=\(value.percentEncodedQueryValue)")
            }
        }
        if !query.isEmpty { url.pathAndQuery += (url.pathAndQuery.contains("?") ? "&" : "?") + query.joined(separator: "&") }
        let address = url.host == registryTarget.registry.hostName ? registryTarget.address : resolve(url.host)
        guard let address else { throw AgentError(.io, "cannot resolve the token service \(url.host)") }
        let response = try client.get(
            url, address: address, trust: trust, headers: [("Authorization", credentials.basicAuthorization)], watch: &watch)
        guard response.status == 200 else {
            throw AgentError(.io, "the token service \(url.host) answered \(response.status) to the credentials for \(credentials.key)")
        }
        guard let json = try? JSONValue.parse(response.body),
            let token = json["token"]?.string ?? json["access_token"]?.string, !token.isEmpty
        else {
            throw AgentError(.io, "the token service \(url.host) answered without a token")
        }
        return token
    }
}
