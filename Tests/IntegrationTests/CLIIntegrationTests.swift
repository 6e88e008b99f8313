import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// The built `node-agent` as a user types it, with no node behind it: usage errors, `-o`, help,
/// errors naming what the user set, and the order of input checks (issue #30 item 3).
final class CLIIntegrationTests: XCTestCase {
    /// Runs the binary with only PATH (and `environment`) in its environment.
    func agent(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        var env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        env.merge(environment) { $1 }
        return try sh(SandboxNode.binary, arguments, environment: env)
    }

    /// A folder standing for a node's / with nothing in it: no kubelet config, so no cluster DNS.
    func emptyRoot() throws -> String {
        let dir = try makeTemporaryDirectory("cli-root")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func assertUsageError(
        _ run: (status: Int32, stdout: String, stderr: String), _ expected: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(run.status, 2, "exit status; stderr: \(run.stderr)", file: file, line: line)
        XCTAssertEqual(run.stderr, "node-agent: error: \(expected)\n", file: file, line: line)
        XCTAssertEqual(run.stdout, "", file: file, line: line)
    }

    func testUsageErrorsExit2WithOneLineAndAHint() throws {
        assertUsageError(try agent(["probe"]), "--registry is missing (or NODE_AGENT_REGISTRY); see 'node-agent probe --help'")
        assertUsageError(
            try agent(["bootstrap", "--registry", "r.svc.cluster.local"]),
            "--ca is missing (or NODE_AGENT_CA); see 'node-agent bootstrap --help'")
        assertUsageError(
            try agent(["probe", "--registry", "r.svc.cluster.local", "--timeout", "abc"]),
            "--timeout 'abc' is not a number of seconds; see 'node-agent probe --help'")
        assertUsageError(
            try agent(["probe", "--registry", "r.svc.cluster.local", "--bogus"]), "unknown option '--bogus'; see 'node-agent probe --help'")
        assertUsageError(
            try agent(["probe", "--registry", "r.svc.cluster.local", "--timeout"]),
            "--timeout needs a value (<seconds>); see 'node-agent probe --help'")
        assertUsageError(
            try agent(["status", "-o", "xml"]), "-o/--output 'xml' is not one of 'text', 'json' or 'yaml'; see 'node-agent status --help'")
        assertUsageError(try agent(["frobnicate"]), "unexpected argument 'frobnicate'; see 'node-agent --help'")
        // status --probe parses probe's options itself: the same one line.
        assertUsageError(
            try agent(["status", "--probe"]), "--registry is missing (or NODE_AGENT_REGISTRY); see 'node-agent probe --help'")
        // Help is not an error.
        let help = try agent(["probe", "--help"])
        XCTAssertEqual(help.status, 0, help.stderr)
        XCTAssertTrue(help.stdout.contains("USAGE: node-agent probe"))
    }

    /// Bad input that is not a usage error keeps its exit status (2), and status's 4 stays 4.
    func testTheOtherExitStatusesAreUnchanged() throws {
        let bad = try agent(["probe", "--registry", "r.svc.cluster.local", "--host-root", try emptyRoot(), "--cluster-dns", "10.96.0.x"])
        XCTAssertEqual(bad.status, 2, bad.stderr)
        let none = try agent(["status", "--endpoint", "http://127.0.0.1:9"])
        XCTAssertEqual(none.status, 4, none.stderr)
        XCTAssertTrue(none.stderr.hasPrefix("node-agent: no report: no agent answers at http://127.0.0.1:9"), none.stderr)
    }

    func testAnOptionFromTheEnvironmentOrTheConfigFileIsNamedAsTheUserSetIt() throws {
        let probe = ["probe", "--registry", "r.svc.cluster.local"]
        assertUsageError(
            try agent(probe, environment: ["NODE_AGENT_TIMEOUT": "abc"]),
            "NODE_AGENT_TIMEOUT='abc' is not a number of seconds; see 'node-agent probe --help'")
        assertUsageError(
            try agent(["status"], environment: ["NODE_AGENT_OUTPUT": "yml"]),
            "NODE_AGENT_OUTPUT='yml' is not one of 'text', 'json' or 'yaml'; see 'node-agent status --help'")
        let dir = try makeTemporaryDirectory("cli-config")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/node-agent.env"
        try "# node-agent\nNODE_AGENT_REGISTRY=r.svc.cluster.local\nNODE_AGENT_TIMEOUT=\"abc\"\n".write(
            toFile: file, atomically: true, encoding: .utf8)
        assertUsageError(
            try agent(["probe", "--config", file]),
            "\(file):3: NODE_AGENT_TIMEOUT='abc' is not a number of seconds; see 'node-agent probe --help'")
        assertUsageError(
            try agent(["probe"], environment: ["NODE_AGENT_CONFIG": file]),
            "\(file):3: NODE_AGENT_TIMEOUT='abc' is not a number of seconds; see 'node-agent probe --help'")
        // A key no command reads is a typo, named with its line and the nearest option.
        try "NODE_AGENT_REGISTRY=r.svc.cluster.local\nNODE_AGENT_TIMEOUTT=3\n".write(toFile: file, atomically: true, encoding: .utf8)
        let typo = try agent(["probe", "--config", file])
        XCTAssertEqual(typo.status, 2, typo.stderr)
        XCTAssertEqual(
            typo.stderr,
            "node-agent: error: \(file):2: NODE_AGENT_TIMEOUTT is not an option of node-agent (did you mean NODE_AGENT_TIMEOUT? Every option is in docs/CONFIGURATION.md)\n"
        )
        try "# node-agent\nNODE_AGENT_REGISTRY=r.svc.cluster.local\nNODE_AGENT_TIMEOUT=\"abc\"\n".write(
            toFile: file, atomically: true, encoding: .utf8)
        // The command line wins, and then is what is named.
        let cli = try agent(["probe", "--config", file, "--timeout", "x"])
        XCTAssertTrue(cli.stderr.contains("--timeout 'x' is not a number"), cli.stderr)
        // A value that parses but that the agent refuses: named the same way.
        let root = try emptyRoot()
        let range = try agent(probe + ["--host-root", root, "--cluster-dns", "10.96.0.10"], environment: ["NODE_AGENT_TIMEOUT": "0"])
        XCTAssertEqual(range.status, 2, range.stderr)
        XCTAssertTrue(range.stderr.hasPrefix("node-agent: error: NODE_AGENT_TIMEOUT 0.0 is out of range (0.001-120.0)"), range.stderr)
        try "NODE_AGENT_TIMEOUT=0\n".write(toFile: file, atomically: true, encoding: .utf8)
        let fromFile = try agent(probe + ["--host-root", root, "--cluster-dns", "10.96.0.10", "--config", file])
        XCTAssertEqual(fromFile.status, 2, fromFile.stderr)
        XCTAssertTrue(
            fromFile.stderr.hasPrefix("node-agent: error: NODE_AGENT_TIMEOUT (\(file):1) 0.0 is out of range (0.001-120.0)"),
            fromFile.stderr)
    }

    /// What the user named is checked before what the agent works out from the node.
    func testInputsAreCheckedInTheOrderAUserNeedsThem() throws {
        let root = try emptyRoot()
        let registry = ["--registry", "r.svc.cluster.local", "--host-root", root]
        // No kubelet config in the root: the cluster DNS is unknown too, and comes second.
        for command in ["bootstrap", "run"] {
            let r = try agent([command, "--ca", "/missing.pem"] + registry)
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertTrue(r.stderr.hasPrefix("node-agent: error: CA file /missing.pem does not exist"), "\(command): \(r.stderr)")
        }
        let auth = try agent(["probe", "--registry-auth", "/missing.json"] + registry)
        XCTAssertEqual(auth.status, 2, auth.stderr)
        XCTAssertTrue(auth.stderr.hasPrefix("node-agent: error: registry auth file /missing.json does not exist"), auth.stderr)
        let image = try agent(["probe", "--pull-image", "a b"] + registry)
        XCTAssertTrue(image.stderr.hasPrefix("node-agent: error: --pull-image 'a b' is not an image reference"), image.stderr)
        let tool = try agent(["bootstrap", "--ca", try CertFixtures.path("ca.crt"), "--tool-timeout", "0"] + registry)
        XCTAssertEqual(tool.status, 2, tool.stderr)
        XCTAssertTrue(tool.stderr.hasPrefix("node-agent: error: --tool-timeout must be 1-3600 s"), tool.stderr)
        // uninstall: a bad node condition is refused before anything on the host is looked at or removed.
        let uninstall = try agent(["uninstall", "--host-root", root, "--node-name", "n1", "--node-condition", "not-a-type"])
        XCTAssertEqual(uninstall.status, 2, uninstall.stderr)
        XCTAssertTrue(
            uninstall.stderr.hasPrefix("node-agent: error: --node-condition 'not-a-type' is not a condition type"), uninstall.stderr)
    }

    /// Every command's help: examples, `--config`, and each option's environment variable.
    func testEachCommandsHelpHasExamplesTheConfigFileAndEachVariable() throws {
        for command in ["bootstrap", "probe", "uninstall", "run", "status"] {
            let help = try agent([command, "--help"])
            XCTAssertEqual(help.status, 0, help.stderr)
            let flat = help.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
            XCTAssertTrue(help.stdout.contains("EXAMPLES:\n"), "\(command) --help has no examples")
            Self.assertExamplesAreNotWrapped(help.stdout, command)
            XCTAssertTrue(flat.contains("  node-agent \(command) ") || flat.contains(" node-agent \(command) "), command)
            let options = help.stdout.split(separator: "\n").compactMap { line -> String? in
                guard let match = line.firstMatch(of: /^  (?:-[a-z], )?--([a-z0-9-]+)/) else { return nil }
                return String(match.1)
            }
            XCTAssertTrue(options.contains("config"), "\(command) --help does not show --config")
            for option in options where option != "help" && option != "version" {
                let variable = "NODE_AGENT_" + option.uppercased().replacing("-", with: "_")
                XCTAssertTrue(
                    flat.contains("(env: \(variable))") || flat.contains("(env: \(variable),"),
                    "\(command) --help does not name \(variable) for --\(option)")
            }
        }
        let root = try agent(["--help"])
        XCTAssertTrue(root.stdout.contains("EXAMPLES:\n"), root.stdout)
        Self.assertExamplesAreNotWrapped(root.stdout, "node-agent")
        XCTAssertTrue(root.stdout.contains("NODE_AGENT_"), root.stdout)
    }

    /// Each line of the EXAMPLES section is as written (indented, within 80 columns): a line
    /// the help wrapped would be pasted as two broken commands.
    static func assertExamplesAreNotWrapped(_ help: String, _ command: String, line: UInt = #line) {
        guard let start = help.range(of: "EXAMPLES:\n") else { return }
        for text in help[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false).prefix(while: { !$0.isEmpty }) {
            XCTAssertTrue(text.hasPrefix("  ") && text.count <= 80, "\(command) --help: example line '\(text)' is wrapped", line: line)
        }
    }

    /// `version -o yaml`: the object of `version -o json`.
    func testVersionTakesYAMLToo() throws {
        let json = try agent(["version", "-o", "json"])
        let yaml = try agent(["version", "-o", "yaml"])
        XCTAssertEqual(yaml.status, 0, yaml.stderr)
        let compare = try sh(
            "/usr/bin/python3",
            ["-c", "import json, sys, yaml; sys.exit(json.loads(sys.argv[1]) != yaml.safe_load(sys.argv[2]))", json.stdout, yaml.stdout])
        XCTAssertEqual(compare.status, 0, json.stdout + yaml.stdout + compare.stderr)
        XCTAssertTrue(yaml.stdout.hasPrefix("commit: "), yaml.stdout)
    }

    /// `-o yaml` is the same object as `-o json`: Python's yaml.safe_load and json.load agree,
    /// on a report whose strings are hard for YAML (booleans, nulls, numbers, dates, colons,
    /// comments, quotes, newlines, control characters, non-ASCII).
    func testOutputYAMLLoadsToTheSameObjectAsJSON() throws {
        let dir = try makeTemporaryDirectory("cli-yaml")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hard = [
            "yes", "No", "on", "OFF", "y", "n", "null", "Null", "~", "", " ", " lead", "trail ", "true", "False", "1", "-1", "0x1F",
            "0o17", "017", "1e5", "1.5", ".5", ".inf", "-.Inf", ".NaN", "2026-12-06", "2026-12-06T10:00:00Z", "12:30:45", "1_000",
            "a: b", "a:b", "a #b", "#c", "- x", "-", "?", "? x", ":", "[x]", "{x: 1}", "*ref", "&anchor", "!tag", "%YAML", "@at",
            "`tick`", "'single'", "\"double\"", "back\\slash", "line1\nline2", "tab\there", "cr\rhere", "\u{1}\u{7f}\u{85}\u{a0}",
            "\u{2028}\u{2029}\u{feff}", "ünïcødé 🐳", "registry-service.openfaas.svc.cluster.local:443", "/etc/ssl/certs", "---",
            "...", "=", "<<", "|", ">", "a,b", "https://user@host/x?y=1#z",
        ]
        let body: [String: Any] = [
            "ready": false, "registry": "r.svc.cluster.local:443", "changes": hard, "notes": [],
            "checks": [
                [
                    "name": "tcp", "outcome": "fail", "reason": "connect: refused", "duration_seconds": 0.000012,
                    "phases": [["name": "connect", "seconds": 1.5e-7]],
                    "details": Dictionary(uniqueKeysWithValues: hard.enumerated().map { ("k\($0.offset) \($0.element)", $0.element) }),
                ]
            ],
            "certificates": [], "checked_at": "2999-01-01T00:00:00Z",
            "extra": ["big": 12_345_678_901_234, "neg": -3, "two": 2.0, "nested": [[], [:], [1, [2]], [["a": nil]]] as [Any]]
                as [String: Any],
        ]
        try JSONSerialization.data(withJSONObject: body).write(to: URL(fileURLWithPath: dir + "/status"))
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        let port = 20000 + Int.random(in: 0..<20000)
        server.arguments = ["-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, String(port)]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { server.terminate() }
        let endpoint = ["status", "--endpoint", "http://127.0.0.1:\(port)"]
        var json = try agent(endpoint + ["-o", "json"])
        for _ in 0..<50 where json.status == 4 {
            usleep(100_000)
            json = try agent(endpoint + ["-o", "json"])
        }
        XCTAssertEqual(json.status, 1, json.stderr)
        let yaml = try agent(endpoint + ["--output", "yaml"])
        XCTAssertEqual(yaml.status, 1, yaml.stderr)
        let yamlFromEnv = try agent(endpoint, environment: ["NODE_AGENT_OUTPUT": "yaml"])
        XCTAssertEqual(yamlFromEnv.stdout, yaml.stdout)
        try json.stdout.write(toFile: dir + "/out.json", atomically: true, encoding: .utf8)
        try yaml.stdout.write(toFile: dir + "/out.yaml", atomically: true, encoding: .utf8)
        let compare = try sh(
            "/usr/bin/python3",
            [
                "-c",
                """
                import json, sys, yaml
                j = json.load(open(sys.argv[1]))
                y = yaml.safe_load(open(sys.argv[2], encoding="utf-8"))
                def typed(v):
                    if isinstance(v, dict): return {k: typed(x) for k, x in v.items()}
                    if isinstance(v, list): return [typed(x) for x in v]
                    return (type(v).__name__, v)
                if typed(j) != typed(y):
                    for k in j:
                        if typed(j.get(k)) != typed(y.get(k)): print(k, repr(j.get(k)), repr(y.get(k)))
                    sys.exit(1)
                print(len(j["changes"]), len(j["checks"][0]["details"]))
                """, dir + "/out.json", dir + "/out.yaml",
            ])
        XCTAssertEqual(compare.status, 0, compare.stdout + compare.stderr + "\n" + yaml.stdout)
        XCTAssertEqual(compare.stdout, "\(hard.count) \(hard.count)\n")
        // kubectl's habit: a document a person reads, not JSON in disguise.
        XCTAssertTrue(yaml.stdout.contains("\nready: false\n"), yaml.stdout)
        XCTAssertTrue(yaml.stdout.contains("\nchecks:\n- details:\n    k0 yes: \"yes\"\n"), yaml.stdout)
        XCTAssertTrue(yaml.stdout.contains("\n  name: tcp\n  outcome: fail\n"), yaml.stdout)
    }
}
