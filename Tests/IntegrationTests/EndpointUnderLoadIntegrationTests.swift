import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// The health endpoint of the built `node-agent run` on a sandbox node as the node's network
/// meets it: what a peer off the node's loopback gets, and the endpoint while clients try to
/// starve it: 200 connections that drip one byte of a request head every second and 100 that
/// connect and never send, each reconnecting as soon as it is cut off. The kubelet's probe
/// (a fresh connection per probe, `Connection: close`, its default timeoutSeconds of 1 s) must
/// keep getting its answer: at least 99% of the probes within 1 s.
final class EndpointUnderLoadIntegrationTests: XCTestCase {
    var node: SandboxNode!
    var processes: [Process] = []

    override func setUpWithError() throws { node = try SandboxNode() }

    override func tearDown() {
        for p in processes where p.isRunning {
            p.terminate()
            p.waitUntilExit()
        }
        processes = []
        node?.down()
    }

    /// Holds slow and silent connections open against each of `attack` (HOST:PORT) while probing
    /// each of `probes` (HOST:PORT/PATH) like the kubelet for 30 s; returns the attack script's
    /// JSON summary: the attackers' counts, and per probe target its probes, answered, p50, p99.
    func underAttack(attack: [String], probes: [String]) throws -> [String: Any] {
        let script = node.folder + "/attack.py"
        try Self.attackScript.write(toFile: script, atomically: true, encoding: .utf8)
        let r = try node.exec(["python3", script, attack.joined(separator: ","), probes.joined(separator: ","), "30"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "attack script: \(r.stdout)\(r.stderr)")
    }

    func assertAnswered(_ summary: [String: Any], _ target: String, line: UInt = #line) throws {
        let result = try XCTUnwrap(summary[target] as? [String: Any], "\(summary)", line: line)
        let probes = try XCTUnwrap(result["probes"] as? Int, line: line)
        let answered = try XCTUnwrap(result["answered"] as? Int, line: line)
        XCTAssertGreaterThanOrEqual(probes, 100, line: line)
        XCTAssertGreaterThanOrEqual(Double(answered), 0.99 * Double(probes), "\(target) answered within 1 s: \(result)", line: line)
    }

    /// The DaemonSet's layout: the endpoint on loopback (the kubelet's probes), /metrics alone on
    /// the node's addresses (Prometheus). Slow clients on both, the worst case on the probe's own
    /// listener (a process on the node, or a hostNetwork pod), and what any pod can reach on the
    /// metrics one: the probe and the scrape keep being answered.
    func testTheProbeIsAnsweredWhileSlowClientsHoldTheEndpoint() throws {
        let (process, log) = try node.startRun(["--ca", node.caFile, "--timeout", "2", "--metrics-listen", "0.0.0.0:9809"])
        processes.append(process)
        try eventually(30, "the endpoint answers") { (try? node.endpoint("/healthz").code) == "200" }
        let summary = try underAttack(
            attack: ["127.0.0.1:9808", "127.0.0.1:9809"], probes: ["127.0.0.1:9808/healthz", "127.0.0.1:9809/metrics"])
        print("slow clients on both listeners: \(summary)")
        try assertAnswered(summary, "127.0.0.1:9808/healthz")
        try assertAnswered(summary, "127.0.0.1:9809/metrics")
        // The attackers were really there: their connections were accepted and then cut off.
        XCTAssertGreaterThan(summary["attacker_connects"] as? Int ?? 0, 600, "\(summary)")
        XCTAssertGreaterThan(summary["drippers_cut"] as? Int ?? 0, 0, "a dripping client was never cut off: \(summary)")
        XCTAssertTrue(process.isRunning, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        XCTAssertTrue(
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("connections closed to keep it answering"),
            "the shedding was not logged")
    }

    /// An endpoint bound to every address (a ConfigMap from before 127.0.0.1 was the default):
    /// a peer off the node's loopback (here an address of the node's own, 203.0.113.77, so the
    /// peer is not 127.0.0.1) gets /healthz and /readyz's bare verdict, and neither /status nor
    /// the reasons; the node itself still gets the report. The metrics listener serves /metrics
    /// alone, and /metrics names no host path.
    func testFromOffTheNodesLoopbackNothingOfTheReport() throws {
        let (process, log) = try node.startRun([
            "--ca", node.caFile, "--timeout", "2", "--listen", "0.0.0.0:9808", "--metrics-listen", "0.0.0.0:9809",
        ])
        processes.append(process)
        XCTAssertEqual(try node.exec(["ip", "addr", "add", "203.0.113.77/32", "dev", "lo"]).status, 0)
        try eventually(30, "the first report") { (try? node.endpoint("/status").body)?.contains("\"checks\"") == true }
        func get(_ url: String) throws -> (code: String, body: String) {
            let r = try node.exec(["curl", "-s", "-m", "5", "-w", "\n%{http_code}", url])
            let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            return (String(lines.last ?? ""), lines.dropLast().joined(separator: "\n"))
        }
        let status = try get("http://203.0.113.77:9808/status")
        XCTAssertEqual(status.code, "403")
        XCTAssertEqual(status.body, "/status is answered on loopback only: run `node-agent status` on the node (in the agent's pod)\n")
        let ready = try get("http://203.0.113.77:9808/readyz")
        XCTAssertEqual(ready.body, ready.code == "200" ? "ready\n" : "not ready\n", ready.code)
        XCTAssertEqual(try get("http://203.0.113.77:9808/healthz").code, "200")
        XCTAssertTrue(try get("http://127.0.0.1:9808/readyz").body.hasPrefix("ready to pull from "))
        let metrics = try get("http://203.0.113.77:9809/metrics")
        XCTAssertEqual(metrics.code, "200")
        XCTAssertTrue(metrics.body.contains("node_agent_ready "), metrics.body)
        XCTAssertFalse(metrics.body.contains(node.hostRoot), metrics.body)
        XCTAssertFalse(metrics.body.contains(node.folder), metrics.body)
        for path in ["/status", "/readyz", "/healthz"] {
            XCTAssertEqual(try get("http://203.0.113.77:9809" + path).code, "404", path)
            XCTAssertEqual(try get("http://127.0.0.1:9809" + path).code, "404", path)
        }
        // node-agent status asked there says where to ask instead; on loopback it gets the report.
        let refused = try node.agent(["status", "--endpoint", "http://203.0.113.77:9808"])
        XCTAssertEqual(refused.status, 4, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("the agent at http://203.0.113.77:9808 answers /status on loopback only"), refused.stderr)
        XCTAssertTrue([0, 1].contains(try node.agent(["status", "--endpoint", "http://127.0.0.1:9808"]).status))
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertTrue(text.contains("--listen is reachable from the node's network"), text)
    }

    /// The attack, in the node's network namespace: asyncio attackers in this process, and per
    /// probe target a prober process of its own (as the kubelet is) with blocking sockets, probing
    /// as the kubelet's Go client does: a fresh connection per request, 1 s for all of it.
    static let attackScript = #"""
        import asyncio, json, multiprocessing, socket, sys, time

        targets = [(h, int(p)) for h, p in (t.rsplit(":", 1) for t in sys.argv[1].split(","))]
        probe_targets = sys.argv[2].split(",")
        seconds = int(sys.argv[3])
        stats = {"attacker_connects": 0, "drippers_cut": 0, "silent_cut": 0, "refused": 0}
        stop = time.time() + seconds + 3

        async def connect(host, port):
            """A connection, counted; None (after a pause) when refused."""
            try:
                r, w = await asyncio.open_connection(host, port)
            except OSError:
                stats["refused"] += 1
                await asyncio.sleep(0.2)
                return None
            stats["attacker_connects"] += 1
            return r, w

        async def dripper(host, port):
            while time.time() < stop:
                if (c := await connect(host, port)) is None:
                    continue
                r, w = c
                head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10000
                try:
                    for byte in head:
                        if time.time() >= stop:
                            break
                        w.write(bytes([byte]))
                        await w.drain()
                        try:
                            # Anything back (an answer, or the end of the connection) is the cut.
                            await asyncio.wait_for(r.read(1), 1.0)
                            stats["drippers_cut"] += 1
                            break
                        except asyncio.TimeoutError:
                            pass
                except OSError:
                    stats["drippers_cut"] += 1
                w.close()

        async def silent(host, port):
            while time.time() < stop:
                if (c := await connect(host, port)) is None:
                    continue
                r, w = c
                try:
                    await asyncio.wait_for(r.read(1), max(0.1, stop - time.time()))
                    stats["silent_cut"] += 1
                except (asyncio.TimeoutError, OSError):
                    pass
                w.close()

        def prober(target, out):
            address, path = target.split("/", 1)
            host, port = address.rsplit(":", 1)
            request = (f"GET /{path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: kube-probe/1.31\r\n"
                       "Accept: */*\r\nConnection: close\r\n\r\n").encode()
            time.sleep(3)  # the attackers first
            results = []
            end = time.time() + seconds
            while time.time() < end:
                start = time.time()
                ok = False
                try:
                    s = socket.create_connection((host, int(port)), timeout=1)
                    s.settimeout(max(0.01, start + 1 - time.time()))
                    s.sendall(request)
                    data = b""
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    ok = data.startswith(b"HTTP/1.1 200 ") and time.time() - start <= 1
                    s.close()
                except OSError:
                    pass
                results.append((ok, time.time() - start))
                time.sleep(max(0, 0.2 - (time.time() - start)))
            times = sorted(t for ok, t in results if ok)
            out.put((target, {"probes": len(results), "answered": sum(1 for ok, _ in results if ok),
                              "p50": times[len(times) // 2] if times else None,
                              "p99": times[int(len(times) * 0.99)] if times else None}))

        async def main():
            tasks = []
            for host, port in targets:
                tasks += [asyncio.create_task(dripper(host, port)) for _ in range(200)]
                tasks += [asyncio.create_task(silent(host, port)) for _ in range(100)]
            await asyncio.gather(*tasks)

        out = multiprocessing.Queue()
        probers = [multiprocessing.Process(target=prober, args=(t, out)) for t in probe_targets]
        for p in probers:
            p.start()
        asyncio.run(main())
        for _ in probers:
            target, result = out.get()
            stats[target] = result
        for p in probers:
            p.join()
        print(json.dumps(stats))
        """#
}
