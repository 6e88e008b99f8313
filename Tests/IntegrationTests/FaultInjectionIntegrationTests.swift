import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// SIGKILL at random moments of `bootstrap` and `uninstall` on a sandbox node, round after round
/// (NODE_AGENT_FAULT_ROUNDS, default 150: 300 kills). After each kill every file of the host root
/// is byte for byte what it was before the run or what the run makes of it (never half-written),
/// every folder the agent made is in its ledger, and the next full run reaches exactly the state
/// an unbroken run reaches, leaving no temporary file behind.
final class FaultInjectionIntegrationTests: XCTestCase {
    var node: SandboxNode!

    override func setUpWithError() throws { node = try SandboxNode() }
    override func tearDown() { node?.down() }

    var bootstrapArgs: [String] { node.bootstrapArguments(extra: ["--trust-refresh", "native", "--timeout", "2"]) }
    var uninstallArgs: [String] { ["uninstall", "--host-root", node.hostRoot, "--trust-refresh", "native"] }

    /// Starts the agent in the node and sends SIGKILL after `delay` seconds. True when it was
    /// killed, false when it had finished by then.
    func runKilled(_ args: [String], after delay: Double) throws -> Bool {
        var env = ProcessInfo.processInfo.environment
        env["NODE_AGENT_SANDBOX"] = node.folder
        let argv = [node.script, "exec", SandboxNode.binary] + args
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, node.script, &actions, nil, cArgs, cEnv) == 0 else { throw AgentError(.io, "posix_spawn failed") }
        usleep(useconds_t(delay * 1e6))
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { return false }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
        return (status & 0x7f) == SIGKILL
    }

    /// Paths whose content is neither `a`'s nor `b`'s (temporary files aside), and the
    /// temporary files, in `tree`.
    func check(_ tree: FileTree, between a: FileTree, and b: FileTree) -> (violations: [String], temporaries: [String]) {
        var violations: [String] = []
        var temporaries: [String] = []
        let ledger = "var/lib/node-agent/created-directories"
        let pending = "var/lib/node-agent/trust-refresh-pending"
        for path in Set(tree.entries.keys).union(a.entries.keys).union(b.entries.keys).sorted() {
            if path.contains(".node-agent-tmp-") {
                temporaries.append(path)
                continue
            }
            // The ledger and the refresh-pending mark are written as the run goes (checked below).
            if path == ledger || path == pending { continue }
            let value = tree.entries[path]
            if value != a.entries[path] && value != b.entries[path] { violations.append("\(path): neither before nor after") }
        }
        // Every folder the agent made that exists is in its ledger (the ledger's own folder aside).
        let recorded = Set(
            (tree.entries[ledger].flatMap { Data(base64Encoded: String($0.dropFirst(5))) }
                .map { String(decoding: $0, as: UTF8.self) } ?? "").split(separator: "\n").map { String($0.dropFirst()) })
        for (path, value) in tree.entries
        where value == "dir" && a.entries[path] == nil && b.entries[path] != nil
            && !path.hasPrefix("var/lib/node-agent") && !recorded.contains(path) && !recorded.isEmpty
        {
            violations.append("\(path): a folder of the agent's missing from its ledger")
        }
        if tree.entries.keys.contains(where: {
            $0.hasPrefix("var/lib/node-agent/") && $0 != ledger && $0 != pending && !$0.contains(".node-agent-tmp-")
        }) {
            violations.append("unexpected files in var/lib/node-agent")
        }
        return (violations, temporaries)
    }

    func elapsed(_ body: () throws -> Void) rethrows -> Double {
        let start = Date()
        try body()
        return Date().timeIntervalSince(start)
    }

    func testSIGKILLAtRandomMomentsLeavesEveryFileWholeAndTheNextRunConverges() throws {
        let rounds = Int(ProcessInfo.processInfo.environment["NODE_AGENT_FAULT_ROUNDS"] ?? "") ?? 150
        let before = node.snapshot()
        var bootstrapTime = 0.0
        var uninstallTime = 0.0
        bootstrapTime = try elapsed {
            let run = try node.agent(bootstrapArgs)
            XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        }
        let after = node.snapshot()
        XCTAssertNotEqual(after, before)
        // The after state parses: every certificate file and bundle, every hosts.toml.
        for (path, value) in after.entries where value != before.entries[path] && value.hasPrefix("file ") && !path.hasPrefix("var/") {
            let full =
                path.hasPrefix("usr/local/share/ca-certificates/")
                ? node.folder + "/local-ca/" + path.dropFirst(32) : node.hostRoot + "/" + path
            if path.hasSuffix(".crt") || path.hasSuffix(".pem") {
                XCTAssertEqual(try sh("/usr/bin/openssl", ["storeutl", "-noout", "-certs", full]).status, 0, path)
            } else if path.hasSuffix(".toml") {
                XCTAssertEqual(
                    try sh("/usr/bin/python3", ["-c", "import sys,tomllib; tomllib.load(open(sys.argv[1],'rb'))", full]).status, 0, path)
            }
        }
        uninstallTime = try elapsed { XCTAssertEqual(try node.agent(uninstallArgs).status, 0) }
        XCTAssertEqual(node.snapshot().difference(from: before), [], "uninstall did not restore the node")

        struct Tally { var killed = 0, between = 0, temporaries = 0, converge = 0.0 }
        var tallies = [Tally(), Tally()]
        /// The command killed at a random moment of its usual duration; the state checked against
        /// `from` and `to`; then the whole command, which must reach `to` exactly.
        func killAndConverge(_ args: [String], duration: Double, from: FileTree, to: FileTree, tally: inout Tally, round: Int) throws {
            if try runKilled(args, after: Double.random(in: 0...(duration * 1.1))) { tally.killed += 1 }
            let state = node.snapshot()
            let result = check(state, between: from, and: to)
            XCTAssertEqual(result.violations, [], "round \(round), \(args[0]) killed")
            if state != from && state != to { tally.between += 1 }
            tally.temporaries += result.temporaries.count
            tally.converge += try elapsed {
                let run = try node.agent(args)
                XCTAssertEqual(run.status, 0, "round \(round): the next \(args[0]) did not converge: \(run.stdout)\(run.stderr)")
            }
            XCTAssertEqual(node.snapshot().difference(from: to), [], "round \(round): \(args[0]) after a kill")
        }
        for round in 0..<rounds {
            try killAndConverge(bootstrapArgs, duration: bootstrapTime, from: before, to: after, tally: &tallies[0], round: round)
            try killAndConverge(uninstallArgs, duration: uninstallTime, from: after, to: before, tally: &tallies[1], round: round)
            XCTAssertNotEqual(try node.exec(["ip", "link", "show", "nodeagent0"]).status, 0, "round \(round): the link outlived uninstall")
            if testRun?.failureCount ?? 0 > 0 { break }
        }
        let (b, u) = (tallies[0], tallies[1])
        print(
            """
            fault injection: \(rounds) rounds; bootstrap (whole run \(Int(bootstrapTime * 1000)) ms) killed \(b.killed) times, \
            \(b.between) left between before and after, \(b.temporaries) temporary files seen; uninstall (\(Int(uninstallTime * 1000)) ms) \
            killed \(u.killed) times, \(u.between) between, \(u.temporaries) temporary files seen; \
            every file whole, every next run converged (mean \(Int(b.converge / Double(rounds) * 1000)) ms / \
            \(Int(u.converge / Double(rounds) * 1000)) ms)
            """)
        XCTAssertGreaterThan(b.between + u.between, 0, "no kill landed between the first change and the last: the test proved nothing")
    }

    /// Files under `dir` as the node sees them (its own mounts included): path -> sha256 or link target.
    func nodeFiles(_ dir: String) throws -> [String: String] {
        let out = try node.exec([
            "sh", "-c", "cd \"$1\" && find . -type f -exec sha256sum {} + ; find . -type l -printf '%l %p\\n'", "sh", dir,
        ]).stdout
        var files: [String: String] = [:]
        for line in out.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2 { files[parts[1].trimmingCharacters(in: .whitespaces)] = String(parts[0]) }
        }
        return files
    }

    /// A read-only /etc/ssl/certs while the bundle is rebuilt: a clear error naming the path, the
    /// bundle as it was, and the run after the fault rebuilds it (the CA file itself had been
    /// written, so only the refresh-pending mark says the bundle is behind).
    func testAReadOnlyTrustFolderGivesAClearErrorAndTheNextRunConverges() throws {
        let certs = node.hostRoot + "/etc/ssl/certs"
        let bundleBefore = try nodeFiles(certs)["./ca-certificates.crt"]
        XCTAssertEqual(try node.exec(["sh", "-c", "mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\"", "sh", certs]).status, 0)
        let run = try node.agent(bootstrapArgs)
        XCTAssertEqual(run.status, 3, run.stdout + run.stderr)
        XCTAssertTrue(run.stderr.contains("/etc/ssl/certs/") && run.stderr.contains(": Read-only file system"), run.stderr)
        XCTAssertTrue(run.stderr.contains("the host file system is read-only"), run.stderr)
        XCTAssertEqual(try nodeFiles(certs)["./ca-certificates.crt"], bundleBefore, "the bundle changed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: node.hostRoot + "/var/lib/node-agent/trust-refresh-pending"))
        XCTAssertEqual(try node.exec(["umount", certs]).status, 0)

        let next = try node.agent(bootstrapArgs + ["--output", "json"])
        XCTAssertEqual(next.status, 0, next.stdout + next.stderr)
        let report = try JSONReport.decode(next.stdout)
        XCTAssertTrue(
            report.notes.contains { $0.hasPrefix("an earlier run was stopped before the trust bundle was rebuilt") },
            report.notes.joined(separator: "\n"))
        XCTAssertNotEqual(try nodeFiles(certs)["./ca-certificates.crt"], bundleBefore)
        XCTAssertFalse(FileManager.default.fileExists(atPath: node.hostRoot + "/var/lib/node-agent/trust-refresh-pending"))
        XCTAssertEqual(try JSONReport.decode(try node.agent(bootstrapArgs + ["--output", "json"]).stdout).changes, [], "not converged")
    }

    /// A full disk under /etc/containerd: a clear error, no file half-written or left behind
    /// there, and once there is room the next run writes what was missing.
    func testAFullDiskGivesAClearErrorLeavesNoPartialFileAndTheNextRunConverges() throws {
        let containerd = node.hostRoot + "/etc/containerd"
        // The node's config.toml (certs.d enabled) is copied into the small file system first:
        // without it containerd ignores certs.d and the agent writes nothing there.
        let fill = try node.exec([
            "sh", "-c",
            "c=$(cat \"$1/config.toml\") && mount -t tmpfs -o size=64k tmpfs \"$1\" && printf '%s\\n' \"$c\" > \"$1/config.toml\" && (dd if=/dev/zero of=\"$1/filler\" bs=4k 2>/dev/null; true)",
            "sh", containerd,
        ])
        XCTAssertEqual(fill.status, 0, fill.stderr)
        let run = try node.agent(bootstrapArgs)
        XCTAssertEqual(run.status, 3, run.stdout + run.stderr)
        XCTAssertTrue(run.stderr.contains("No space left on device"), run.stderr)
        XCTAssertTrue(run.stderr.contains("free space on the node's disk"), run.stderr)
        XCTAssertEqual(try nodeFiles(containerd).keys.sorted(), ["./config.toml", "./filler"], "a partial or temporary file was left")
        XCTAssertEqual(try node.exec(["rm", containerd + "/filler"]).status, 0)

        let next = try node.agent(bootstrapArgs)
        XCTAssertEqual(next.status, 0, next.stdout + next.stderr)
        let written = try nodeFiles(containerd)
        XCTAssertNotNil(written["./certs.d/registry-service.openfaas.svc.cluster.local:443/hosts.toml"], "\(written.keys)")
        XCTAssertEqual(try node.exec(["umount", containerd]).status, 0)
    }

    /// A hook of update-ca-certificates that hangs: the run stops it (and what it started) at
    /// --tool-timeout and fails naming it, instead of hanging; without the hook the next run
    /// rebuilds the bundle it did not finish.
    func testAHungTrustToolIsStoppedNamedAndTheNextRunConverges() throws {
        let hook = node.hostRoot + "/etc/ca-certificates/update.d/zz-node-agent-test-hang"
        try "#!/bin/sh\necho hook hangs >&2\nexec sleep 600\n".write(toFile: hook, atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(hook, 0o755), 0)
        let args = node.bootstrapArguments(extra: ["--trust-refresh", "tool", "--timeout", "2", "--tool-timeout", "2"])
        let start = Date()
        let run = try node.agent(args)
        XCTAssertLessThan(Date().timeIntervalSince(start), 30)
        XCTAssertEqual(run.status, 3, run.stdout + run.stderr)
        XCTAssertTrue(run.stderr.contains("did not finish within 2 s and was stopped"), run.stderr)
        XCTAssertTrue(run.stderr.contains("/etc/ca-certificates/update.d"), run.stderr)
        // Killed with its group, the hook's sleep exits once it is scheduled: on a busy machine a
        // moment after the agent has reaped the tool itself. Left running, it would be there for 600 s.
        var left = try node.exec(["sh", "-c", "pgrep -f 'slee[p] 600' || true"])
        for _ in 0..<20 where !left.stdout.isEmpty {
            usleep(100_000)
            left = try node.exec(["sh", "-c", "pgrep -f 'slee[p] 600' || true"])
        }
        XCTAssertEqual(left.stdout, "", "the hung hook's process was left running")
        XCTAssertTrue(FileManager.default.fileExists(atPath: node.hostRoot + "/var/lib/node-agent/trust-refresh-pending"))
        XCTAssertEqual(unlink(hook), 0)

        // The default tool timeout: the rebuild takes 1-3 s, more on a busy machine.
        let next = try node.agent(node.bootstrapArguments(extra: ["--trust-refresh", "tool", "--output", "json"]))
        XCTAssertEqual(next.status, 0, next.stdout + next.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: node.hostRoot + "/var/lib/node-agent/trust-refresh-pending"))
        let bad = try node.agent(node.bootstrapArguments(extra: ["--tool-timeout", "0"]))
        XCTAssertEqual(bad.status, 2, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--tool-timeout must be 1-3600 s"), bad.stderr)
    }
}
