import AgentCore
import Foundation
import HostSystem
import Logging
import TestSupport
import TrustStore
import Vocabulary
import XCTest

@testable import NodeAgent
@testable import Probes

/// `node-agent status` without a node: the endpoint URL it takes, the table it prints from a
/// /status (bootstrap's, certificates included), the age, and what it says when there is no report.
/// (MonitoringIntegrationTests runs it against `node-agent run` on a sandbox node.)
final class StatusCommandTests: XCTestCase {
    func testEndpointURLs() throws {
        for (text, url) in [
            ("http://127.0.0.1:9808", "http://127.0.0.1:9808"), ("http://127.0.0.1:9808/", "http://127.0.0.1:9808"),
            ("HTTP://10.0.0.5:80", "http://10.0.0.5:80"), ("http://10.0.0.5", "http://10.0.0.5:80"),
            ("http://localhost:9808", "http://127.0.0.1:9808"), ("http://[::1]:9808", "http://[::1]:9808"),
        ] {
            XCTAssertEqual(try EndpointClient(text).url, url, text)
        }
        let fix = "give the agent's health endpoint, its --listen address, as http://IP:PORT: e.g. http://127.0.0.1:9808"
        for (text, why) in [
            ("127.0.0.1:9808", "is not an http:// URL"), ("https://127.0.0.1:9808", "is HTTPS: the agent's endpoint speaks plain HTTP"),
            ("http://127.0.0.1:9808/status", "has a path: the endpoint is the agent's address only (status reads its /status)"),
            ("http://127.0.0.1:98080", "has no valid port (1-65535)"), ("http://127.0.0.1:", "has no valid port (1-65535)"),
            ("http://127.0.0.1:0", "has no valid port (1-65535)"), ("http://:9808", "has no host"),
            ("http://node-1:9808", "does not name its host by IP address"),
            ("http://[::1:9808", "has an IPv6 address without its closing ]"),
            ("http://u@127.0.0.1:9808", "has user information"),
        ] {
            assertAgentError(try EndpointClient(text), .invalidInput, "--endpoint '\(text)' \(why)", fix)
        }
        XCTAssertEqual(EndpointClient.forListen("0.0.0.0:9808")?.url, "http://127.0.0.1:9808")
        XCTAssertEqual(EndpointClient.forListen("10.1.2.3:9000")?.url, "http://10.1.2.3:9000")
        XCTAssertEqual(EndpointClient.forListen("[::]:9808")?.url, "http://[::1]:9808")
        XCTAssertEqual(EndpointClient.forListen("[fd00::2]:9808")?.url, "http://[fd00::2]:9808")
        XCTAssertNil(EndpointClient.forListen("off"))
    }

    func testAges() {
        XCTAssertEqual(StatusCommand.age(-3), "0 s ago", "a clock a little behind")
        XCTAssertEqual(StatusCommand.age(42.4), "42 s ago")
        XCTAssertEqual(StatusCommand.age(119), "119 s ago")
        XCTAssertEqual(StatusCommand.age(600), "10 min ago")
        XCTAssertEqual(StatusCommand.age(3 * 3600 + 5), "3 h ago")
        XCTAssertEqual(StatusCommand.age(5 * 86400), "5 days ago")
    }

    /// A report with a change, a CA certificate, a note and checks that fail: its /status,
    /// shown by status, is bootstrap's table under a line that says whose and how old.
    func testTheTableIsBootstrapsWithTheAge() throws {
        let certificate = try XCTUnwrap(
            try CertificateParser.parse(
                Array(try Data(contentsOf: URL(fileURLWithPath: try CertFixtures.path("ca.crt")))), source: "ca.crt"
            )
            .first)
        let report = Report(
            ready: false, dryRun: false, registry: "registry.svc.cluster.local:443", changes: ["install CA x", "link nodeagent0"],
            notes: ["the runtime started before the CA"],
            checks: [
                CheckResult(name: "dns-cluster", outcome: .pass, reason: "resolved", durationSeconds: 0.012),
                CheckResult(name: "tls-os-trust", outcome: .fail, reason: "unable to get local issuer certificate", durationSeconds: 1.5),
            ],
            certificates: [Report.CertificateFacts(certificate)])
        let checked = Date(timeIntervalSince1970: 1_764_670_000)
        let body = Array(HealthPages.statusJSON(report, checkedAt: checked).utf8)
        let shown = try StatusCommand.render(
            try JSONValue.parse(body), body: body, source: "http://127.0.0.1:9808", now: checked.addingTimeInterval(42.3))
        XCTAssertFalse(shown.ready)
        XCTAssertEqual(shown.text, "The agent at http://127.0.0.1:9808, checked 42 s ago (2025-12-02T10:06:40Z):\n" + report.text())
        XCTAssertTrue(shown.text.contains("CA certificates:\n  * "), shown.text)
        // JSON: the agent's /status and where and how old it is.
        let json = try JSONValue.parse(Array(shown.json.utf8))
        XCTAssertEqual(json["source"], "http://127.0.0.1:9808")
        XCTAssertEqual(json["age_seconds"], .int(42))
        XCTAssertEqual(json["checked_at"], "2025-12-02T10:06:40Z")
        XCTAssertEqual(json["ready"], false)
        XCTAssertEqual(json["checks"]?.array?.count, 2)

        let ready = Report(
            ready: true, dryRun: false, registry: "r:443", changes: [], notes: [],
            checks: [CheckResult(name: "registry-api", outcome: .pass, reason: "401 as expected")])
        let readyBody = Array(HealthPages.statusJSON(ready, checkedAt: checked).utf8)
        let readyShown = try StatusCommand.render(try JSONValue.parse(readyBody), body: readyBody, source: "s", now: checked)
        XCTAssertTrue(readyShown.ready)
        XCTAssertEqual(readyShown.text, "The agent at s, checked 0 s ago (2025-12-02T10:06:40Z):\n" + ready.text())
    }

    /// A failed reconcile is a report (not ready); an agent before its first is none.
    func testAFailedReconcileAndNoReconcileYet() throws {
        let cache = StatusCache(registry: "r:443", now: Date(timeIntervalSince1970: 1_764_670_000))
        func render(_ now: Double) throws -> StatusCommand.Shown {
            let body = Array(cache.current.status)
            return try StatusCommand.render(
                try JSONValue.parse(body), body: body, source: "http://e", now: Date(timeIntervalSince1970: now))
        }
        XCTAssertThrowsError(try render(1_764_670_300)) { error in
            XCTAssertEqual(
                (error as? StatusCommand.NoReport)?.message,
                "the agent at http://e has not finished its first reconcile yet (it started 5 min ago)")
        }
        cache.update(report: nil, error: "the D-Bus address is empty", now: Date(timeIntervalSince1970: 1_764_670_400))
        let failed = try render(1_764_670_407)
        XCTAssertFalse(failed.ready)
        XCTAssertEqual(
            failed.text,
            """
            The agent at http://e, checked 7 s ago (2025-12-02T10:13:20Z):
            Its last reconcile failed: the D-Bus address is empty
            NOT READY: the agent could not check this node.

            """)
    }

    /// Whatever answers at --endpoint is read with HTTPWire's response reader: a negative
    /// Content-Length (which trapped the command, exit 132) is an unusable answer with its
    /// reason; a chunked one is read whole. A one-shot server of raw bytes per case.
    func testAnEndpointsAnswerIsReadByItsFraming() throws {
        func answer(_ raw: String) throws -> Result<(status: Int, body: [UInt8]), Error> {
            let server = Process()
            let pipe = Pipe()
            server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            server.arguments = [
                "python3", "-c",
                "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); print(s.getsockname()[1], flush=True); "
                    + "c,_=s.accept(); c.recv(65536); c.sendall(sys.argv[1].encode()); c.close()",
                raw,
            ]
            server.standardOutput = pipe
            try server.run()
            defer { server.terminate() }
            let line = String(decoding: pipe.fileHandleForReading.availableData, as: UTF8.self)
            let port = try XCTUnwrap(Int(line.trimmingCharacters(in: .whitespacesAndNewlines)), line)
            return Result { try EndpointClient("http://127.0.0.1:\(port)").get("/status") }
        }
        switch try answer("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}") {
        case .success(let r): XCTFail("a negative Content-Length was read: \(r)")
        case .failure(let error):
            XCTAssertTrue("\(error)".hasPrefix("its answer is not usable: "), "\(error)")
            XCTAssertTrue("\(error)".contains("Content-Length"), "\(error)")
        }
        let chunked = try answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n").get()
        XCTAssertEqual(chunked.status, 200)
        XCTAssertEqual(chunked.body, Array("{}".utf8))
    }

    /// Against a real endpoint (HealthServer on port 0): before the first reconcile there is no
    /// report; after, the report; where nothing listens, no report and what to do.
    func testFetchFromAnEndpoint() throws {
        let cache = StatusCache(registry: "r:443")
        let server = try HealthServer(host: "127.0.0.1", port: 0, cache: cache, logger: Logger(label: "test"))
        server.start()
        defer { server.stop() }
        let client = try EndpointClient("http://127.0.0.1:\(server.port)")
        XCTAssertThrowsError(try StatusCommand.fetch(client)) { error in
            XCTAssertTrue(
                (error as? StatusCommand.NoReport)?.message.hasPrefix("the agent at \(client.url) has not finished its first reconcile")
                    ?? false,
                "\(error)")
        }
        cache.update(
            report: Report(
                ready: true, dryRun: false, registry: "r:443", changes: [], notes: [],
                checks: [CheckResult(name: "registry-api", outcome: .pass, reason: "ok")]), error: nil)
        let shown = try StatusCommand.fetch(client)
        XCTAssertTrue(shown.ready)
        // checked_at has whole seconds: a second's boundary may fall between the report and now.
        XCTAssertTrue(
            ["0", "1"].contains { shown.text.hasPrefix("The agent at \(client.url), checked \($0) s ago (") }, shown.text)
        XCTAssertTrue(shown.text.hasSuffix("READY: this node can pull from r:443.\n"), shown.text)

        // The metrics listener has no report.
        let metrics = try HealthServer(host: "127.0.0.1", port: 0, scope: .metrics, cache: cache, logger: Logger(label: "test"))
        metrics.start()
        defer { metrics.stop() }
        let metricsClient = try EndpointClient("http://127.0.0.1:\(metrics.port)")
        XCTAssertThrowsError(try StatusCommand.fetch(metricsClient)) { error in
            XCTAssertEqual(
                (error as? StatusCommand.NoReport)?.message,
                "\(metricsClient.url)/status answered 404 without node-agent's report: is that node-agent's endpoint?")
        }

        // A port nothing listens on: the one just freed by a server of our own.
        var gone: HealthServer? = try HealthServer(host: "127.0.0.1", port: 0, cache: cache, logger: Logger(label: "test"))
        let free = try EndpointClient("http://127.0.0.1:\(gone!.port)")
        gone = nil
        XCTAssertThrowsError(try StatusCommand.fetch(free)) { error in
            let e = error as? StatusCommand.NoReport
            XCTAssertEqual(e?.message, "no agent answers at \(free.url) (connect: Connection refused)")
            XCTAssertTrue(e?.hint?.contains("node-agent status --probe") ?? false, "\(error)")
        }
    }
}
