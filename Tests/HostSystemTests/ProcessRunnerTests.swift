import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// Host tools run with a time limit: a hung one is killed with what it started, and reported;
/// one that exits while something it left behind holds its output gives its own result.
final class ProcessRunnerTests: XCTestCase {
    func testAHungToolIsKilledWithItsChildrenAndNamed() throws {
        let dir = try makeTemporaryDirectory("runner")
        let start = Date()
        XCTAssertThrowsError(
            try ProcessRunner(timeoutSeconds: 1).run("/bin/sh", ["-c", "sleep 100 & echo $! > \(dir)/child; echo working >&2; wait"])
        ) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("sh did not finish within 1 s"), text)
            XCTAssertTrue(text.contains("working"), "what it said is in the error: \(text)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
        let child = try XCTUnwrap(
            Int32(try String(contentsOfFile: dir + "/child", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        // Killed: gone, or a zombie until this machine's init reaps it.
        let deadline = Date().addingTimeInterval(5)
        while Self.alive(child) && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(Self.alive(child), "the hung tool's child \(child) still runs")
    }

    /// A secret goes to a program on its standard input, never its arguments; a program that
    /// does not read it still runs and gives its result; input over a pipe's worth is refused.
    func testInputReachesStandardInputAndIsBounded() throws {
        let secret = Array(#"{"username":"u","password":"p w"}"#.utf8)
        let read = try ProcessRunner().run("/bin/cat", [], input: secret)
        XCTAssertEqual(read.stdout, String(decoding: secret, as: UTF8.self))
        // A program that exits without reading: its result, and no SIGPIPE for the caller, whose
        // SIGPIPE is at its default here (the write comes after the exit, whatever the timing).
        let previous = signal(SIGPIPE, SIG_DFL)
        defer { signal(SIGPIPE, previous) }
        for _ in 0..<20 {
            let ignored = try ProcessRunner().run(
                "/bin/sh", ["-c", "exec 0<&-; exit 3"], input: [UInt8](repeating: 65, count: ProcessRunner.inputLimit))
            XCTAssertEqual(ignored.status, 3)
        }
        XCTAssertEqual(
            try ProcessRunner().run("/bin/sh", ["-c", "wc -c"], input: nil).stdout.trimmingCharacters(in: .whitespacesAndNewlines), "0")
        XCTAssertThrowsError(try ProcessRunner().run("/bin/cat", [], input: [UInt8](repeating: 65, count: ProcessRunner.inputLimit + 1)))
    }

    /// `run` blocks SIGTERM and SIGINT (it takes them between reconciles); a tool must not inherit
    /// that, nor an ignored signal, or it would outlive a stop.
    /// A program started ahead (the runtime-pull's CRI client) runs while the caller works and
    /// takes its input later; one never finished is stopped, with what it started, not left behind.
    func testAProgramStartedAheadTakesItsInputLaterOrIsStoppedWhenDropped() throws {
        let runner = ProcessRunner(timeoutSeconds: 5)
        let program = try runner.start("/bin/sh", ["-c", "read line; echo got:$line"], withInput: true)
        usleep(50_000)
        let result = try program.finish(input: Array("go\n".utf8))
        XCTAssertEqual(result.stdout, "got:go\n")
        XCTAssertEqual(result.status, 0)

        let dir = try makeTemporaryDirectory("started")
        var dropped: StartedProgram? = try runner.start(
            "/bin/sh", ["-c", "sleep 100 & echo $! > \(dir)/child; echo $$ > \(dir)/shell; read line; echo pulled > \(dir)/ran"],
            withInput: true)
        var pids: [pid_t] = []
        for _ in 0..<100 where pids.count < 2 {
            usleep(20_000)
            pids = ["shell", "child"].compactMap {
                (try? String(contentsOfFile: "\(dir)/\($0)", encoding: .utf8)).flatMap {
                    pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines))
                }
            }
        }
        XCTAssertEqual(pids.count, 2)
        XCTAssertNotNil(dropped)
        dropped = nil
        // Gone, or a zombie: killed, and (the shell's child) waiting for init to reap it.
        func running(_ pid: pid_t) -> Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else {
                return false
            }
            return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
        }
        // SIGKILL is delivered asynchronously to the shell's child: allow it a moment.
        for pid in pids {
            for _ in 0..<100 where running(pid) { usleep(10_000) }
            XCTAssertFalse(running(pid), "process \(pid) outlived its dropped handle")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/ran"), "a dropped program must not go on with its work")
    }

    func testAToolStartsWithNoSignalBlockedOrIgnored() throws {
        var held = sigset_t()
        var before = sigset_t()
        sigemptyset(&held)
        sigaddset(&held, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &held, &before)
        let previous = signal(SIGINT, SIG_IGN)
        defer {
            pthread_sigmask(SIG_SETMASK, &before, nil)
            signal(SIGINT, previous)
        }
        // The agent's own state, as the tool would inherit it without the spawn attributes.
        let own = try String(contentsOfFile: "/proc/thread-self/status", encoding: .utf8)
        XCTAssertNotEqual(mask(own, "SigBlk") & 1 << (SIGTERM - 1), 0, own)
        let r = try ProcessRunner().run("/bin/grep", ["-E", "^Sig(Blk|Ign)", "/proc/self/status"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(mask(r.stdout, "SigBlk"), 0, r.stdout)
        XCTAssertEqual(mask(r.stdout, "SigIgn") & (1 << (SIGINT - 1) | 1 << (SIGTERM - 1)), 0, r.stdout)
    }

    func mask(_ status: String, _ field: String) -> UInt64 {
        let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
        return UInt64(line.split(separator: "\t").last ?? "", radix: 16) ?? .max
    }

    func testAToolThatExitsLeavingSomethingOnItsOutputGivesItsResult() throws {
        let start = Date()
        let r = try ProcessRunner(timeoutSeconds: 1).run("/bin/sh", ["-c", "echo done; sleep 3 & exit 7"])
        XCTAssertEqual(r.status, 7)
        XCTAssertEqual(r.stdout, "done\n")
        XCTAssertLessThan(Date().timeIntervalSince(start), 2.5, "waited for what the tool left behind")
    }

    func testAToolThatFinishesIsNotWaitedFor() throws {
        let start = Date()
        let r = try ProcessRunner(timeoutSeconds: 30).run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"])
        XCTAssertEqual(r.status, 3)
        XCTAssertEqual(r.stdout, "out\n")
        XCTAssertEqual(r.stderr, "err\n")
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
    }

    private static func alive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(close, offsetBy: 2)] != "Z"
    }
}
