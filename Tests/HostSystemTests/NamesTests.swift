import HostSystem
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
            XCTAssertThrowsError(try DomainName(input), "accepted \(input.debugDescription)") {
                XCTAssertTrue("\($0)".contains(phrase), "\($0) lacks \(phrase)")
                XCTAssertFalse("\($0)".contains("\n"))
            }
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
        for bad in ["https://registry.local", "registry.local/img", "registry.local:0", "registry.local:70000",
                    "registry.local:44x", "registry local", "registry.local\n", "fd00::5", "[fd00::5", ""] {
            XCTAssertThrowsError(try RegistryAddress(bad), "accepted \(bad.debugDescription)")
        }
    }

    func testEscapedForMessageKeepsOneLine() {
        XCTAssertEqual("a\nb\tc\u{1}".escapedForMessage, "a\\nb\\tc\\x01")
    }
}
