import Foundation
import HostSystem
@testable import NodeAgent
import Probes
import TestSupport
import XCTest

final class BootstrapConfigTests: XCTestCase {
    func config(registry: String = "registry-service.openfaas.svc.cluster.local:443", dns: String = "10.96.0.10",
                domain: String = "svc.cluster.local", ca: String = "ca.crt", timeout: Double = 5) throws -> BootstrapConfig {
        try BootstrapConfig(hostRoot: NSTemporaryDirectory(), caFile: try CertFixtures.path(ca), registry: registry,
                            clusterDNS: dns, domain: domain, dbusAddress: nil, timeout: timeout, dryRun: false)
    }

    func testValidConfigDefaultsTheBusToTheHostRoot() throws {
        let c = try config()
        XCTAssertEqual(c.certificates.count, 1)
        XCTAssertTrue(c.dbusAddress.hasSuffix("/run/dbus/system_bus_socket"))
    }

    func testRegistryOutsideTheDomainIsRefused() throws {
        XCTAssertThrowsError(try config(registry: "registry.example.com")) { XCTAssertTrue("\($0)".contains("is not under the domain")) }
        XCTAssertNoThrow(try config(registry: "10.0.0.5:5000"))
    }

    func testEachBadInputNamesTheProblem() throws {
        XCTAssertThrowsError(try config(dns: "10.96.0.x")) { XCTAssertTrue("\($0)".contains("is not an IP address")) }
        XCTAssertThrowsError(try config(domain: "svc.cluster.local\n[Resolve]")) { XCTAssertTrue("\($0)".contains("a newline")) }
        XCTAssertThrowsError(try config(timeout: 0))
        XCTAssertThrowsError(try BootstrapConfig(hostRoot: "/", caFile: "/nonexistent/ca.crt", registry: "r.svc.cluster.local",
                                                 clusterDNS: "10.96.0.10", domain: "svc.cluster.local", dbusAddress: nil,
                                                 timeout: 5, dryRun: false)) {
            XCTAssertTrue("\($0)".contains("does not exist"))
        }
    }

    func testEnvironmentFillsOptionsTheCommandLineLacks() {
        let merged = EnvironmentOptions.merge(arguments: ["bootstrap", "--registry", "cli.svc.cluster.local"],
                                              environment: ["NODE_AGENT_REGISTRY": "env.svc.cluster.local", "NODE_AGENT_CLUSTER_DNS": "10.96.0.10",
                                                            "NODE_AGENT_DRY_RUN": "true"])
        XCTAssertEqual(merged, ["bootstrap", "--registry", "cli.svc.cluster.local", "--cluster-dns", "10.96.0.10", "--dry-run"])
    }

    func testReadinessRule() {
        let pass = CheckResult(name: "a", outcome: .pass, reason: "")
        let warn = CheckResult(name: "b", outcome: .warn, reason: "")
        let fail = CheckResult(name: "c", outcome: .fail, reason: "")
        let skip = CheckResult(name: "d", outcome: .skip, reason: "")
        XCTAssertTrue(Report.isReady([pass, warn, skip]))
        XCTAssertFalse(Report.isReady([pass, fail]))
        XCTAssertFalse(Report.isReady([skip]))
        XCTAssertFalse(Report.isReady([]))
    }
}
