import CRIWire
import Containerd
import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import Probes

/// One run of `node-agent-cri` for the runtime's status and its pull (`--status-timeout`): the
/// status line read while the program waits for its go, the pull's answer after it; and each way
/// that program can fail said as before (it died, it said it could not ask, it wrote something
/// else, it was late).
final class HelperPullTests: XCTestCase {
    var dir = ""
    let statusLine = #"{"registry":true,"runtime_name":"containerd","runtime_version":"v1.7.24"}"#
    let pullAnswer = #"{"code":5,"image_ref":null,"message":"r/p:absent: not found","ok":false}"#
    var socket: String { dir + "/containerd.sock" }

    override func setUpWithError() throws { dir = try makeTemporaryDirectory("helper-pull") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// A `node-agent-cri` that records its arguments, runs `first` when asked the status first,
    /// then reads its input to its end (kept in `dir`/input) and answers the pull.
    func helper(first: String) throws -> String {
        let path = dir + "/node-agent-cri"
        let script = """
            #!/bin/sh
            echo "$*" >> \(dir)/calls
            case "$*" in
            standby)
                IFS= read -r call || { echo ended >> \(dir)/calls; exit 0; }
                printf '%s\\n' "$call" > \(dir)/call
                case "$call" in *status_timeout*) \(first) ;; esac ;;
            *--status-timeout*) \(first) ;;
            esac
            cat > \(dir)/input
            printf '%s\\n' '\(pullAnswer)'

            """
        try Data(script.utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(chmod(path, 0o755), 0)
        return path
    }

    var calls: [String] {
        ((try? String(contentsOfFile: dir + "/calls", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func prepared(_ helper: String, statusSeconds: Double = 1, milliseconds: Int32 = 2000) -> RuntimePullProbe.HelperPull {
        let pull = RuntimePullProbe.HelperPull(helper: helper, socket: socket, credentials: .init(username: "u", password: "p", key: "r"))
        pull.prepare(reference: "r/p:absent", milliseconds: milliseconds, statusSeconds: statusSeconds)
        return pull
    }

    func testTheStatusAndThePullComeFromOneRunOfTheHelper() throws {
        let helper = try helper(first: "printf '%s\\n' '\(statusLine)'")
        let pull = prepared(helper)
        RuntimeStatusQuery.expect(helper: helper, socket: socket, pid: nil) { pull.status() }
        XCTAssertEqual(
            RuntimeStatusQuery.ask(helper: helper, socket: socket, pid: nil),
            RuntimeWord(version: "v1.7.24", reportsRegistry: true, configPath: ""))
        let answer = try pull.pull("r/p:absent", 2000)
        XCTAssertEqual(answer.code, 5)
        XCTAssertEqual(answer.message, "r/p:absent: not found")
        XCTAssertEqual(calls.count, 1, "\(calls)")
        XCTAssertTrue(calls.first?.hasSuffix("--status-timeout 1.0") == true, "\(calls)")
        XCTAssertEqual(try String(contentsOfFile: dir + "/input", encoding: .utf8), #"{"password":"p","username":"u"}"#)
    }

    /// Nobody asked for the status: the pull reads past it to its own answer.
    func testAPullWhoseStatusNobodyReadTakesTheAnswerAfterIt() throws {
        let pull = prepared(try helper(first: "printf '%s\\n' '\(statusLine)'"))
        XCTAssertEqual(try pull.pull("r/p:absent", 2000).code, 5)
    }

    /// The helper said it could not ask the runtime, or wrote something else: no word (the ask
    /// runs the helper again, as after a failed status run), and the pull still answers.
    func testAStatusLineThatIsNotTheRuntimesWordIsNone() throws {
        for line in [#"{"error":"cannot connect to the socket /s: No such file or directory"}"#, "hello"] {
            try? FileManager.default.removeItem(atPath: dir + "/calls")
            let pull = prepared(try helper(first: "printf '%s\\n' '\(line)'"))
            XCTAssertNil(pull.status(), line)
            XCTAssertEqual(try pull.pull("r/p:absent", 2000).code, 5, line)
            XCTAssertEqual(calls.count, 1)
        }
    }

    /// The helper died before its status: no word, and the pull says the helper's own words.
    func testAHelperThatDiesSaysWhy() throws {
        let pull = prepared(try helper(first: "echo 'node-agent-cri: cannot connect to the socket' >&2; exit 1"))
        XCTAssertNil(pull.status())
        XCTAssertThrowsError(try pull.pull("r/p:absent", 2000)) {
            XCTAssertEqual(($0 as? AgentError)?.message, "cannot connect to the socket")
        }
    }

    /// A status later than its time (the seconds and 2 more): none, and the pull's answer is the
    /// line after it when it comes.
    func testALateStatusIsNoneAndThePullTakesItsOwnLine() throws {
        let pull = prepared(try helper(first: "sleep 2.5; printf '%s\\n' '\(statusLine)'"), statusSeconds: 0.1)
        let watch = Date()
        XCTAssertNil(pull.status())
        XCTAssertLessThan(Date().timeIntervalSince(watch), 2.4)
        XCTAssertEqual(try pull.pull("r/p:absent", 2000).code, 5)
    }

    /// A helper that never answers is stopped at the pull's limit (its time and 5 s), as before.
    func testAHelperThatHangsIsStopped() throws {
        let pull = prepared(try helper(first: "exec sleep 60"), statusSeconds: 0.1, milliseconds: 100)
        XCTAssertNil(pull.status())
        let watch = Date()
        XCTAssertThrowsError(try pull.pull("r/p:absent", 100)) {
            XCTAssertTrue("\($0)".contains("did not finish within 5 s"), "\($0)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(watch), 8)
    }

    /// The helper started ahead (`HelperStandby`, `node-agent-cri standby`) is the one the pull
    /// takes: its call comes on its input's first line, then its status line and its pull, one run.
    func testThePullTakesTheHelperStartedAheadAndGivesItItsCall() throws {
        let helper = try helper(first: "printf '%s\\n' '\(statusLine)'")
        HelperStandby.start(helper: helper)
        let pull = prepared(helper)
        XCTAssertNil(HelperStandby.release(), "taken: nothing left to release")
        XCTAssertEqual(pull.status(), RuntimeWord(version: "v1.7.24", reportsRegistry: true, configPath: ""))
        XCTAssertEqual(try pull.pull("r/p:absent", 2000).code, 5)
        XCTAssertEqual(calls, ["standby"])
        let call = try String(contentsOfFile: dir + "/call", encoding: .utf8)
        XCTAssertEqual(
            try CRIPullCall(decoding: Array(call.dropLast().utf8)),
            CRIPullCall(socket: socket, image: "r/p:absent", timeoutSeconds: 2, statusSeconds: 1))
        XCTAssertEqual(try String(contentsOfFile: dir + "/input", encoding: .utf8), #"{"password":"p","username":"u"}"#)
    }

    /// One started ahead for another helper is not taken (the pull starts its own), and one
    /// nobody took ends at its release: its input closed before a call, it asks nothing.
    func testAHelperStartedAheadAndNotTakenEndsAtItsReleaseWithoutACall() throws {
        let helper = try helper(first: "printf '%s\\n' '\(statusLine)'")
        HelperStandby.start(helper: helper)
        let other = dir + "/other-node-agent-cri"
        XCTAssertEqual(link(helper, other), 0)
        let pull = prepared(other)
        XCTAssertEqual(try pull.pull("r/p:absent", 2000).code, 5)
        let watch = Date()
        let ended = HelperStandby.release()
        XCTAssertLessThan(Date().timeIntervalSince(watch), 2)
        XCTAssertEqual(ended?.status, 0)
        XCTAssertEqual(ended?.stdout, "")
        XCTAssertEqual(calls.filter { $0 != "standby" && $0 != "ended" }.count, 1, "the other helper's pull: \(calls)")
        XCTAssertTrue(calls.contains("ended"), "\(calls)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/call"))
        XCTAssertNil(HelperStandby.release(), "released once")
    }

    /// A helper started ahead that ended before its call: the pull starts one of its own.
    func testAHelperStartedAheadThatEndedIsReplaced() throws {
        let helper = try helper(first: "printf '%s\\n' '\(statusLine)'")
        let script = try String(contentsOfFile: helper, encoding: .utf8)
        let dying = script.replacingOccurrences(of: "\nstandby)\n", with: "\nstandby)\n    [ -e \(dir)/die ] && exit 0\n")
        XCTAssertNotEqual(dying, script)
        try dying.write(toFile: helper, atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(helper, 0o755), 0)
        FileManager.default.createFile(atPath: dir + "/die", contents: nil)
        HelperStandby.start(helper: helper)
        Thread.sleep(forTimeInterval: 0.5)
        try FileManager.default.removeItem(atPath: dir + "/die")
        let pull = prepared(helper)
        XCTAssertEqual(pull.status(), RuntimeWord(version: "v1.7.24", reportsRegistry: true, configPath: ""))
        XCTAssertEqual(try pull.pull("r/p:absent", 2000).code, 5)
        XCTAssertEqual(calls.count, 2, "\(calls)")
        XCTAssertEqual(calls.first, "standby")
        XCTAssertTrue(calls.last?.hasPrefix("pull ") == true, "\(calls)")
        XCTAssertNil(HelperStandby.release())
    }
}
