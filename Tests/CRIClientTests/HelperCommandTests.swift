import CRIWire
import Foundation
import TestSupport
import XCTest

/// The built `node-agent-cri` as the agent runs it: its exit status (0 the runtime answered, 1 it
/// could not be asked, 2 a malformed call), its words on standard error, its answer on standard
/// output, and its help.
final class HelperCommandTests: XCTestCase {
    /// The program beside the test bundle (`swift build --build-tests` builds every product).
    var helper: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("node-agent-cri").path
    }

    func run(_ arguments: [String], input: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        guard FileManager.default.isExecutableFile(atPath: helper) else { throw XCTSkip("\(helper) is not built") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: helper)
        process.arguments = arguments
        let (stdin, stdout, stderr) = (Pipe(), Pipe(), Pipe())
        (process.standardInput, process.standardOutput, process.standardError) = (stdin, stdout, stderr)
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    func testMalformedCallsEndWithStatus2SayingWhy() throws {
        let missing = NSTemporaryDirectory() + "no-such-\(UUID().uuidString.prefix(8)).sock"
        let cases: [([String], String?, String)] = [
            ([], nil, "node-agent-cri: name the call: pull, status, version or standby"),
            (["pull", "--socket", missing, "--timeout", "1"], "{}", "Missing expected argument '--image <image>'"),
            (["status", "--socket", missing, "--timeout", "0"], nil, "--timeout takes a number of seconds over 0"),
            (["status", "--socket", missing, "--timeout", "1", "--image", "x"], nil, "Unknown option '--image'"),
            (["pull", "--socket", missing, "--image", "x", "--timeout", "1"], "", "nothing on standard input, so nothing pulled"),
            (["pull", "--socket", missing, "--image", "x", "--timeout", "1"], #"["u","p"]"#, "standard input is not a JSON object"),
        ]
        for (arguments, input, said) in cases {
            let r = try run(arguments, input: input)
            XCTAssertEqual(r.status, 2, "\(arguments): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(said), "\(arguments): \(r.stderr)")
            XCTAssertEqual(r.stdout, "", "\(arguments)")
        }
    }

    func testARuntimeThatCannotBeAskedIsStatus1AndAnAnswerIsStatus0() throws {
        let missing = NSTemporaryDirectory() + "no-such-\(UUID().uuidString.prefix(8)).sock"
        let r = try run(CRIHelperCall.pull(socket: missing, image: "x/y:1", timeoutSeconds: 1), input: "{}")
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stderr, "node-agent-cri: cannot connect to the container runtime's socket \(missing): No such file or directory\n")
        XCTAssertEqual(try run(CRIHelperCall.status(socket: missing, timeoutSeconds: 1)).status, 1)

        // A socket nobody accepts on: the runtime's answer is deadline exceeded, on standard output.
        let path = NSTemporaryDirectory() + "silent-\(UUID().uuidString.prefix(8)).sock"
        let fd = try listeningUnixSocket(at: path)
        defer {
            close(fd)
            unlink(path)
        }
        let silent = try run(
            CRIHelperCall.pull(socket: path, image: "x/y:1", timeoutSeconds: 0.5), input: #"{"username":"u","password":"p"}"#)
        XCTAssertEqual(silent.status, 0, silent.stderr)
        let answer = try CRIPullAnswer(decoding: Array(silent.stdout.utf8))
        XCTAssertEqual(
            answer,
            CRIPullAnswer(ok: false, imageRef: nil, code: 4, message: "no answer from the container runtime at \(path) within 0.5 s"))
    }

    /// A pull given --status-timeout writes the runtime's status first, on a line of its own,
    /// before it reads its input (here: why the runtime could not be asked), then pulls as before.
    func testAStatusFirstComesOnALineOfItsOwnBeforeThePull() throws {
        let missing = NSTemporaryDirectory() + "no-such-\(UUID().uuidString.prefix(8)).sock"
        let call = CRIHelperCall.pull(socket: missing, image: "x/y:1", timeoutSeconds: 1, statusSeconds: 1)
        XCTAssertEqual(Array(call.suffix(2)), ["--status-timeout", "1.0"])
        let r = try run(call, input: "{}")
        XCTAssertEqual(r.status, 1, r.stderr)
        let said = "cannot connect to the container runtime's socket \(missing): No such file or directory"
        XCTAssertEqual(r.stdout, String(decoding: CRIHelperFailure(error: said).encoded(), as: UTF8.self) + "\n")
        XCTAssertEqual(r.stderr, "node-agent-cri: \(said)\n")
        let zero = try run(["pull", "--socket", missing, "--image", "x", "--timeout", "1", "--status-timeout", "0"], input: "{}")
        XCTAssertEqual(zero.status, 2)
        XCTAssertTrue(zero.stderr.contains("--status-timeout takes a number of seconds over 0"), zero.stderr)
    }

    /// `standby`: its call on its input's first line, then as `pull` (the status line first when
    /// asked, then the credentials, then the pull); its input closed before a call, it ends at
    /// once with status 0, saying nothing and asking nothing.
    func testAStandbyHelperTakesItsCallFromItsInputOrEndsQuietlyWithoutOne() throws {
        for input in ["", "\n", " "] {
            let watch = Date()
            let idle = try run(CRIHelperCall.standby, input: input)
            XCTAssertEqual(idle.status, 0, idle.stderr)
            XCTAssertEqual(idle.stdout + idle.stderr, "")
            XCTAssertLessThan(Date().timeIntervalSince(watch), 2)
        }
        let missing = NSTemporaryDirectory() + "no-such-\(UUID().uuidString.prefix(8)).sock"
        let said = "cannot connect to the container runtime's socket \(missing): No such file or directory"
        let call = String(decoding: CRIPullCall(socket: missing, image: "x/y:1", timeoutSeconds: 1, statusSeconds: 1).line(), as: UTF8.self)
        let r = try run(CRIHelperCall.standby, input: call + #"{"username":"u","password":"p"}"#)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stdout, String(decoding: CRIHelperFailure(error: said).encoded(), as: UTF8.self) + "\n")
        XCTAssertEqual(r.stderr, "node-agent-cri: \(said)\n")
        // A call and no credentials: nothing pulled, as `pull` without input.
        let pullOnly = String(decoding: CRIPullCall(socket: missing, image: "x/y:1", timeoutSeconds: 1).line(), as: UTF8.self)
        let none = try run(CRIHelperCall.standby, input: pullOnly)
        XCTAssertEqual(none.status, 2)
        XCTAssertTrue(none.stderr.contains("nothing on standard input, so nothing pulled"), none.stderr)
        XCTAssertEqual(none.stdout, "")
        let cases = [
            ("{}\n{}", "is not a CRIPullCall object"),
            (#"{"socket":"/s","image":"i","timeout_seconds":0}"# + "\n{}", "--timeout takes a number of seconds over 0"),
            ("{\"socket\":", "standard input's first line is not a call"),
        ]
        for (input, expected) in cases {
            let bad = try run(CRIHelperCall.standby, input: input)
            XCTAssertEqual(bad.status, 2, input)
            XCTAssertTrue(bad.stderr.contains(expected), "\(input): \(bad.stderr)")
            XCTAssertEqual(bad.stdout, "", input)
        }
    }

    func testHelpIsStatus0() throws {
        for arguments in [["--help"], ["help", "pull"], ["status", "--help"]] {
            let r = try run(arguments)
            XCTAssertEqual(r.status, 0, "\(arguments): \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("USAGE: node-agent-cri"), "\(arguments): \(r.stdout)")
        }
    }
}
