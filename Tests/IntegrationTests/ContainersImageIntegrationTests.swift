import Foundation
import TestSupport
import XCTest

/// containers/image's own word (the pull library of CRI-O, Podman and skopeo) against the agent's
/// `tls-containers-trust`: on a sandbox node, for each layout of `certs.d` and `registries.conf`
/// below, Debian's skopeo (a real containers/image client) inspects the registry's test image
/// inside the node, and the agent probes; the two must agree. What this proves and what only a
/// real CRI-O would: docs/checks.md.
final class ContainersImageIntegrationTests: XCTestCase {
    var node: SandboxNode!

    override func setUpWithError() throws { node = try SandboxNode() }
    override func tearDown() { node?.down() }

    struct Layout {
        var name: String
        var files: [String: String]
        var pulls: Bool
    }

    func testTheVerdictFollowsContainersImagesRules() throws {
        // The route and the CA by the agent (its OS-store copy is taken out below); then each
        // layout replaces /etc/containers and /etc/docker/certs.d in the node.
        let bootstrap = try node.agent(node.bootstrapArguments())
        XCTAssertEqual(bootstrap.status, 0, bootstrap.stdout + bootstrap.stderr)
        let r = node.registry
        let h = String(r.dropLast(4))
        let ca = try String(contentsOfFile: node.caFile, encoding: .utf8)
        let other = try String(contentsOfFile: try CertFixtures.path("other-ca.crt"), encoding: .utf8)
        let stage = try makeTemporaryDirectory("cimage")
        defer { try? FileManager.default.removeItem(atPath: stage) }

        func systemRoots(withCA: Bool) throws {
            let put = try node.exec([
                "sh", "-c",
                "rm -rf /usr/local/share/ca-certificates/* && if [ \"$1\" = yes ]; then cp \"$2\" /usr/local/share/ca-certificates/sandbox-test.crt; fi && chroot \"$0\" update-ca-certificates --fresh >/dev/null 2>&1",
                node.hostRoot, withCA ? "yes" : "no", node.caFile,
            ])
            XCTAssertEqual(put.status, 0, put.stderr)
        }

        func run(_ layout: Layout) throws {
            try? FileManager.default.removeItem(atPath: stage + "/etc")
            try FileManager.default.createDirectory(atPath: stage + "/etc/containers", withIntermediateDirectories: true)
            for (path, text) in layout.files {
                let full = stage + "/etc/" + path
                try FileManager.default.createDirectory(
                    atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try text.write(toFile: full, atomically: true, encoding: .utf8)
            }
            let put = try node.exec([
                "sh", "-c", "rm -rf \"$0/etc/containers\" \"$0/etc/docker\" && cp -a \"$1\"/etc/. \"$0/etc/\"", node.hostRoot, stage,
            ])
            XCTAssertEqual(put.status, 0, put.stderr)
            let skopeo = try node.exec([
                "skopeo", "inspect", "--creds", "\(node.vars["REGISTRY_USER"]!):\(node.vars["REGISTRY_PASSWORD"]!)",
                "docker://\(node.testImage)",
            ])
            let pulled = skopeo.status == 0
            let probe = try node.agent([
                "probe", "--host-root", node.hostRoot, "--registry", r, "--runtime-pull", "off", "--output", "json",
            ])
            let check = try JSONReport.decode(probe.stdout).check("tls-containers-trust")
            // No CRI-O runs here: a refusal is a warning that says skopeo and Podman would refuse.
            let agentPasses = check?.outcome == "pass" || (check?.outcome == "warn" && !(check?.reason.contains("would refuse") ?? true))
            XCTAssertEqual(pulled, layout.pulls, "\(layout.name): skopeo \(pulled ? "got through" : "failed: \(skopeo.stderr)")")
            XCTAssertEqual(
                agentPasses, pulled,
                "\(layout.name): the agent said \(check?.outcome ?? "nothing") (\(check?.reason ?? probe.stdout)) where skopeo \(pulled ? "got through" : "failed: \(skopeo.stderr)")"
            )
        }

        try systemRoots(withCA: false)
        for layout in [
            Layout(name: "no folder", files: [:], pulls: false),
            Layout(name: "containers' certs.d", files: ["containers/certs.d/\(r)/ca.crt": ca], pulls: true),
            Layout(name: "Docker's certs.d, read too", files: ["docker/certs.d/\(r)/ca.crt": ca], pulls: true),
            Layout(
                name: "containers' folder first, with another CA",
                files: ["containers/certs.d/\(r)/other.crt": other, "docker/certs.d/\(r)/ca.crt": ca], pulls: false),
            Layout(
                name: "a .crt without a certificate is passed over",
                files: ["containers/certs.d/\(r)/empty.crt": "nothing\n", "containers/certs.d/\(r)/ca.crt": ca], pulls: true),
            Layout(
                name: "a client certificate without its key",
                files: ["containers/certs.d/\(r)/ca.crt": ca, "containers/certs.d/\(r)/client.cert": other], pulls: false),
            Layout(
                name: "insecure in registries.conf",
                files: ["containers/registries.conf": "[[registry]]\nlocation = \"\(r)\"\ninsecure = true\n"],
                pulls: true),
            Layout(
                name: "a registries.conf.d drop-in that does not decode",
                files: ["containers/certs.d/\(r)/ca.crt": ca, "containers/registries.conf.d/50-bad.conf": "[[registry]\n"], pulls: false),
            Layout(name: "the port-less folder", files: ["containers/certs.d/\(h)/ca.crt": ca], pulls: false),
        ] {
            try run(layout)
        }
        try systemRoots(withCA: true)
        for layout in [
            Layout(name: "no folder, the CA in the system roots", files: [:], pulls: true),
            Layout(name: "another CA beside system roots that verify", files: ["containers/certs.d/\(r)/other.crt": other], pulls: true),
        ] {
            try run(layout)
        }
    }
}
