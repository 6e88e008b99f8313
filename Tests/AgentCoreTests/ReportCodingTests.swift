import Foundation
import Vocabulary
import XCTest

@testable import AgentCore
@testable import Probes

/// A report's JSON (`bootstrap --output json`, the agent's /status) decodes back into the same
/// report: `node-agent status` reads what `run` wrote, certificates included. The typed facts
/// for `run`'s Events (DNS mode, runtime restarts) stay out of the JSON, as its notes and change
/// lines say them.
final class ReportCodingTests: XCTestCase {
    func certificate() throws -> Report.CertificateFacts {
        let json = #"""
            {"subject": "CN=Registry CA", "issuer": "CN=Registry CA", "sha256": "ab12", "subject_hash": "1a2b3c4d", "ca": true,
             "not_before": "2025-01-01T00:00:00Z", "not_after": "2035-01-01T00:00:00Z"}
            """#
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(Report.CertificateFacts.self, from: Data(json.utf8))
    }

    func testTheJSONDecodesBackIntoTheReport() throws {
        var report = Report(
            ready: false, dryRun: false, registry: "registry.svc.cluster.local:443",
            changes: ["install CA x", "restart containerd.service (pid 1 -> 2): why"], notes: ["DNS mode link: why"],
            checks: [
                CheckResult(
                    name: "dns-cluster", outcome: .pass, reason: "resolved", durationSeconds: 0.012,
                    phases: [.init(name: "resolve", seconds: 0.0105)]),
                CheckResult(
                    name: "tls-os-trust", outcome: .fail, reason: "unable to get local issuer certificate", durationSeconds: 1.5,
                    details: ["earliest_cert_expiry": "1767225600"]),
            ],
            timings: [.init(name: "plan", seconds: 0.25)], certificates: [try certificate()])
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let decoded = try decoder.decode(Report.self, from: Data(report.json().utf8))
        XCTAssertEqual(decoded, report)
        XCTAssertEqual(decoded.text(), report.text())
        XCTAssertTrue(decoded.text().contains("CA certificates:\n  * CN=Registry CA (hash 1a2b3c4d"), decoded.text())

        // /status: the same keys and checked_at.
        let status = HealthPages.statusJSON(report, checkedAt: Date(timeIntervalSince1970: 1_764_670_000))
        XCTAssertEqual(try decoder.decode(Report.self, from: Data(status.utf8)), report)

        // The typed facts are not in the JSON.
        report.dnsMode = Report.DNSChoice(mode: "link", reason: "why", replacedAnotherMode: false)
        report.runtimeRestarts = [Report.RuntimeRestart(unit: "containerd.service", pidBefore: 1, pidAfter: 2, why: "why")]
        report.watchedPaths = ["/etc/containerd/certs.d"]
        XCTAssertEqual(report.json(), decoded.json())
    }

    /// A date with fractions of a second (the agent writes whole seconds; another writer, or a
    /// fuzzer, may not): read as the whole second it falls in, so that the report's own JSON
    /// reads back the same. The fuzz target status-report found it: "2027-12-06T21:00:00.5Z"
    /// decoded to .5 s past, `json()` wrote it without the fraction, and the two reports differed.
    func testADateWithFractionsOfASecondReadsBackTheSame() throws {
        let json = #"""
            {"ready": true, "registry": "r:443", "certificates": [{"subject": "CN=a", "issuer": "CN=a", "sha256": "ab",
             "subject_hash": "1a2b3c4d", "ca": true, "not_before": "2025-01-01T00:00:00.999Z", "not_after": "2035-01-01T00:00:00.5Z"}]}
            """#
        let report = try Report(decodingJSON: Array(json.utf8))
        let certificate = try XCTUnwrap(report.certificates.first)
        XCTAssertEqual(certificate.notBefore, Date(timeIntervalSince1970: 1_735_689_600))
        XCTAssertEqual(certificate.notAfter, Date(timeIntervalSince1970: 2_051_222_400))
        XCTAssertEqual(try Report(decodingJSON: Array(report.json().utf8)), report)
        XCTAssertThrowsError(try Report(decodingJSON: Array(json.replacingOccurrences(of: "00.5Z", with: "0x.5Z").utf8)))
    }

    /// What an older or newer agent may leave out: only `ready` and `registry` are needed.
    func testAMinimalReport() throws {
        let decoded = try JSONDecoder().decode(Report.self, from: Data(#"{"ready": true, "registry": "r:443"}"#.utf8))
        XCTAssertEqual(decoded, Report(ready: true, dryRun: false, registry: "r:443", changes: [], notes: [], checks: []))
    }
}
