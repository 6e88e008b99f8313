import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import Containerd

/// The agent's TOML reader against Python's `tomllib` (a TOML 1.0 reader that refuses what the
/// specification refuses): the same documents accepted, with the same keys and values (floats and
/// date-times compared by kind), and the same ones refused. containerd's go-toml refuses them too:
/// a hosts.toml it cannot decode is replaced by Docker's layout, so a lenient reader would model
/// the wrong folder contents.
final class TOMLDocumentTests: XCTestCase {
    static let valid = [
        "", "# only a comment\n", "a = 1", "a = 1\r\nb = 2\r\n", "a = \"x\" # trailing\n",
        "server = \"https://r:443\"\nca = [\"a.crt\", 'b.crt']\n[host.\"https://m:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n[host.\"https://m:5000\".header]\n  x-a = \"b\"\n",
        "a.b.c = 1\na.b.d = 2\n", "\"quoted key\" = true\n'lit key' = false\n", "a = \"\\u00e9\\U0001F600\\t\\\"\\\\\"\n",
        "a = '''\nline\n'''\n", "a = \"\"\"\none \\\n   two\"\"\"\n", "a = \"\"\"x\"\"\"\"\"\n", "a = [\n  1,\n  2, # c\n]\n",
        "a = [[1, 2], [\"x\"]]\n", "a = { b = 1, c.d = \"e\" }\n", "a = {}\n",
        "a = 0x1f\nb = 0o17\nc = 0b101\nd = -17\ne = +3\nf = 1_000\n",
        "a = 1.5\nb = -2e10\nc = 6.626e-34\nd = inf\ne = nan\nf = 1_0.5\n",
        "a = 1979-05-27T07:32:00Z\nb = 1979-05-27\nc = 07:32:00\nd = 1979-05-27 07:32:00.999\n",
        "[a]\nx = 1\n[b]\ny = 2\n[a.c]\nz = 3\n", "[a.b]\nx = 1\n[a]\ny = 2\n", "[[t]]\nx = 1\n[[t]]\nx = 2\n[t.s]\ny = 3\n",
        "[ a . \"b\" ]\nx = 1\n", "a = \"x#y\"\n", "k-_9 = 1\n",
    ]
    static let invalid = [
        "a =", "a = 1 2\n", "= 1\n", "a = 1\na = 2\n", "[a]\n[a]\n", "a = \"x\n", "a = \"\\q\"\n", "a = 'x\n", "a = [1, 2\n",
        "a = { b = 1, }\n", "a = { b = 1\n", "a = 01\n", "a = 1__0\n", "a = _1\n", "a = 1.\n", "a = .5\n", "a = truee\n", "a = TRUE\n",
        "[a\n", "[[a]\n", "a.b = 1\n[a]\nc = 2\n", "a = 1\n[a]\n", "a = {b = 1}\n[a]\n", "a = {b = 1}\na.c = 2\n", "[t]\n[[t]]\n",
        "a = \"\u{1}\"\n", "a b = 1\n", "a = 1 # ok\nb\n", "server = \n", "a = [1,,2]\n", "a = \"\"\"x\n",
    ]

    func canonical(_ v: TOMLValue) -> JSONValue {
        switch v {
        case .string(let s): return .string(s)
        case .integer(let i): return .int(i)
        case .bool(let b): return .bool(b)
        case .float: return .string("<float>")
        case .datetime: return .string("<datetime>")
        case .array(let a): return .array(a.map(canonical))
        case .table(let t): return .object(Dictionary(uniqueKeysWithValues: t.keys.map { ($0, canonical(t[$0]!)) }))
        }
    }

    func testAcceptsAndReadsWhatTomllibDoes() throws {
        let corpus = packageRoot.appendingPathComponent("Tests/Fixtures/fuzz-corpus/hosts-toml").path
        let seeds = try FileManager.default.contentsOfDirectory(atPath: corpus).sorted().map {
            try String(contentsOfFile: corpus + "/" + $0, encoding: .utf8)
        }
        let cases = Self.valid + seeds + Self.invalid
        let script = """
            import json, sys, tomllib, datetime
            def conv(v):
                if isinstance(v, dict): return {k: conv(x) for k, x in v.items()}
                if isinstance(v, list): return [conv(x) for x in v]
                if isinstance(v, bool): return v
                if isinstance(v, int): return v
                if isinstance(v, float): return "<float>"
                if isinstance(v, (datetime.datetime, datetime.date, datetime.time)): return "<datetime>"
                return v
            out = []
            for text in json.load(sys.stdin):
                try: out.append(conv(tomllib.loads(text)))
                except tomllib.TOMLDecodeError: out.append(None)
            print(json.dumps(out))
            """
        let r = try ProcessRunner(environment: ProcessInfo.processInfo.environment).run(
            "/usr/bin/env", ["python3", "-c", script], input: JSONValue.array(cases.map { .string($0) }).encoded())
        XCTAssertEqual(r.status, 0, r.stderr)
        let expected = try XCTUnwrap(JSONValue.parse(Array(r.stdout.utf8)).array)
        XCTAssertEqual(expected.count, cases.count)
        for (text, want) in zip(cases, expected) {
            let got: JSONValue = (try? TOMLDocument(parsing: text)).map { canonical(.table($0.root)) } ?? .null
            XCTAssertEqual(got, want, "\(text.debugDescription)")
        }
        // Every valid case above is valid for tomllib too, and every invalid one invalid: the
        // lists say what they are.
        XCTAssertEqual(expected.prefix(Self.valid.count + seeds.count).filter { $0 == .null }.count, 0)
        XCTAssertEqual(expected.suffix(Self.invalid.count).filter { $0 != .null }.count, 0)
    }

    func testHeadersInFileOrder() throws {
        let d = try TOMLDocument(parsing: "[host.\"b\"]\n[host.\"b\".header]\n[host.\"a\"]\n[[x]]\n")
        XCTAssertEqual(d.headers, [["host", "b"], ["host", "b", "header"], ["host", "a"], ["x"]])
        XCTAssertEqual(ContainerdHosts.hostTablesInOrder(d.headers), ["b", "a"])
    }
}
