import Glibc
import HostSystem
import ResolvedConfig
import TestSupport
import Vocabulary
import XCTest

@testable import AgentCore
@testable import Containerd
@testable import Probes
@testable import TrustStore

/// The order of the job's steps, with every effect a recorder: where the OS store is rebuilt
/// (before DNS by the host's tool, after it beside the early pull natively), what a dry run
/// does, and that a failed rebuild waits for the pull it started. The integration tests
/// (BootstrapIntegrationTests, DNSModesIntegrationTests) run the real effects.
final class BootstrapOrderTests: XCTestCase {
    /// What the effects were asked, in order; the early pull's thread writes to it too.
    final class Recorder: @unchecked Sendable {
        private let lock = PlainLock()
        private var recorded: [String] = []
        func record(_ step: String) {
            lock.lock()
            recorded.append(step)
            lock.unlock()
        }
        var steps: [String] {
            lock.lock()
            defer { lock.unlock() }
            return recorded
        }
    }

    struct Refused: Error {}

    /// Steps that each say they run and then wait (up to 1 s) to see another run: two steps
    /// meet only when they run at the same time (each is marked when either sees the other).
    final class Meeting: @unchecked Sendable {
        private let lock = PlainLock()
        private var running: Set<String> = []
        private var seen: Set<String> = []
        func begin(_ step: String, meeting other: String) {
            lock.withLock { _ = running.insert(step) }
            defer { lock.withLock { _ = running.remove(step) } }
            for _ in 0..<100 {
                let met = lock.withLock { () -> Bool in
                    if running.contains(other) { seen.formUnion([step, other]) }
                    return seen.contains(step)
                }
                if met { return }
                usleep(10_000)
            }
        }
        /// The steps that ran while the other ran.
        var met: Set<String> { lock.withLock { seen } }
    }

    /// The steps in their order, each pair of steps made side by side in the order named here
    /// (the two threads record in either order).
    func settled(_ steps: [String]) -> [String] {
        var steps = steps
        for (a, b) in [("read trust", "read DNS"), ("apply trust files", "apply DNS link")] {
            if let i = steps.firstIndex(of: b), i + 1 < steps.count, steps[i + 1] == a { steps.swapAt(i, i + 1) }
        }
        return steps
    }

    let root = try! TemporaryHostRoot("bootstrap-order")

    func bootstrap(dryRun: Bool = false, restartRuntime: Bool = false) throws -> Bootstrap {
        var settings = NodeSettings(registry: "registry-service.openfaas.svc.cluster.local:5000")
        settings.hostRoot = root.directory
        settings.clusterDNS = "10.43.0.10"
        settings.runtimePull = false
        settings.dbusAddress = "unix:path=/nonexistent/bus"
        var b = Bootstrap(config: try NodeConfig(settings, ca: nil, dryRun: dryRun), runner: RecordingRunner(), refreshMode: .auto)
        b.restartRuntime = restartRuntime
        return b
    }

    /// Effects that record their step; the trust plan rebuilds the store `native`ly or with the
    /// host's tool, and containerd reads a CA file of the agent's when `runtimeCA`.
    func effects(
        _ r: Recorder, native: Bool, runtimeCA: Bool = true, refreshFails: Bool = false, meeting: Meeting? = nil
    ) throws -> BootstrapEffects {
        let plan = TrustPlan(
            certificates: [], layout: .debian, fileChanges: [], refresh: ["update-ca-certificates"], notes: [], native: native)
        let locations = RegistryTrustLocations(
            osBundle: OSTrustLayout.debian.bundle,
            runtimeCAFiles: runtimeCA ? [try HostPath("/etc/containerd/certs.d/registry:5000/ca.crt")] : [],
            runtimeHosts: ContainerdHosts(folder: nil, hostsTOML: nil, hosts: []), osStoreFiles: [], note: nil, remedy: nil)
        let host = DNSHostFacts(resolvConfMode: .stub, nameservers: ["127.0.0.53"], systemdVersion: 252, resolvedOnBus: true)
        return BootstrapEffects(
            preparePull: { r.record("prepare pull") },
            lock: {
                r.record("lock")
                return nil
            },
            readTrust: {
                r.record("read trust")
                meeting?.begin("read trust", meeting: "read DNS")
                return {
                    r.record("plan trust")
                    return plan
                }
            },
            readDNS: { desired in
                r.record("read DNS")
                meeting?.begin("read DNS", meeting: "read trust")
                return DNSFacts(host: host, mode: DNSModeChoice(asked: desired.mode, host: host, registry: desired.registryHost))
            },
            applyTrustFiles: { _ in
                r.record("apply trust files")
                meeting?.begin("apply trust files", meeting: "apply DNS")
            },
            trustLocations: {
                r.record("trust locations")
                return locations
            },
            refreshStore: { _ in
                r.record("refresh store")
                if refreshFails { throw Refused() }
            },
            restartStaleRuntimes: { _ in
                r.record("restart runtimes")
                return []
            },
            applyDNS: {
                r.record("apply DNS \($0.mode.rawValue)")
                meeting?.begin("apply DNS", meeting: "apply trust files")
            },
            startPull: { _ in
                r.record("start pull")
                return BackgroundWork {
                    usleep(200_000)
                    r.record("pull done")
                    return RuntimePullProbe.Outcome(reference: "registry:5000/probe", answer: .failure(Refused()), seconds: 0.2)
                }
            },
            probe: { _, early, restarted in
                if let early { _ = early.wait() }
                r.record(restarted ? "probe, runtimes read again" : "probe")
                return []
            },
            watchedPaths: { _ in [] })
    }

    func testTheHostsToolRebuildsTheStoreAndRuntimesRestartBeforeDNSIsRouted() throws {
        let r = Recorder()
        let report = try bootstrap(restartRuntime: true).run(effects(r, native: false))
        XCTAssertEqual(
            settled(r.steps),
            [
                "prepare pull", "lock", "read trust", "read DNS", "plan trust", "apply trust files", "trust locations",
                "refresh store", "restart runtimes", "apply DNS link", "probe, runtimes read again",
            ])
        XCTAssertEqual(report.dnsMode?.mode, "link")
        XCTAssertEqual(report.timings.map(\.name), ["plan", "trust", "dns", "trust-store", "probes"])
    }

    func testANativeRebuildComesAfterDNSBesideTheEarlyPull() throws {
        let r = Recorder()
        _ = try bootstrap().run(effects(r, native: true))
        XCTAssertEqual(
            settled(r.steps),
            [
                "prepare pull", "lock", "read trust", "read DNS", "plan trust", "apply trust files", "apply DNS link",
                "trust locations", "start pull", "refresh store", "pull done", "probe",
            ])
    }

    func testNoEarlyPullWhereContainerdTrustsTheOSStoreAloneOrRuntimesRestart() throws {
        let alone = Recorder()
        _ = try bootstrap().run(effects(alone, native: true, runtimeCA: false))
        XCTAssertFalse(alone.steps.contains("start pull"), "\(alone.steps)")
        let restarting = Recorder()
        _ = try bootstrap(restartRuntime: true).run(effects(restarting, native: true))
        XCTAssertEqual(
            Array(settled(restarting.steps).suffix(5)),
            ["apply DNS link", "trust locations", "refresh store", "restart runtimes", "probe, runtimes read again"])
    }

    /// The trust facts and the DNS facts are read at the same time, and where the store is
    /// rebuilt natively (after DNS) the trust files and the DNS route are made at the same time:
    /// the pull that proves them waits for both, and neither needs the other. Where the host's
    /// tool rebuilds the store, DNS still waits for the files and the store (the order above).
    func testFactsAndThenFilesAndRouteAreMadeSideBySide() throws {
        let native = Meeting()
        _ = try bootstrap().run(effects(Recorder(), native: true, meeting: native))
        XCTAssertEqual(native.met, ["read trust", "read DNS", "apply trust files", "apply DNS"])
        let tool = Meeting()
        _ = try bootstrap().run(effects(Recorder(), native: false, meeting: tool))
        XCTAssertEqual(tool.met, ["read trust", "read DNS"])
    }

    func testADryRunReadsAndPlansAndChangesNothing() throws {
        let r = Recorder()
        let report = try bootstrap(dryRun: true).run(effects(r, native: false))
        XCTAssertEqual(settled(r.steps), ["read trust", "read DNS", "plan trust"])
        XCTAssertTrue(report.dryRun)
        XCTAssertTrue(report.notes.contains { $0.hasPrefix("DNS mode link: ") }, "\(report.notes)")
    }

    func testAFailedRebuildWaitsForThePullItStartedBeforeItsErrorGoesUp() throws {
        let r = Recorder()
        XCTAssertThrowsError(try bootstrap().run(effects(r, native: true, refreshFails: true))) { XCTAssertTrue($0 is Refused) }
        XCTAssertEqual(Array(r.steps.suffix(3)), ["start pull", "refresh store", "pull done"])
    }
}

/// Which runs are made again when resolved moved under them (Bootstrap.run): a failed run and a
/// run that was not ready, each said in the note of the run made again; a ready run, a dry run and
/// a run that restarted resolved itself never. The note carries no secret from the error.
final class BootstrapRunAgainTests: XCTestCase {
    func report(ready: Bool, dryRun: Bool = false) -> Report {
        Report(
            ready: ready, dryRun: dryRun, registry: "r:443", changes: [], notes: [],
            checks: [
                CheckResult(name: "dns-cluster", outcome: .pass, reason: "resolved"),
                CheckResult(name: "runtime-pull", outcome: ready ? .pass : .fail, reason: "connection refused"),
                CheckResult(name: "dns-host", outcome: ready ? .pass : .fail, reason: "connection refused"),
            ])
    }

    func testFailedAndNotReadyRunsAreMadeAgainReadyAndDryRunsAreNot() {
        XCTAssertNil(Bootstrap.endedShort(.success(report(ready: true))))
        XCTAssertNil(Bootstrap.endedShort(.success(report(ready: false, dryRun: true))))
        XCTAssertEqual(Bootstrap.endedShort(.success(report(ready: false))), "was not ready (failed: runtime-pull, dns-host)")
        // The run restarted or reloaded resolved itself (the drop-in mode): its own move.
        var restartedIt = report(ready: false)
        restartedIt.movedResolved = true
        XCTAssertNil(Bootstrap.endedShort(.success(restartedIt)))
        let error = AgentError(.dbus, "GetLink failed: https://user:secret@proxy.example:3128 went away")
        let said = Bootstrap.endedShort(.failure(error))
        XCTAssertEqual(said?.hasPrefix("ended: "), true, said ?? "nil")
        XCTAssertFalse(said?.contains("secret") ?? true, said ?? "nil")
    }
}
