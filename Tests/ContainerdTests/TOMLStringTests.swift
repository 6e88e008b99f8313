import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import Containerd
@testable import TrustStore

/// Strings written into hosts.toml are TOML basic strings, escaped, and read back unchanged.
final class TOMLStringTests: XCTestCase {
    func testBasicStringsEscapeQuotesBackslashesAndControlCharacters() {
        XCTAssertEqual(TOMLString.basic("/etc/containerd/certs.d/r:443/ca.crt"), "\"/etc/containerd/certs.d/r:443/ca.crt\"")
        XCTAssertEqual(TOMLString.basic("a\"b\\c\u{0}\u{1}\t\n\u{1F}\u{7F}é"), #""a\"b\\c\u0000\u0001\u0009\u000A\u001F\u007Fé""#)
    }

    /// The strings of a value as the agent's TOML reader decodes them (the reader of hosts.toml
    /// since TOMLDocument replaced the line-based one): escapes decoded, literal strings as
    /// written, an unclosed string or an unknown escape refused.
    func testStringsOfAValueAreDecoded() throws {
        func strings(_ value: String) throws -> [String] {
            let v = try TOMLDocument(parsing: "a = " + value + "\n").root["a"]
            return v?.string.map { [$0] } ?? (v?.array ?? []).compactMap(\.string)
        }
        XCTAssertEqual(try strings(#" "a\"b\\c\u00e9\t""#), ["a\"b\\c\u{e9}\t"])
        XCTAssertEqual(try strings(#" ['C:\x', "y", 'z']  # "not this""#), ["C:\\x", "y", "z"])
        XCTAssertEqual(try strings(#" "\U0001F600""#), ["\u{1F600}"])
        XCTAssertThrowsError(try strings(#" "unclosed"#))
        XCTAssertThrowsError(try strings(#" "bad \q escape""#))
    }

    /// A CA path with `"` and `\` (a config_path may hold them): the exact text, what Python's
    /// tomllib (a TOML 1.0 parser) reads from it, and what the agent's own reader gives back.
    func testHostsTOMLWithQuotesAndBackslashesParsesBack() throws {
        let registry = try RegistryAddress("registry-service.openfaas.svc.cluster.local:443")
        let caFile = try HostPath(#"/etc/containerd/certs "x"\y/registry-service.openfaas.svc.cluster.local:443/ca.crt"#)
        let toml = TrustInstaller.hostsTOML(registry: registry, caFile: caFile)
        XCTAssertEqual(
            toml,
            HostFiles.ownershipMarker + "\n" + #"""
                server = "https://registry-service.openfaas.svc.cluster.local:443"

                [host."https://registry-service.openfaas.svc.cluster.local:443"]
                  capabilities = ["pull", "resolve"]
                  ca = "/etc/containerd/certs \"x\"\\y/registry-service.openfaas.svc.cluster.local:443/ca.crt"

                """#)

        let dir = try makeTemporaryDirectory("toml")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try toml.write(toFile: dir + "/hosts.toml", atomically: true, encoding: .utf8)
        let script = """
            import json, sys, tomllib
            with open(sys.argv[1], "rb") as f:
                doc = tomllib.load(f)
            print(json.dumps({"server": doc["server"], "hosts": list(doc["host"]), "ca": doc["host"][doc["server"]]["ca"]}))
            """
        let r = try sh("/usr/bin/env", ["python3", "-c", script, dir + "/hosts.toml"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let parsed = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(parsed["server"] as? String, "https://registry-service.openfaas.svc.cluster.local:443")
        XCTAssertEqual(parsed["hosts"] as? [String], ["https://registry-service.openfaas.svc.cluster.local:443"])
        XCTAssertEqual(parsed["ca"] as? String, caFile.path)

        // And as containerd's rules read it back (ContainerdHosts, on toml++).
        let hosts = try ContainerdHosts.parse(toml, folder: caFile.parent)
        XCTAssertEqual(hosts.map(\.caFiles), [[caFile], nil])
    }
}
