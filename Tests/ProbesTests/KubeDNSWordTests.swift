import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import Containerd
@testable import Probes

/// A light run with the cluster's word on kube-dns (ProbeSettings.kubeDNSWord: the Service's
/// EndpointSlices, watched) asks kube-dns no question while an endpoint is ready, and says where
/// its word came from; with no ready endpoint, or no word, it asks its one question as before.
/// Against LightRunTests' loopback listener and DNS server. Broken (the word ignored), kube-dns
/// is asked in every case.
final class KubeDNSWordTests: XCTestCase {
    func lightRun(port: UInt16, dns: IPAddress, word: (ready: Int, said: String)?) throws -> [CheckResult] {
        try LightRunTests.lightRun(port: port, at: "127.0.0.1", dns: dns, word: word)
    }

    func testAReadyEndpointIsTakenAndKubeDNSIsNotAsked() throws {
        let listener = try LightRunTests.Listener()
        defer { listener.stop() }
        let dns = try LightRunTests.DNSServer("127.0.93.10")
        let said = "kube-dns: 2 ready endpoints (EndpointSlice watch of kube-system/kube-dns)"
        let checks = try lightRun(port: listener.port, dns: dns.address, word: (2, said))
        let check = try XCTUnwrap(checks.first { $0.name == "dns-cluster" })
        XCTAssertEqual(check.outcome, .pass)
        XCTAssertEqual(check.reason, "\(said); registry.test not asked of 127.0.93.10 (light check)")
        XCTAssertEqual(check.details["source"], "EndpointSlice watch")
        XCTAssertEqual(dns.asked(), [], "no question while the cluster says kube-dns is ready")
        XCTAssertEqual(checks.first { $0.name == "tcp" }?.outcome, .pass, "the registry's TCP connect as before")

        _ = try lightRun(port: listener.port, dns: dns.address, word: (0, "kube-dns: 0 ready endpoints (EndpointSlice watch)"))
        XCTAssertEqual(dns.asked(), [1], "none ready: asked, as without a watch")
        _ = try lightRun(port: listener.port, dns: dns.address, word: nil)
        XCTAssertEqual(dns.asked(), [1, 1], "no word (the watch refused or broken): asked")
    }
}
