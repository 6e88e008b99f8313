import Foundation
import Probes
import Vocabulary
import XCTest

@testable import AgentCore

/// The cluster's word on kube-dns (its Service's EndpointSlices, watched: `Watch.kubeDNSReady`)
/// wakes the loop: no ready endpoint any more is proven in full at the next watch tick, not at
/// the next interval; ready endpoints again while the node is not ready, too. A word that is not
/// there (nil: the watch refused, broken, not synced) wakes nothing: the interval's light
/// reconcile asks kube-dns as without a watch. Broken (the wake dropped), the 0 waits for the
/// interval (58 s later here).
extension ReconcilerTests {
    func kubeDNSTick(_ ready: Int?) -> (why: String, proof: Loop.Proof)? {
        let actions = loop.next(
            .tick(.init(ca: "ca-1", caChanged: "the CA file changed", owner: ":1.7", folders: [[1]], kubeDNSReady: ready)), now: now)
        guard case .reconcile(let why, let proof)? = actions.first else { return nil }
        return (why, proof)
    }

    func testNoReadyKubeDNSEndpointIsProvenAtTheNextTick() {
        loop = proofLoop
        XCTAssertEqual(kubeDNSTick(2)?.why, "start")
        ended(probed())
        advance(2)
        XCTAssertNil(kubeDNSTick(2), "ready endpoints, nothing due")
        XCTAssertNil(kubeDNSTick(1), "fewer, but one is ready: nothing to prove")
        advance(2)
        let woken = kubeDNSTick(0)
        XCTAssertEqual(woken?.why, "kube-dns has no ready endpoints (EndpointSlice watch)")
        XCTAssertEqual(woken?.proof, .full)
        var failed = probed()
        failed.checks[0] = CheckResult(name: "dns-cluster", outcome: .fail, reason: "nothing listens for DNS there")
        failed.ready = false
        ended(failed)
        advance(2)
        XCTAssertNil(kubeDNSTick(0), "the same word wakes once")
        XCTAssertEqual(kubeDNSTick(1)?.why, "kube-dns has 1 ready endpoints again (EndpointSlice watch)", "not ready: recovery at once")
        ended(probed())
        advance(2)
        XCTAssertNil(kubeDNSTick(nil), "the watch gone: nothing woken, the interval asks kube-dns")
        advance(2)
        XCTAssertEqual(kubeDNSTick(0)?.why, "kube-dns has no ready endpoints (EndpointSlice watch)", "the watch back with none ready")
    }

    func testReadyEndpointsAgainWhileTheNodeIsReadyWakeNothing() {
        loop = proofLoop
        XCTAssertEqual(kubeDNSTick(0)?.why, "start", "the start is the start")
        ended(probed())
        advance(2)
        XCTAssertNil(kubeDNSTick(0), "no change since the start's")
        XCTAssertNil(kubeDNSTick(3), "ready again while the node is ready: the next interval's light reconcile takes it")
    }
}
