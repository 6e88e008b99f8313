import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import Probes
@testable import Transport

final class RegistryAuthTests: XCTestCase {
    let registry = try! RegistryAddress("registry-service.openfaas.svc.cluster.local:443")

    func testChallengesAreParsedAsRFC7235Says() {
        let bearer = AuthChallenge(
            #"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#)
        XCTAssertEqual(bearer?.scheme, "bearer")
        XCTAssertEqual(bearer?.parameters["realm"], "https://auth.example/token")
        XCTAssertEqual(bearer?.parameters["scope"], "repository:a/b:pull,push")
        XCTAssertEqual(AuthChallenge(#"Basic realm="x \"y\"""#)?.parameters["realm"], #"x "y""#)
        XCTAssertEqual(AuthChallenge("Negotiate")?.scheme, "negotiate")
        XCTAssertNil(AuthChallenge("  "))
    }

    func testDockerConfigKeysMatchAsDockerDoes() throws {
        func creds(_ json: String) throws -> RegistryCredentials? {
            try RegistryCredentials.fromDockerConfig(Array(json.utf8), registry: registry, source: "config.json")
        }
        let auth = Data("builder:s3cret:with:colons".utf8).base64EncodedString()
        let c = try XCTUnwrap(creds(#"{"auths":{"https://registry-service.openfaas.svc.cluster.local/v2/":{"auth":"\#(auth)"}}}"#))
        XCTAssertEqual(c.username, "builder")
        XCTAssertEqual(c.password, "s3cret:with:colons")
        XCTAssertEqual(
            try creds(#"{"auths":{"registry-service.openfaas.svc.cluster.local:443":{"username":"u","password":"p"}}}"#)?.password, "p")
        XCTAssertNil(try creds(#"{"auths":{"registry-service.openfaas.svc.cluster.local:5000":{"username":"u","password":"p"}}}"#))
        XCTAssertNil(try creds(#"{"credsStore":"desktop"}"#))
        assertAgentError(
            try creds(#"{"auths":{"registry-service.openfaas.svc.cluster.local":{}}}"#), .invalidInput,
            "config.json: the entry for registry-service.openfaas.svc.cluster.local has neither `auth` nor `username`/`password`")
        assertAgentError(try creds("[1]"), .invalidInput, "config.json is not a Docker config.json (JSON object expected)")
        assertAgentError(try creds("not json"), .invalidInput, "config.json is not a Docker config.json (JSON object expected)")
        XCTAssertEqual(c.basicAuthorization, "Basic " + auth)
    }

    /// The pull secret goes to a token realm only over https, on the registry's own host or one
    /// the user allowed (--token-realm-hosts); the refusal names the realm's host and the option.
    func testCredentialsGoOnlyToAnHTTPSRealmOnAnAllowedHost() throws {
        var c = RegistryCredentials(username: "u", password: "S3cret", key: "registry-service.openfaas.svc.cluster.local")
        func refusal(_ realm: String) throws -> String? { c.realmRefusal(try XCTUnwrap(SimpleURL(realm)), registry: registry) }
        XCTAssertNil(try refusal("https://registry-service.openfaas.svc.cluster.local/token"))
        XCTAssertNil(try refusal("https://REGISTRY-SERVICE.openfaas.svc.cluster.local:5001/auth"), "same host, another port")
        let other = try XCTUnwrap(try refusal("https://auth.example/token"))
        XCTAssertTrue(other.contains("another host, auth.example"), other)
        XCTAssertTrue(other.contains("--token-realm-hosts"), other)
        XCTAssertTrue(other.contains("NODE_AGENT_TOKEN_REALM_HOSTS"), other)
        let plain = try XCTUnwrap(try refusal("http://registry-service.openfaas.svc.cluster.local/token"))
        XCTAssertTrue(plain.contains("plain http") && plain.contains("only over https"), plain)
        XCTAssertTrue(try refusal("http://127.0.0.1:8080/token")?.contains("http://127.0.0.1:8080") == true)

        c.tokenRealmHosts = try RegistryCredentials.tokenRealmHosts(["auth.example,10.0.0.5", "Other.Example"])
        XCTAssertEqual(c.tokenRealmHosts, ["auth.example", "10.0.0.5", "other.example"])
        XCTAssertNil(try refusal("https://auth.example/token"))
        XCTAssertNil(try refusal("https://10.0.0.5:8443/token"))
        XCTAssertNil(try refusal("https://other.example/token"))
        XCTAssertNotNil(try refusal("http://auth.example/token"), "allowed hosts get credentials over https only")
        XCTAssertNotNil(try refusal("https://auth.example.evil/token"), "a suffix is another host")
        XCTAssertNotNil(try refusal("https://evil.auth.example/token"), "a subdomain is another host")
        for bad in ["https://auth.example", "auth.example:443", "user:pw@auth.example", "auth example", "a/b"] {
            XCTAssertThrowsError(try RegistryCredentials.tokenRealmHosts([bad]), bad) {
                XCTAssertEqual(($0 as? AgentError)?.code, .invalidInput)
                XCTAssertTrue("\($0)".contains("--token-realm-hosts"), "\($0)")
                XCTAssertFalse("\($0)".contains("pw@"), "userinfo is not repeated: \($0)")
            }
        }
    }

    func testURLsAndChunkedBodies() {
        XCTAssertEqual(SimpleURL("https://token.example:8443/token?x=1")?.port, 8443)
        XCTAssertEqual(SimpleURL("https://token.example/token")?.pathAndQuery, "/token")
        XCTAssertEqual(SimpleURL("http://token.example")?.port, 80)
        XCTAssertEqual(SimpleURL("http://token.example")?.pathAndQuery, "/")
        XCTAssertNil(SimpleURL("ftp://token.example/"))
        XCTAssertNil(SimpleURL("https://user@token.example/"))
        XCTAssertNil(SimpleURL("https://token.example/a b"))
        XCTAssertEqual(HTTPClient.dechunk(Array("4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n".utf8)), Array("Wikipedia".utf8))
        XCTAssertEqual(HTTPClient.dechunk(Array("zz\r\n".utf8)), [])
    }

    func testTCPProbeSaysWhenNothingListens() throws {
        // A port that was just free on loopback: connect is refused at once.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sa) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        let port = UInt16(bigEndian: sa.sin_port)
        close(fd)
        let r = TCPProbe.run(addresses: [try IPAddress("127.0.0.1")], port: port, timeoutMilliseconds: 500)
        XCTAssertEqual(r.outcome, .fail)
        XCTAssertTrue(r.reason.contains("refused (nothing listens)"), r.reason)
        let none = TCPProbe.run(addresses: [], port: 443, timeoutMilliseconds: 500)
        XCTAssertEqual(none.outcome, .fail)
        XCTAssertEqual(none.reason, "not tried: no address for the registry")
    }

    func testHazardCheckReadsKubeletsResolvConf() throws {
        let dir = try makeTemporaryDirectory("hazard")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = HostFiles(root: try HostRoot(dir))
        try files.writeAtomically(try HostPath("/run/systemd/resolve/resolv.conf"), "nameserver 192.0.2.1\nnameserver 10.96.0.10\n")
        let dns = try IPAddress("10.96.0.10")
        XCTAssertEqual(
            HazardProbes.coreDNSLoop(files: files, resolvConf: "/run/systemd/resolve/resolv.conf", clusterDNS: dns).outcome, .fail)
        XCTAssertEqual(HazardProbes.coreDNSLoop(files: files, resolvConf: "/etc/missing.conf", clusterDNS: dns).outcome, .skip)
        try files.writeAtomically(try HostPath("/run/systemd/resolve/resolv.conf"), "nameserver 192.0.2.1\n")
        XCTAssertEqual(
            HazardProbes.coreDNSLoop(files: files, resolvConf: "/run/systemd/resolve/resolv.conf", clusterDNS: dns).outcome, .pass)
    }
}
