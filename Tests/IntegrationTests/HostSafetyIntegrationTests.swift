import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// The built agent, as root on a sandbox node, against what a process of the node can plant:
/// links where it writes, a folder of its own swapped for a link, a file named like its own;
/// and against a second agent running at the same time. Every canary stays as it was.
final class HostSafetyIntegrationTests: XCTestCase {
    var node: SandboxNode!

    override func setUpWithError() throws { node = try SandboxNode() }
    override func tearDown() { node?.down() }

    var certsD: String { node.hostRoot + "/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local:443" }
    /// The OS store's local folder as the node sees it (a folder of the node's bound there).
    var anchors: String { node.folder + "/local-ca/node-agent" }

    /// A canary outside the host root (the machine's own file system, as a pod's would be) and
    /// one inside it (a file of the node's that is not the agent's).
    func canaries() throws -> (outside: String, inside: String) {
        let outside = node.folder + "/canary-outside"
        try "outside\n".write(toFile: outside, atomically: false, encoding: .utf8)
        try "inside\n".write(toFile: node.hostRoot + "/etc/canary", atomically: false, encoding: .utf8)
        return (outside, node.hostRoot + "/etc/canary")
    }

    func assertUntouched(_ c: (outside: String, inside: String), line: UInt = #line) {
        XCTAssertEqual(try? String(contentsOfFile: c.outside, encoding: .utf8), "outside\n", line: line)
        XCTAssertEqual(try? String(contentsOfFile: c.inside, encoding: .utf8), "inside\n", line: line)
    }

    func testLinksPlantedWhereTheAgentWritesAreRefusedAndTheirTargetsUntouched() throws {
        let c = try canaries()
        // hosts.toml a link to a file outside the root; the OS store's CA file a link to one inside.
        try FileManager.default.createDirectory(atPath: certsD, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: certsD + "/hosts.toml", withDestinationPath: c.outside)
        let run = try node.agent(node.bootstrapArguments())
        XCTAssertEqual(run.status, 3, run.stdout + run.stderr)
        XCTAssertTrue(run.stderr.contains("hosts.toml is a symbolic link"), run.stderr)
        assertUntouched(c)
        try FileManager.default.removeItem(atPath: certsD + "/hosts.toml")

        // The name the agent gives its CA file, from a run and an uninstall before.
        XCTAssertEqual(try node.agent(node.bootstrapArguments()).status, 0)
        let name = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: anchors).first { $0.hasSuffix(".crt") })
        XCTAssertEqual(try node.agent(["uninstall", "--host-root", node.hostRoot]).status, 0)
        try FileManager.default.createDirectory(atPath: anchors, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: anchors + "/" + name, withDestinationPath: "/etc/canary")
        let second = try node.agent(node.bootstrapArguments())
        XCTAssertEqual(second.status, 3, second.stdout + second.stderr)
        XCTAssertTrue(second.stderr.contains("is a symbolic link"), second.stderr)
        assertUntouched(c)
        try FileManager.default.removeItem(atPath: anchors + "/" + name)

        // With the links gone the node is set up as usual.
        let third = try node.agent(node.bootstrapArguments())
        XCTAssertEqual(third.status, 0, third.stdout + third.stderr)
        assertUntouched(c)
    }

    func testUninstallDoesNotFollowAFolderOfTheAgentsSwappedForALink() throws {
        let c = try canaries()
        XCTAssertEqual(try node.agent(node.bootstrapArguments()).status, 0)
        // Someone swaps the agent's certs.d folder for a link to a folder of theirs holding files
        // by the same names, one even carrying the agent's marker.
        let theirs = node.hostRoot + "/etc/theirs"
        try FileManager.default.createDirectory(atPath: theirs, withIntermediateDirectories: true)
        try (HostFiles.ownershipMarker + "\nnot the agent's\n").write(toFile: theirs + "/hosts.toml", atomically: false, encoding: .utf8)
        try "theirs\n".write(toFile: theirs + "/ca.crt", atomically: false, encoding: .utf8)
        try FileManager.default.removeItem(atPath: certsD)
        try FileManager.default.createSymbolicLink(atPath: certsD, withDestinationPath: "/etc/theirs")
        let run = try node.agent(["uninstall", "--host-root", node.hostRoot])
        XCTAssertEqual(run.status, 3, run.stdout + run.stderr)
        XCTAssertTrue(run.stderr.contains("leads through a link the agent does not follow"), run.stderr)
        // Refused before anything of the batch changed: the agent's OS-store file is still there.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: anchors).filter { $0.hasSuffix(".crt") }.count, 1)
        XCTAssertEqual(try String(contentsOfFile: theirs + "/ca.crt", encoding: .utf8), "theirs\n")
        XCTAssertTrue(FileManager.default.fileExists(atPath: theirs + "/hosts.toml"), run.stdout + run.stderr)
        XCTAssertNotNil(readSymlink(certsD))
        // A bootstrap does not write through it either: containerd reads their ca.crt there, so
        // the node cannot pull, and the verdict says so.
        let again = try node.agent(node.bootstrapArguments())
        XCTAssertEqual(again.status, 1, again.stdout + again.stderr)
        XCTAssertTrue(again.stdout.contains("was not written by node-agent: left alone"), again.stdout)
        XCTAssertEqual(try String(contentsOfFile: theirs + "/ca.crt", encoding: .utf8), "theirs\n")
        assertUntouched(c)

        // The folder back (a bootstrap makes it again), then the port-less one swapped for a link to
        // an empty folder of theirs: uninstall removes the agent's files and leaves that folder.
        try FileManager.default.removeItem(atPath: certsD)
        XCTAssertEqual(try node.agent(node.bootstrapArguments()).status, 0)
        let empty = node.hostRoot + "/etc/their-empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let portless = node.hostRoot + "/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local"
        try FileManager.default.removeItem(atPath: portless)
        try FileManager.default.createSymbolicLink(atPath: portless, withDestinationPath: "/etc/their-empty")
        let second = try node.agent(["uninstall", "--host-root", node.hostRoot])
        XCTAssertEqual(second.status, 0, second.stdout + second.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: empty), "uninstall removed the folder a link pointed to")
        XCTAssertFalse(FileManager.default.fileExists(atPath: certsD), "the agent's own folder was left")
        assertUntouched(c)
    }

    func testAFileNamedLikeTheAgentsIsNotRemoved() throws {
        XCTAssertEqual(try node.agent(node.bootstrapArguments()).status, 0)
        let theirs =
            anchors + "/"
            + (try FileManager.default.contentsOfDirectory(atPath: anchors).first { $0.hasSuffix(".crt") } ?? "x")
            .replacingOccurrences(of: "1.crt", with: "9.crt")
        try FileManager.default.copyItem(atPath: try CertFixtures.path("other-ca.crt"), toPath: theirs)
        let run = try node.agent(["uninstall", "--host-root", node.hostRoot])
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: theirs), "a CA file without the agent's marker was removed")
        XCTAssertTrue(run.stdout.contains("has no marker: left alone"), run.stdout)
    }

    func testADamagedBundleIsReportedAndRebuilt() throws {
        XCTAssertEqual(try node.agent(node.bootstrapArguments()).status, 0)
        let bundle = node.hostRoot + "/etc/ssl/certs/ca-certificates.crt"
        let whole = try String(contentsOfFile: bundle, encoding: .utf8)
        // The bundle left holding only the agent's CA, as two interleaved runs once left it.
        try String(contentsOfFile: node.caFile, encoding: .utf8).write(toFile: bundle, atomically: false, encoding: .utf8)
        let run = try node.agent(node.bootstrapArguments())
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        XCTAssertTrue(run.stdout.contains("does not hold what the node's CA sources give"), run.stdout)
        XCTAssertEqual(try String(contentsOfFile: bundle, encoding: .utf8), whole)
    }

    func testAProcessOfAnotherUserCallingItselfContainerdIsNotTheNodesRuntime() throws {
        // A process of uid 65534 named containerd (a link of that name to python3), listening on a
        // socket of its own and naming a config whose config_path points where it wants root to write.
        let bin = node.folder + "/fake-bin"
        let run = node.folder + "/fake-run"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        XCTAssertEqual(chmod(run, 0o777), 0)
        try FileManager.default.createSymbolicLink(atPath: bin + "/containerd", withDestinationPath: "/usr/bin/python3")
        try FileManager.default.createDirectory(atPath: node.hostRoot + "/etc/fake", withIntermediateDirectories: true)
        try "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/fake-certs.d\"\n".write(
            toFile: node.hostRoot + "/etc/fake/config.toml", atomically: false, encoding: .utf8)
        let code = "import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[4]); s.listen(); time.sleep(120)"
        let started = try node.exec([
            "sh", "-c",
            "HTTPS_PROXY=http://127.0.0.1:9 setpriv --reuid 65534 --regid 65534 --clear-groups \"$0\" -c \"$1\" -c /etc/fake/config.toml -a \"$2\" >/dev/null 2>&1 & echo $!",
            bin + "/containerd", code, run + "/c.sock",
        ])
        let pid = try XCTUnwrap(Int32(started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), started.stderr)
        defer { kill(pid, SIGKILL) }
        try eventually(5, "the fake's socket") { FileManager.default.fileExists(atPath: run + "/c.sock") }

        // With the node's containerd running, and with it stopped (a new node's first boot: the
        // impostor is then the only process of that name).
        for running in [true, false] {
            if !running { XCTAssertEqual(try node.control(["stop", "containerd"]), 0) }
            let r = try node.agent(node.bootstrapArguments())
            // Stopped, the runtime's socket is absent and the other checks judge (as on a node
            // whose containerd starts after the agent).
            XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
            XCTAssertTrue(r.stdout.contains("a process named containerd (pid \(pid)) runs as uid 65534"), r.stdout)
            XCTAssertFalse(
                FileManager.default.fileExists(atPath: node.hostRoot + "/etc/fake-certs.d"), "root wrote where the fake's config said")
            // Nor do the checks model it: its proxy is not the runtime's.
            XCTAssertFalse(r.stdout.contains("127.0.0.1:9"), r.stdout)
        }
    }

    /// A root process named containerd in the node's network, listening at the node's own socket
    /// path in a mount namespace of its own (a pod's with the host's network, a nested cluster's,
    /// a CI runner's), started before the node's containerd last restarted, so that its pid is
    /// the lower, and naming a config and a proxy of its own. The socket in the node's root says
    /// which process serves it: before, both were taken, and the lower pid's config decided
    /// where root wrote the CA (/etc/fake-certs.d) while its proxy was modelled as the runtime's.
    /// The sandbox's bus has no systemd, so no unit says which containerd is the node's.
    func testARootProcessServingTheNodesSocketPathInAMountNamespaceOfItsOwnIsNotTheNodesRuntime() throws {
        let bin = node.folder + "/fake-bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: bin + "/containerd", withDestinationPath: "/usr/bin/python3")
        try FileManager.default.createDirectory(atPath: node.hostRoot + "/etc/fake", withIntermediateDirectories: true)
        try "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/fake-certs.d\"\n".write(
            toFile: node.hostRoot + "/etc/fake/config.toml", atomically: false, encoding: .utf8)
        let socket = "/run/containerd/containerd.sock"
        let code = "import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[4]); s.listen(); time.sleep(120)"
        // Its own /run/containerd (a tmpfs in a mount namespace of its own), in the node's network.
        let started = try node.exec([
            "sh", "-c",
            "HTTPS_PROXY=http://127.0.0.1:9 unshare -m --propagation private sh -c 'mount -t tmpfs tmpfs /run/containerd && exec \"$0\" \"$@\"' \"$0\" -c \"$1\" -c /etc/fake/config.toml -a \"$2\" >/dev/null 2>&1 & echo $!",
            bin + "/containerd", code, socket,
        ])
        let pid = try XCTUnwrap(Int32(started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), started.stderr)
        defer { kill(pid, SIGKILL) }
        func listeners() throws -> Int {
            try node.exec(["sh", "-c", "grep -c ' \(socket)$' /proc/net/unix"]).stdout.split(separator: "\n").first.flatMap { Int($0) } ?? 0
        }
        try eventually(5, "the fake's socket beside the node's") { try listeners() >= 2 }
        // The node's containerd restarted after it: its pid is now the higher.
        XCTAssertEqual(try node.control(["stop", "containerd"]), 0)
        XCTAssertEqual(try node.control(["start", "containerd"]), 0)
        XCTAssertGreaterThan(try XCTUnwrap(Int32(try node.containerdPID())), pid)
        XCTAssertEqual(try listeners(), 2)

        let r = try node.agent(node.bootstrapArguments())
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(
            r.stdout.contains(
                "containerd (pid \(pid)) listens at \(socket) in a mount namespace of its own: the node's \(socket) is served by pid \(try node.containerdPID())"
            ), r.stdout)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: node.hostRoot + "/etc/fake-certs.d"), "root wrote where the fake's config said")
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: node.hostRoot + "/etc/containerd/certs.d/\(node.registry)/hosts.toml"), r.stdout)
        XCTAssertFalse(r.stdout.contains("127.0.0.1:9"), "the fake's proxy modelled as the runtime's: \(r.stdout)")
        let pulled = try node.pull(node.testImage)
        XCTAssertTrue(pulled.ok, pulled.error)
    }

    /// Bootstraps, uninstalls and a `run` at once: the lock keeps them apart. Sampled all along,
    /// the bundle never lacks the system CAs; at the end one bootstrap leaves the state of one run.
    func testConcurrentRunsNeverLeaveABrokenStore() throws {
        let bundle = node.hostRoot + "/etc/ssl/certs/ca-certificates.crt"
        @Sendable func certificates(_ text: String) -> Int { text.components(separatedBy: "-----BEGIN CERTIFICATE-----").count - 1 }
        let system = certificates(try String(contentsOfFile: bundle, encoding: .utf8))
        XCTAssertGreaterThan(system, 50)
        let (run, log) = try node.startRun(["--ca", node.caFile])
        defer {
            run.terminate()
            run.waitUntilExit()
        }
        let stop = NSLock()
        nonisolated(unsafe) var sampling = true
        nonisolated(unsafe) var samples: [Int] = []
        let sampler = Thread {
            while stop.withLock({ sampling }) {
                if let text = try? String(contentsOfFile: bundle, encoding: .utf8) { samples.append(certificates(text)) }
                usleep(2000)
            }
        }
        sampler.start()
        var processes: [Process] = []
        // Ten bootstraps and five uninstalls, half of them with the node's own tool (seconds of
        // work, the widest window for overlap).
        for i in 0..<15 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: SandboxNode.binary)
            let refresh = ["--trust-refresh", i % 2 == 0 ? "tool" : "native"]
            p.arguments = (i % 3 == 2 ? ["uninstall", "--host-root", node.hostRoot] : node.bootstrapArguments()) + refresh
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            processes.append(p)
        }
        // Run inside the node (its bus, its DNS): through the sandbox script, as node.agent does.
        for p in processes {
            p.arguments = ["exec", SandboxNode.binary] + p.arguments!
            p.executableURL = URL(fileURLWithPath: node.script)
            p.environment = node.scriptEnvironment
            try p.run()
        }
        for p in processes { p.waitUntilExit() }
        stop.withLock { sampling = false }
        while sampler.isExecuting { usleep(1000) }
        XCTAssertGreaterThan(samples.count, 20)
        XCTAssertGreaterThanOrEqual(samples.min() ?? 0, system, "the bundle lost system CAs while runs overlapped")
        XCTAssertLessThanOrEqual(samples.max() ?? 0, system + 1, "the bundle held a CA twice while runs overlapped")
        let statuses = processes.map(\.terminationStatus)
        XCTAssertFalse(statuses.contains { $0 > 3 }, "a run crashed: \(statuses)")

        // One last bootstrap: exactly the system CAs and the agent's, once each.
        let last = try node.agent(node.bootstrapArguments())
        XCTAssertEqual(last.status, 0, last.stdout + last.stderr)
        XCTAssertEqual(certificates(try String(contentsOfFile: bundle, encoding: .utf8)), system + 1)
        XCTAssertFalse(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("Fatal error"))
    }
}
