import Probes
import XCTest

/// The readiness rule, and the rules by which one check's outcome changes another's: pure, the
/// checks in, the checks out.
final class ReadinessTests: XCTestCase {
    func check(_ name: String, _ outcome: CheckResult.Outcome, _ details: [String: String] = [:]) -> CheckResult {
        CheckResult(name: name, outcome: outcome, reason: name, details: details)
    }

    func testReadyWhenNothingFailedAndSomethingPassed() {
        let pass = CheckResult(name: "a", outcome: .pass, reason: "")
        let warn = CheckResult(name: "b", outcome: .warn, reason: "")
        let fail = CheckResult(name: "c", outcome: .fail, reason: "no route")
        let skip = CheckResult(name: "d", outcome: .skip, reason: "")
        XCTAssertTrue(Readiness.isReady([pass, warn, skip]))
        XCTAssertFalse(Readiness.isReady([pass, fail]))
        XCTAssertFalse(Readiness.isReady([skip]))
        XCTAssertFalse(Readiness.isReady([]))
        XCTAssertEqual(Readiness.blockers([pass, fail]), ["c: no route"])
    }

    /// resolved's failed lookup is a warning where the node's lookup found the name in
    /// /etc/hosts (Go programs read it first), and only there.
    func testTheHostsFileAnswersBeforeResolved() {
        let settled = Readiness.settle([check("dns-host", .pass, ["source": "/etc/hosts"]), check("dns-resolved", .fail)])
        XCTAssertEqual(settled.map(\.outcome), [.pass, .warn])
        XCTAssertTrue(settled[1].reason.hasSuffix("and Go programs such as containerd read it first)"), settled[1].reason)
        let dns = Readiness.settle([check("dns-host", .pass, ["source": "dns"]), check("dns-resolved", .fail)])
        XCTAssertEqual(dns.map(\.outcome), [.pass, .fail])
    }

    /// A proxy that answers resolves the name for the runtime: the node's own lookup failing is a
    /// warning; a proxy that does not answer (or none) leaves it failed.
    func testAProxyThatAnswersResolvesTheName() {
        let proxied = Readiness.settle([check("dns-host", .fail), check("runtime-proxy", .pass)])
        XCTAssertEqual(proxied.map(\.outcome), [.warn, .pass])
        XCTAssertTrue(proxied[0].reason.hasSuffix("(containerd does not resolve it itself: the proxy does)"))
        XCTAssertEqual(Readiness.settle([check("dns-host", .fail), check("runtime-proxy", .fail)]).map(\.outcome), [.fail, .fail])
        XCTAssertEqual(Readiness.settle([check("dns-host", .fail), check("runtime-proxy", .skip)]).map(\.outcome), [.fail, .skip])
    }

    func testAPassingPullTurnsPathFailuresIntoWarningsButNotHazards() {
        var checks = [
            check("runtime-restart-pending", .fail), check("dns-host", .fail), check("coredns-loop-hazard", .fail),
            check("runtime-pull", .pass),
        ]
        checks = Readiness.settle(checks)
        XCTAssertEqual(checks.map(\.outcome), [.warn, .warn, .fail, .pass])
        var failing = [check("dns-host", .fail), check("runtime-pull", .fail)]
        failing = Readiness.settle(failing)
        XCTAssertEqual(failing.map(\.outcome), [.fail, .fail])
    }

    /// registry-api that failed only on the agent's verification of the registry's certificate
    /// is overruled by the runtime's own verified pull; failing for anything else (a token
    /// realm's certificate, credentials, the registry's answer) it stays failed.
    func testAPassingPullSettlesRegistryAPIOnlyWhereItFailedOnTheRegistrysCertificate() {
        var verify = CheckResult(name: "registry-api", outcome: .fail, reason: "not asked: the certificate does not verify")
        verify.details["verify_failed"] = "registry"
        let credentials = CheckResult(name: "registry-api", outcome: .fail, reason: "the credentials were refused")
        var checks = [verify, credentials, CheckResult(name: "runtime-pull", outcome: .pass, reason: "")]
        checks = Readiness.settle(checks)
        XCTAssertEqual(checks.map(\.outcome), [.warn, .fail, .pass])
        var notPulled = [verify, CheckResult(name: "runtime-pull", outcome: .fail, reason: "")]
        notPulled = Readiness.settle(notPulled)
        XCTAssertEqual(notPulled.map(\.outcome), [.fail, .fail])
    }
}
