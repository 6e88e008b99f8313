import CRIWire
import Containerd
import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import Probes

/// How the runtime's own pull is read: where it stopped (from containerd's error texts, as the
/// sandbox's containerd gave them) and how it settles the other checks.
final class RuntimePullProbeTests: XCTestCase {
    let registry = try! RegistryAddress("registry-service.openfaas.svc.cluster.local:443")

    func testTheStageOfContainerdsErrors() {
        let head = "failed to pull and unpack image \"r:443/x:1\": failed to resolve reference \"r:443/x:1\": "
        let cases: [(String, RuntimePullProbe.Stage)] = [
            (
                "failed to do request: Head \"https://r:443/v2/x/manifests/1\": dial tcp: lookup r: Temporary failure in name resolution",
                .resolve
            ),
            ("failed to do request: Head \"https://r:443/v2/x/manifests/1\": dial tcp: lookup r: no such host", .resolve),
            ("failed to do request: Head \"https://r:443/v2/x/manifests/1\": x509: certificate signed by unknown authority", .tls),
            (
                "failed to do request: Head \"https://r:443/v2/x/manifests/1\": proxyconnect tcp: dial tcp 127.0.0.99:3128: connect: connection refused",
                .proxy
            ),
            (
                "failed to do request: Head \"https://r:443/v2/x/manifests/1\": dial tcp 127.0.0.20:443: connect: connection refused",
                .connect
            ),
            ("pulling from host r:443 failed with status code [manifests absent]: 401 Unauthorized", .registry),
            ("r:443/node-agent/pull-probe:absent: not found", .registry),
            (
                "failed to do request: Head \"http://127.0.0.31:443/v2/x/manifests/1\": net/http: HTTP/1.x transport connection broken: malformed HTTP status code \"\\x8f\"",
                .connect
            ),
            ("pulling from host r:443 failed with status code [manifests absent]: 403 Forbidden", .registry),
            // containerd 1.7.24 (Debian 13), a 401 with no credentials to send.
            (
                "pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials",
                .registry
            ),
            ("something else entirely", .unknown),
        ]
        for (tail, stage) in cases { XCTAssertEqual(RuntimePullProbe.stage(of: head + tail), stage, tail) }
    }

    func answer(_ ok: Bool, _ message: String) -> (String) throws -> CRIPullAnswer {
        { _ in CRIPullAnswer(ok: ok, imageRef: ok ? "sha256:ab" : nil, code: ok ? 0 : 2, message: message) }
    }

    func testTheProbeReferencePassesOnTheRegistrysAnswerAndARealImageOnlyOnAPull() {
        let notFound = answer(false, "failed to resolve reference: r:443/node-agent/pull-probe:absent: not found")
        XCTAssertEqual(RuntimePullProbe.run(image: nil, registry: registry, runtime: "containerd", pull: notFound).outcome, .pass)
        XCTAssertEqual(RuntimePullProbe.run(image: "r:443/app:1", registry: registry, runtime: "containerd", pull: notFound).outcome, .fail)
        let x509 = answer(false, "x509: certificate signed by unknown authority")
        let failed = RuntimePullProbe.run(image: nil, registry: registry, runtime: "containerd", pull: x509)
        XCTAssertEqual(failed.outcome, .fail)
        XCTAssertEqual(failed.details["stage"], "tls")
        XCTAssertTrue(failed.reason.contains("x509: certificate signed by unknown authority"))
        XCTAssertEqual(
            RuntimePullProbe.run(image: "r:443/app:1", registry: registry, runtime: "containerd", pull: answer(true, "")).outcome, .pass)
        let unreachable = RuntimePullProbe.run(image: nil, registry: registry, runtime: "containerd") { _ in
            throw AgentError(.io, "no socket")
        }
        XCTAssertEqual(unreachable.outcome, .skip)
        XCTAssertEqual(
            RuntimePullProbe.probeReference(registry), "registry-service.openfaas.svc.cluster.local:443/node-agent/pull-probe:absent")
    }

    /// containerd passes on the registry's own words (the message of its JSON error, decoded,
    /// so a `\n` or `\u001b` in it is a real line break or ESC): the check says them on one line,
    /// so whoever answers at the registry's address cannot start a line of the agent's log or
    /// send escapes to a terminal through a reason or a detail.
    func testTheRegistrysWordsPassedOnByTheRuntimeStayOnOneLine() {
        let words =
            "unexpected status code https://r:443/v2/app/manifests/1: 500 Internal Server Error - Server message: unknown: x\n"
            + "level=info msg=reconciled ready=true\u{1b}]0;owned\u{07}\u{9b}2J"
        let check = RuntimePullProbe.run(image: "r:443/app:1", registry: registry, runtime: "containerd", pull: answer(false, words))
        XCTAssertEqual(check.outcome, .fail)
        for text in [check.reason] + Array(check.details.values) {
            XCTAssertFalse(text.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) }, text)
        }
        XCTAssertTrue(check.reason.contains("unknown: x\\nlevel=info msg=reconciled ready=true\\x1b]0;owned\\x07\\u{9b}2J"), check.reason)
    }

    /// A pull the CRI client gave up at the time it was given is a failing check that says so
    /// (the client's own words were "The transport threw an unexpected error." on containerd
    /// 1.6); it is asked again only where the node's lookup of the name was seen to overrun.
    func testAPullThatRanOutOfItsTimeSaysSoAndIsAskedAgainOnlyAfterALookupOverrun() {
        let gaveUp = answer(false, "The transport threw an unexpected error.")
        let outcome = RuntimePullProbe.pull(image: nil, registry: registry, milliseconds: 200) { reference in
            usleep(200_000)
            return try gaveUp(reference)
        }
        XCTAssertTrue(outcome.ranOut)
        let check = RuntimePullProbe.check(outcome, image: nil, runtime: "containerd")
        XCTAssertEqual(check.outcome, .fail)
        XCTAssertEqual(check.details["stage"], "timeout")
        XCTAssertTrue(
            check.reason.hasPrefix(
                "containerd had not answered the pull of registry-service.openfaas.svc.cluster.local:443/node-agent/pull-probe:absent after 0.2 s, the time the probe gives it (twice --timeout, within --deadline)"
            ), check.reason)
        // The runtime's own failure within its time is its answer, not a timeout.
        XCTAssertFalse(RuntimePullProbe.pull(image: nil, registry: registry, milliseconds: 5000, gaveUp).ranOut)
        XCTAssertFalse(RuntimePullProbe.pull(image: nil, registry: registry, gaveUp).ranOut)

        var overrun = CheckResult(name: "dns-host", outcome: .fail, reason: "in time")
        overrun.details["overrun_seconds"] = "2.0"
        let notFound = CheckResult(name: "dns-host", outcome: .fail, reason: "finds no address")
        XCTAssertTrue(RuntimePullProbe.askAgain(after: outcome, checks: [overrun]))
        XCTAssertFalse(RuntimePullProbe.askAgain(after: outcome, checks: [notFound]))
        var answered = RuntimePullProbe.pull(image: nil, registry: registry, milliseconds: 5000, answer(true, ""))
        XCTAssertFalse(RuntimePullProbe.askAgain(after: answered, checks: [overrun]))
        answered.earlier = 4.0
        let again = RuntimePullProbe.check(answered, image: nil, runtime: "containerd")
        XCTAssertEqual(again.details["first_ask_seconds"], "4.0")
        XCTAssertTrue(again.reason.contains("(asked again with the rest of --deadline: the first ask ran out of its 4.0 s"), again.reason)
    }

    /// node-agent-cri's answers as the agent reads them: the runtime's JSON answer, a refusal
    /// included, is a result; its failure to ask, or anything else on standard output, throws.
    func testTheHelpersAnswersAsTheAgentReadsThem() throws {
        let ok = try RuntimePullProbe.answer(
            status: 0, stdout: #"{"code":0,"image_ref":"sha256:ab","message":"","ok":true}"# + "\n", stderr: "", helper: "h")
        XCTAssertEqual([ok.ok ? 1 : 0, ok.code], [1, 0])
        XCTAssertEqual(ok.imageRef, "sha256:ab")
        let refused = try RuntimePullProbe.answer(
            status: 0, stdout: #"{"code":2,"image_ref":null,"message":"x509: no","ok":false}"#, stderr: "", helper: "h")
        XCTAssertFalse(refused.ok)
        XCTAssertEqual(refused.code, 2)
        XCTAssertEqual(refused.message, "x509: no")
        XCTAssertNil(refused.imageRef)
        XCTAssertThrowsError(
            try RuntimePullProbe.answer(
                status: 1, stdout: "",
                stderr: "node-agent-cri: cannot connect to the container runtime's socket /s: No such file or directory\n", helper: "h")
        ) {
            XCTAssertEqual(($0 as? AgentError)?.message, "cannot connect to the container runtime's socket /s: No such file or directory")
        }
        XCTAssertThrowsError(try RuntimePullProbe.answer(status: 0, stdout: "{\"ok\":true}", stderr: "", helper: "h")) {
            XCTAssertTrue("\($0)".contains("not its JSON answer"), "\($0)")
        }
        XCTAssertThrowsError(try RuntimePullProbe.answer(status: 139, stdout: "", stderr: "", helper: "/x/node-agent-cri")) {
            XCTAssertEqual(($0 as? AgentError)?.message, "/x/node-agent-cri ended with status 139")
        }
    }

    /// node-agent-cri's status as the agent reads it: what containerd 1.x says of its registry
    /// config, 2.x's answer without one, and anything else (no answer: the files decide).
    func testTheHelpersStatusAsTheAgentReadsIt() {
        let one = RuntimeStatusQuery.parse(
            #"{"config_path":"/etc/containerd/certs.d","golang":"go1.19.8","registry":true,"runtime_name":"containerd","runtime_version":"1.6.20~ds1"}"#
        )
        XCTAssertEqual(one, RuntimeWord(version: "1.6.20~ds1", reportsRegistry: true, configPath: "/etc/containerd/certs.d"))
        let unset = RuntimeStatusQuery.parse(#"{"registry":true,"runtime_name":"containerd","runtime_version":"v1.7.24"}"#)
        XCTAssertEqual(unset, RuntimeWord(version: "v1.7.24", reportsRegistry: true, configPath: ""))
        let two = RuntimeStatusQuery.parse(#"{"registry":false,"runtime_name":"containerd","runtime_version":"2.1.9"}"#)
        XCTAssertEqual(two, RuntimeWord(version: "2.1.9", reportsRegistry: false, configPath: nil))
        XCTAssertNil(RuntimeStatusQuery.parse(#"{"runtime_version":"2.1.9"}"#))
        XCTAssertNil(RuntimeStatusQuery.parse("node-agent-cri: no"))
    }

    /// The status line of the pull's helper (`expect`) is the answer the later ask with the same
    /// arguments gets, without a run of its own; an ask with other arguments runs its own and lets
    /// the expected answer go; an expected nil (no status line) makes the ask run the helper.
    func testTheExpectedStatusAnswersTheAskWithoutAnotherRunOfTheHelper() throws {
        let dir = try makeTemporaryDirectory("status-expected")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let helper = try fakeStatusHelper(in: dir, recordingCalls: true)
        let socket = dir + "/containerd.sock"
        let other = dir + "/other.sock"
        /// The helper's runs so far for `path`.
        func calls(_ path: String) -> Int {
            ((try? String(contentsOfFile: dir + "/calls", encoding: .utf8)) ?? "").split(separator: "\n").filter {
                $0.contains(" \(path) ")
            }.count
        }
        let fromThePull = RuntimeWord(version: "2.1.9", reportsRegistry: true, configPath: "/etc/containerd/certs.d")
        let helpers = RuntimeWord(version: "v1.7.24", reportsRegistry: true, configPath: "")

        RuntimeStatusQuery.expect(helper: helper, socket: socket, pid: nil) { fromThePull }
        XCTAssertEqual(RuntimeStatusQuery.ask(helper: helper, socket: socket, pid: nil), fromThePull)
        XCTAssertEqual(calls(socket), 0, "the ask ran the helper instead of taking the pull helper's status line")

        RuntimeStatusQuery.expect(helper: helper, socket: socket, pid: nil) { fromThePull }
        XCTAssertEqual(
            RuntimeStatusQuery.ask(helper: helper, socket: other, pid: nil), helpers)
        XCTAssertEqual(calls(other), 1, "an ask for another socket took the answer expected for this one")
        // Taken once (the other ask let it go): the next ask runs the helper itself.
        XCTAssertEqual(
            RuntimeStatusQuery.ask(helper: helper, socket: socket, pid: nil), helpers)
        XCTAssertEqual(calls(socket), 1)

        // No status line from the pull's helper: the ask runs the helper for its answer.
        RuntimeStatusQuery.expect(helper: helper, socket: socket, pid: nil) { nil }
        XCTAssertEqual(
            RuntimeStatusQuery.ask(helper: helper, socket: socket, pid: nil), helpers)
        XCTAssertEqual(calls(socket), 2)
    }
}

extension RuntimePullProbeTests {
    /// A `node-agent-cri` in `dir` that answers every status ask with containerd 1.7's word
    /// (`v1.7.24`, registry config reported, no config_path), and with `recordingCalls` appends
    /// its arguments to `dir`/calls.
    func fakeStatusHelper(in dir: String, recordingCalls: Bool) throws -> String {
        let helper = dir + "/node-agent-cri"
        let answer = #"{"registry":true,"runtime_name":"containerd","runtime_version":"v1.7.24"}"#
        let record = recordingCalls ? "echo \"$*\" >> \(dir)/calls\n" : ""
        try Data("#!/bin/sh\n\(record)printf '%s' '\(answer)'\n".utf8).write(to: URL(fileURLWithPath: helper))
        XCTAssertEqual(chmod(helper, 0o755), 0)
        return helper
    }
}
