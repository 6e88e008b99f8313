import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// scripts/release from a clean clone of this repository: the artifacts are there and their
/// checksums verify, the binary says the clone's `git describe` and commit, the image's labels
/// say them too, the rendered manifests pin the image by its digest, and `release push` puts
/// that very digest in a registry (Debian's docker-registry on 127.0.0.1).
///
/// The release build is the slow part (about 20 minutes from clean on two CPUs), and scripts/test
/// has already made one: the release reuses NODE_AGENT_RELEASE_BINARY's folder (--binaries),
/// which scripts/release accepts only if those binaries say the clone's describe and commit,
/// that is, were built from the same commit with a clean tree (as in CI). Built from another
/// tree, the test is skipped, unless NODE_AGENT_RELEASE_FULL=1 asks for the full build in the clone.
final class ReleaseScriptIntegrationTests: XCTestCase {
    let version = "v0.0.0-test.1"
    let image = "registry.example.com/tools/node-agent"
    let source = "https://example.com/node-agent"

    func testAReleaseFromACleanCloneHasItsArtifactsVersionLabelsAndDigest() throws {
        guard getuid() == 0 else { throw XCTSkip("scripts/release builds the image as root (scripts/build-image)") }
        let environment = ProcessInfo.processInfo.environment
        let full = environment["NODE_AGENT_RELEASE_FULL"] == "1"
        let reuse = full ? nil : environment["NODE_AGENT_RELEASE_BINARY"].map { ($0 as NSString).deletingLastPathComponent }
        guard full || reuse != nil else {
            throw XCTSkip("NODE_AGENT_RELEASE_BINARY is unset (scripts/test builds it), and NODE_AGENT_RELEASE_FULL=1 is not asked")
        }

        let work = try makeTemporaryDirectory("release")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let clone = work + "/src"
        let dist = work + "/dist"
        // NODE_AGENT_RELEASE_REPO: another repository to clone (a copy with a change to try).
        try run("/usr/bin/git", ["clone", "--quiet", environment["NODE_AGENT_RELEASE_REPO"] ?? packageRoot.path, clone])
        let head = try run("/usr/bin/git", ["-C", clone, "rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let describe = try run("/usr/bin/git", ["-C", clone, "describe", "--tags", "--always", "--dirty"]).trimmingCharacters(
            in: .whitespacesAndNewlines)
        if let reuse {
            let said = try sh(reuse + "/node-agent", ["version", "-o", "json"]).stdout
            let build = try? JSONValue.parse(Array(said.utf8))
            guard let build, build["version"]?.string == describe, build["commit"]?.string == head else {
                throw XCTSkip(
                    "\(reuse)/node-agent is \(said.isEmpty ? "a build without `version`" : said.trimmingCharacters(in: .whitespacesAndNewlines)), not the clone's \(describe) at \(head) (built from a tree with changes?): "
                        + "NODE_AGENT_RELEASE_FULL=1 builds in the clone")
            }
        }
        let release = clone + "/scripts/release"
        var arguments = [version, "--image", image, "--source", source, "--output", dist]
        if let reuse { arguments += ["--binaries", reuse] }

        // A tree with a change is refused, and nothing is built.
        try Data("x".utf8).write(to: URL(fileURLWithPath: clone + "/untracked.txt"))
        let dirty = try sh(release, arguments)
        XCTAssertNotEqual(dirty.status, 0)
        XCTAssertTrue(dirty.stderr.contains("the tree is not clean") && dirty.stderr.contains("untracked.txt"), dirty.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dist))
        try FileManager.default.removeItem(atPath: clone + "/untracked.txt")

        // Half a minute with --binaries; a full build in the clone takes 10 minutes or more.
        let made = try ProcessRunner(environment: environment, timeoutSeconds: 3600).run(release, arguments)
        XCTAssertEqual(made.status, 0, made.stderr)
        XCTAssertEqual(made.stdout.trimmingCharacters(in: .whitespacesAndNewlines), dist)
        XCTAssertTrue(made.stderr.contains("no tag \(version): a dry run"), made.stderr)

        // The artifacts, each in SHA256SUMS, which verifies.
        let tarball = "node-agent-\(version)-linux-amd64.tar.gz"
        let archive = "node-agent-\(version)-linux-amd64.oci.tar"
        // The uninstall's cleanup run too, for deploy/'s namespace and the OpenFaaS overlay's.
        let files = [
            tarball, archive, "manifests/node-agent.yaml", "manifests/node-agent-cleanup.yaml",
            "manifests/node-agent-openfaas-cleanup.yaml",
            "CHANGELOG.md", "release.json",
        ]
        let sums = try String(contentsOfFile: dist + "/SHA256SUMS", encoding: .utf8)
        for file in files {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dist + "/" + file), file)
            XCTAssertTrue(sums.contains("  \(file)\n"), "\(file) not in SHA256SUMS:\n\(sums)")
        }
        let check = try sh("/usr/bin/env", ["-C", dist, "sha256sum", "--strict", "-c", "SHA256SUMS"])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)

        // The binary says the clone's describe and commit.
        try run("/usr/bin/tar", ["-xzf", dist + "/" + tarball, "-C", work])
        let said = try JSONValue.parse(Array(try run(work + "/node-agent", ["version", "-o", "json"]).utf8))
        XCTAssertEqual(said["version"]?.string, describe)
        XCTAssertEqual(said["commit"]?.string, head)
        XCTAssertEqual(
            try run(work + "/node-agent", ["--version"]).trimmingCharacters(in: .whitespacesAndNewlines), "\(describe) (commit \(head))")
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: work + "/node-agent-cri"))

        // The image: its labels say them too, and its digest is its manifest's.
        let layout = work + "/layout"
        try FileManager.default.createDirectory(atPath: layout, withIntermediateDirectories: true)
        try run("/usr/bin/tar", ["-xf", dist + "/" + archive, "-C", layout])
        let index = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: layout + "/index.json"))))
        let digest = try XCTUnwrap(index["manifests"]?.array?.first?["digest"]?.string)
        let manifestPath = layout + "/blobs/sha256/" + digest.dropFirst("sha256:".count)
        XCTAssertEqual("sha256:" + (try run("/usr/bin/sha256sum", [manifestPath]).prefix(64)), digest)
        let manifest = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: manifestPath))))
        let configDigest = try XCTUnwrap(manifest["config"]?["digest"]?.string)
        let config = try JSONValue.parse(
            Array(try Data(contentsOf: URL(fileURLWithPath: layout + "/blobs/sha256/" + configDigest.dropFirst(7)))))
        let labels = try XCTUnwrap(config["config"]?["Labels"]?.object)
        let commitTime = try run("/usr/bin/git", ["-C", clone, "log", "-1", "--format=%ct"])
        let created = ISO8601DateFormatter().string(
            from: Date(timeIntervalSince1970: try XCTUnwrap(TimeInterval(commitTime.trimmingCharacters(in: .whitespacesAndNewlines)))))
        XCTAssertEqual(labels["org.opencontainers.image.version"]?.string, describe)
        XCTAssertEqual(labels["org.opencontainers.image.revision"]?.string, head)
        XCTAssertEqual(labels["org.opencontainers.image.source"]?.string, source)
        XCTAssertEqual(labels["org.opencontainers.image.created"]?.string, created.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertEqual(labels["org.opencontainers.image.title"]?.string, "node-agent")

        // The manifests run that image by digest, in every container.
        try assertPinned(dist, image + "@" + digest)
        let entry = try String(contentsOfFile: dist + "/CHANGELOG.md", encoding: .utf8)
        XCTAssertTrue(entry.hasPrefix("## \(version) ("), entry)
        XCTAssertTrue(entry.contains("(\(head.prefix(7)))"), entry)
        let meta = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: dist + "/release.json"))))
        XCTAssertEqual(meta["digest"]?.string, digest)
        XCTAssertEqual(meta["dry_run"]?.bool, true)

        // push: to a registry of its own on 127.0.0.1, under another name, so the manifests are
        // rendered again; the registry serves the digest they pin.
        let port = 20000 + Int.random(in: 0..<10000)
        let storage = work + "/registry"
        try FileManager.default.createDirectory(atPath: storage, withIntermediateDirectories: true)
        try """
        version: 0.1
        log: {level: error}
        storage: {filesystem: {rootdirectory: \(storage)}}
        http: {addr: "127.0.0.1:\(port)"}
        """.write(toFile: work + "/registry.yml", atomically: true, encoding: .utf8)
        let registry = Process()
        registry.executableURL = URL(fileURLWithPath: "/usr/bin/docker-registry")
        registry.arguments = ["serve", work + "/registry.yml"]
        registry.standardOutput = FileHandle.nullDevice
        registry.standardError = FileHandle.nullDevice
        try registry.run()
        defer {
            registry.terminate()
            registry.waitUntilExit()
        }
        var up = false
        for _ in 0..<50 where !up {
            up = try sh("/usr/bin/curl", ["-sf", "-o", "/dev/null", "http://127.0.0.1:\(port)/v2/"]).status == 0
            if !up { usleep(100_000) }
        }
        XCTAssertTrue(up, "docker-registry did not answer on 127.0.0.1:\(port)")
        let pushedName = "127.0.0.1:\(port)/tools/node-agent"
        let push = try sh(release, ["push", version, "--output", dist, "--image", pushedName, "--dest-tls-verify=false"])
        XCTAssertEqual(push.status, 0, push.stderr)
        let served = try run(
            "/usr/bin/curl",
            [
                "-sfI", "-H", "Accept: application/vnd.oci.image.manifest.v1+json",
                "http://127.0.0.1:\(port)/v2/tools/node-agent/manifests/\(version)",
            ])
        XCTAssertTrue(served.lowercased().contains("docker-content-digest: \(digest)"), served)
        try assertPinned(dist, pushedName + "@" + digest)
        let again = try sh("/usr/bin/env", ["-C", dist, "sha256sum", "--strict", "-c", "SHA256SUMS"])
        XCTAssertEqual(again.status, 0, again.stdout + again.stderr)
    }

    /// Every container and init container of every rendered manifest runs `reference`.
    func assertPinned(_ dist: String, _ reference: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let manifests = try FileManager.default.contentsOfDirectory(atPath: dist + "/manifests").filter { $0.hasSuffix(".yaml") }
        XCTAssertTrue(manifests.contains("node-agent.yaml"), "\(manifests)", file: file, line: line)
        for name in manifests {
            let images = try run(
                "/usr/bin/env",
                [
                    "python3", "-c",
                    """
                    import sys, yaml
                    for d in yaml.safe_load_all(open(sys.argv[1])):
                        spec = (d or {}).get("spec", {}).get("template", {}).get("spec", {})
                        for c in spec.get("containers", []) + spec.get("initContainers", []):
                            print(c["image"])
                    """,
                    dist + "/manifests/" + name,
                ]
            ).split(separator: "\n").map(String.init)
                // The cleanup's pod is held by the pause image once its init container has run.
                .filter { !(name.hasSuffix("-cleanup.yaml") && $0.hasPrefix("registry.k8s.io/pause:")) }
            XCTAssertFalse(images.isEmpty, name, file: file, line: line)
            XCTAssertEqual(Set(images), [reference], name, file: file, line: line)
        }
    }

    /// Runs a program that must succeed; its standard output.
    @discardableResult
    func run(_ executable: String, _ arguments: [String]) throws -> String {
        let r = try sh(executable, arguments)
        guard r.status == 0 else {
            throw AgentError(.io, "\(executable) \(arguments.joined(separator: " ")): exit \(r.status): \(r.stderr)")
        }
        return r.stdout
    }
}
