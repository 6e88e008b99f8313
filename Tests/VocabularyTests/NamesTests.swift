import TestSupport
import Vocabulary
import XCTest

final class NamesTests: XCTestCase {
    func testIPAddresses() throws {
        XCTAssertEqual(try IPAddress("10.96.0.10").description, "10.96.0.10")
        XCTAssertEqual(try IPAddress("10.96.0.10").family, .v4)
        XCTAssertEqual(try IPAddress("fd00::a").description, "fd00::a")
        for bad in ["", "10.96.0", "10.96.0.10 ", "10.96.0.10\n", "10.96.0.256", "kube-dns", "10.96.0.10;rm", "::g"] {
            XCTAssertThrowsError(try IPAddress(bad), "accepted \(bad.debugDescription)") {
                XCTAssertEqual(($0 as? AgentError)?.code, .invalidInput)
                XCTAssertFalse("\($0)".contains("\n"), "message must be one line")
            }
        }
    }

    func testDomainNames() throws {
        XCTAssertEqual(try DomainName("Svc.Cluster.Local.").name, "svc.cluster.local")
        XCTAssertTrue(try DomainName("a.svc.cluster.local").isWithin(try DomainName("svc.cluster.local")))
        XCTAssertFalse(try DomainName("xsvc.cluster.local").isWithin(try DomainName("svc.cluster.local")))
        let cases: [(String, String)] = [
            ("~svc.cluster.local", "starts with '~'"),
            ("svc cluster.local", "a space"),
            ("svc.cluster.local\nDNS=1.1.1.1", "a newline"),
            ("svc..local", "empty label"),
            (".svc.local", "empty label"),
            ("", "empty"),
            ("svc.cluster.local;x", "';'"),
            (String(repeating: "a", count: 64) + ".local", "longer than 63"),
            ("-svc.local", "starts or ends with '-'"),
        ]
        for (input, phrase) in cases {
            assertAgentError(try DomainName(input), .invalidInput, phrase)
            XCTAssertThrowsError(try DomainName(input)) { XCTAssertFalse("\($0)".contains("\n")) }
        }
    }

    func testRegistryAddresses() throws {
        let r = try RegistryAddress("registry-service.openfaas.svc.cluster.local:443")
        XCTAssertEqual(r.hostAndPort, "registry-service.openfaas.svc.cluster.local:443")
        XCTAssertEqual(r.hostName, "registry-service.openfaas.svc.cluster.local")
        XCTAssertEqual(try RegistryAddress("registry.local").port, 443)
        XCTAssertFalse(try RegistryAddress("registry.local").portWasGiven)
        XCTAssertEqual(try RegistryAddress("10.0.0.5:5000").hostForURL, "10.0.0.5")
        XCTAssertEqual(try RegistryAddress("[fd00::5]:5000").hostAndPort, "[fd00::5]:5000")
        let bad: [(String, [String])] = [
            (
                "https://registry.local",
                ["registry 'https://registry.local' must be HOST[:PORT], without scheme or path", "e.g. registry-service"]
            ),
            ("registry.local/img", ["registry 'registry.local/img' must be HOST[:PORT], without scheme or path"]),
            ("registry.local:0", ["registry port '0' is not a port number", "use a number from 1 to 65535"]),
            ("registry.local:70000", ["registry port '70000' is not a port number", "use a number from 1 to 65535"]),
            ("registry.local:44x", ["registry port '44x' is not a port number"]),
            ("registry local", ["registry host 'registry local' contains a space", "use letters, digits, '-' and '.' only"]),
            ("registry.local\n", ["registry host 'registry.local\\n' contains a newline"]),
            ("fd00::5", ["registry 'fd00::5' has several ':'", "write an IPv6 address in brackets: [fd00::1]:443"]),
            ("[fd00::5", ["registry '[fd00::5' has an unclosed '['"]),
            ("[fd00::5]x", ["registry '[fd00::5]x' has text after ']' that is not a port"]),
            ("", ["the registry is empty"]),
        ]
        for (input, phrases) in bad {
            for phrase in phrases { assertAgentError(try RegistryAddress(input), .invalidInput, phrase) }
        }
    }

    func testEscapedForMessageKeepsOneLine() {
        XCTAssertEqual("a\nb\tc\u{1}".escapedForMessage, "a\\nb\\tc\\x01")
    }
}
