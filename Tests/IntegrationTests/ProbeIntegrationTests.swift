import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// `node-agent probe` against real servers in a sandbox node that `bootstrap` set up: every
/// failure must come out with its own reason.
final class ProbeIntegrationTests: XCTestCase {
    nonisolated(unsafe) static var node: SandboxNode?
    var node: SandboxNode { Self.node! }
    let domain = "openfaas.svc.cluster.local"

    override class func setUp() {
        super.setUp()
        do {
            let n = try SandboxNode()
            node = n
            let run = try n.agent(n.bootstrapArguments())
            if run.status != 0 { print("bootstrap failed: \(run.stdout) \(run.stderr)") }
            // The other registries (open-registry, the broken ones) rely on the OS store, which
            // holds the sandbox's CA only since this bootstrap. containerd's Go loads the system
            // roots once, at its first TLS connection, and bootstrap's own pull may make that
            // before the store is rebuilt (the pull overlaps the rebuild; then open-registry's
            // pull fails with "certificate signed by unknown authority" and the verdict says so,
            // as it did in one clean-clone run): restarted, it reads the store as it now is.
            if try n.control(["restart", "containerd"]) != 0 { print("containerd did not restart") }
        } catch {
            print("sandbox node failed: \(error)")
        }
    }

    override class func tearDown() {
        node?.down()
        node = nil
        super.tearDown()
    }

    override func setUpWithError() throws {
        try requireRoot()
        guard Self.node != nil else { throw AgentError(.io, "the sandbox node did not start") }
    }

    func probe(_ registry: String, _ extra: [String] = []) throws -> (status: Int32, report: JSONReport, output: String) {
        let run = try node.agent(["probe", "--host-root", node.hostRoot, "--registry", registry, "--output", "json"] + extra)
        XCTAssertTrue(run.stderr.isEmpty, run.stderr)
        return (run.status, try JSONReport.decode(run.stdout), run.stdout)
    }

    func testTheSetUpRegistryIsReadyAndProbingChangesNothing() throws {
        let before = node.snapshot()
        let r = try probe(node.registry)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.report.ready)
        for name in [
            "dns-cluster", "dns-host", "dns-resolved", "tcp", "tls-os-trust", "tls-runtime-trust", "registry-api", "certs-d",
            "coredns-loop-hazard",
        ] {
            XCTAssertEqual(r.report.check(name)?.outcome, "pass", "\(name): \(r.report.check(name)?.reason ?? "missing")")
        }
        // The cluster DNS came from kubelet's config: no --cluster-dns was given.
        XCTAssertEqual(r.report.check("dns-cluster")?.details["server"], "127.0.0.10")
        XCTAssertEqual(r.report.check("tls-os-trust")?.details["verify_code"], "0")
        XCTAssertNotNil(r.report.check("tls-os-trust")?.details["earliest_cert_expiry"])
        XCTAssertEqual(node.snapshot().difference(from: before), [])

        // The sandbox's certificates live 30 days: a 60-day threshold warns, and a warning is still ready.
        let soon = try probe(node.registry, ["--expiry-warning-days", "60"])
        XCTAssertEqual(soon.status, 0)
        XCTAssertEqual(soon.report.check("tls-os-trust")?.outcome, "warn")
        XCTAssertTrue(soon.report.check("tls-os-trust")?.reason.contains("renew soon") == true)
    }

    func testEachBrokenRegistryFailsForItsOwnReason() throws {
        let cases: [(name: String, code: String?, phrase: String)] = [
            ("expired-registry", "10", "expired"),
            ("foreign-registry", "20", "signed by 'CN=Foreign CA"),
            ("wrong-san-registry", "62", "add it to the certificate's subjectAltName"),
            ("silent-registry", nil, "no TLS handshake came within the timeout"),
        ]
        for c in cases {
            let r = try probe("\(c.name).\(domain)", ["--timeout", "1"])
            XCTAssertEqual(r.status, 1, c.name)
            XCTAssertEqual(r.report.check("dns-host")?.outcome, "pass", c.name)
            XCTAssertEqual(r.report.check("tcp")?.outcome, "pass", c.name)
            // containerd is the sandbox node's runtime: its view (tls-runtime-trust) decides, and
            // the OS's own tools' view (OpenSSL's, tls-os-trust) gives the same reason as a warning.
            let tls = try XCTUnwrap(r.report.check("tls-runtime-trust"), c.name)
            XCTAssertEqual(tls.outcome, "fail", c.name)
            XCTAssertEqual(tls.details["verify_code"], c.code, c.name)
            XCTAssertTrue(tls.reason.contains(c.phrase), "\(c.name): \(tls.reason)")
            let os = try XCTUnwrap(r.report.check("tls-os-trust"), c.name)
            XCTAssertEqual(os.outcome, "warn", c.name)
            XCTAssertEqual(os.details["verify_code"], c.code, c.name)
            XCTAssertTrue(os.reason.contains("curl, wget, apt"), "\(c.name): \(os.reason)")
            XCTAssertEqual(r.report.check("registry-api")?.outcome, "fail", c.name)
        }
        let open = try probe("open-registry.\(domain)")
        XCTAssertEqual(open.status, 0, open.output)
        XCTAssertTrue(open.report.check("registry-api")?.reason.contains("200 (no auth required)") == true)
        // No certs.d folder for it: pulls would rely on the OS store, and the report says so.
        XCTAssertEqual(open.report.check("certs-d")?.outcome, "warn")
    }

    func testDNSAnswersAreToldApart() throws {
        let missing = try probe("nope.\(domain)")
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.report.check("dns-cluster")?.reason.contains("NXDOMAIN") == true)
        XCTAssertTrue(missing.report.check("dns-host")?.reason.contains("NXDOMAIN") == true)
        XCTAssertEqual(missing.report.check("tcp")?.outcome, "fail")

        // 60 addresses do not fit a 512-byte UDP answer: all of them arrive over TCP.
        let many = try probe("many.\(domain)", ["--timeout", "0.5"])
        XCTAssertEqual(many.report.check("dns-cluster")?.details["addresses"]?.split(separator: ",").count, 60)

        let refused = try probe("registry.example.org", ["--domain", "example.org"])
        XCTAssertEqual(refused.report.check("dns-cluster")?.details["answer"], "REFUSED (the server refuses to answer this name)")

        let silent = try probe(node.registry, ["--cluster-dns", node.vars["SILENT_DNS"]!, "--timeout", "0.5"])
        XCTAssertEqual(silent.report.check("dns-cluster")?.details["answer"], "no answer (timeout)")
        XCTAssertTrue(silent.report.check("dns-cluster")?.reason.contains("did not answer") == true)
        // The host path does not depend on the cluster DNS flag: it still resolves, and the
        // runtime's own pull gets through, so the node can pull: ready, the cluster DNS a warning.
        XCTAssertEqual(silent.report.check("dns-host")?.outcome, "pass")
        XCTAssertEqual(silent.report.check("runtime-pull")?.outcome, "pass")
        XCTAssertEqual(silent.status, 0)
        XCTAssertEqual(silent.report.check("dns-cluster")?.outcome, "warn")
        XCTAssertEqual(
            try probe(node.registry, ["--cluster-dns", node.vars["SILENT_DNS"]!, "--timeout", "0.5", "--runtime-pull", "off"]).status, 1,
            "without the runtime's word, the silent cluster DNS fails the node")
    }

    func testCredentialsAreCheckedWithBasicAndBearerAuthAndNeverPrinted() throws {
        let dir = try makeTemporaryDirectory("auth")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let user = node.vars["REGISTRY_USER"]!
        let password = node.vars["REGISTRY_PASSWORD"]!
        func config(_ pass: String) throws -> String {
            let path = dir + "/\(pass).json"
            let auth = Data("\(user):\(pass)".utf8).base64EncodedString()
            try #"{"auths":{"registry-service.\#(domain)":{"auth":"\#(auth)"},"token-registry.\#(domain)":{"auth":"\#(auth)"}}}"#
                .write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let good = try config(password)
        let bad = try config("wrong-password")
        // The token realm is on another host (token.<domain>): allowed by name, as a user would.
        let realm = ["--token-realm-hosts", "token.\(domain)"]
        for (registry, scheme) in [("registry-service.\(domain)", "basic"), ("token-registry.\(domain)", "bearer")] {
            let ok = try probe(registry, ["--registry-auth", good] + realm)
            let api = try XCTUnwrap(ok.report.check("registry-api"))
            XCTAssertEqual(api.outcome, "pass", "\(registry): \(api.reason)")
            XCTAssertEqual(api.details["auth"], scheme)
            XCTAssertEqual(api.details["status_with_credentials"], "200")
            XCTAssertFalse(ok.output.contains(password), "the password was printed")
            XCTAssertFalse(ok.output.contains(Data("\(user):\(password)".utf8).base64EncodedString()), "the auth string was printed")

            // 60 addresses do not fit a 512-byte UDP answer: all of them arrive over TCP.
            let many = try probe("many.\(domain)", ["--timeout", "0.5"])
            XCTAssertEqual(many.report.check("dns-cluster")?.details["addresses"]?.split(separator: ",").count, 60)

            let refused = try probe(registry, ["--registry-auth", bad] + realm)
            XCTAssertEqual(refused.status, 1)
            XCTAssertEqual(refused.report.check("registry-api")?.outcome, "fail")
            XCTAssertTrue(
                refused.report.check("registry-api")?.reason.contains(scheme == "basic" ? "refused the credentials" : "answered 401")
                    == true,
                refused.report.check("registry-api")?.reason ?? "")
        }
        // Without credentials, a 401 with a challenge still proves the API is alive.
        let anonymous = try probe("token-registry.\(domain)")
        XCTAssertTrue(anonymous.report.check("registry-api")?.reason.contains("bearer challenge") == true)
    }

    func testShortNamesResolveOnlyThroughTheSearchListAndMustBeInTheSAN() throws {
        let aliases = ["--alias", "registry-service.openfaas.svc,registry-service.openfaas"]
        let plain = try probe(node.registry, aliases)
        XCTAssertEqual(plain.status, 1)
        XCTAssertTrue(plain.report.check("alias:registry-service.openfaas.svc")?.reason.contains("search domain") == true)

        // The node's resolv.conf with a search list, as some node images have.
        let resolvConf = node.hostRoot + "/etc/resolv.conf"
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: resolvConf)
        try FileManager.default.removeItem(atPath: resolvConf)
        defer {
            try? FileManager.default.removeItem(atPath: resolvConf)
            try? FileManager.default.createSymbolicLink(atPath: resolvConf, withDestinationPath: link)
        }
        try "nameserver 127.0.0.53\nsearch svc.cluster.local cluster.local\n".write(toFile: resolvConf, atomically: true, encoding: .utf8)
        let searched = try probe(node.registry, aliases)
        let inSAN = try XCTUnwrap(searched.report.check("alias:registry-service.openfaas.svc"))
        XCTAssertEqual(inSAN.outcome, "pass", inSAN.reason)
        XCTAssertTrue(inSAN.reason.contains("as registry-service.openfaas.svc.cluster.local"), inSAN.reason)
        let notInSAN = try XCTUnwrap(searched.report.check("alias:registry-service.openfaas"))
        XCTAssertEqual(notInSAN.outcome, "fail")
        XCTAssertEqual(notInSAN.details["verify_code"], "62")
    }

    func testDeadlineBoundsTheWholeRun() throws {
        let r = try probe("silent-registry.\(domain)", ["--timeout", "1", "--deadline", "0.6"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.report.checks.contains { $0.reason.contains("total deadline") }, r.output)
    }
}
