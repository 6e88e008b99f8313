import AgentCore
import Foundation
import HostSystem
import Kubernetes
import Logging
import TestSupport
import TrustStore
import Vocabulary
import XCTest

@testable import NodeAgent

/// An API that answers every list with `answer`, or fails as `failure` says.
final class BundleListFakeAPI: KubeAPIClient {
    var answer: (status: Int, json: JSONValue?) = (200, nil)
    var failure: AgentError?
    var lists = 0

    func request(_ method: String, _ path: String, contentType: String?, body: JSONValue?) throws -> (status: Int, json: JSONValue?) {
        lists += 1
        if let failure { throw failure }
        return answer
    }

    func hint(_ status: Int, needs: String) -> String? { "the service account needs \(needs)" }
}

/// The CA from ClusterTrustBundles as `run` follows it: the anchors of the selected bundles
/// (each once, in a stable order, through the CA file's checks), what makes a reconcile, and
/// what fails closed.
final class CAWatchTests: XCTestCase {
    let signer = "example.com/registry-ca"

    func pem(_ name: String) throws -> String { try String(contentsOfFile: try CertFixtures.path(name), encoding: .utf8) }

    func listing(_ bundles: [(String, String)], rv: String = "1") -> ClusterTrustBundleListing {
        ClusterTrustBundleListing(
            version: "v1beta1", resourceVersion: "9",
            bundles: bundles.map { ClusterTrustBundle(name: $0.0, resourceVersion: rv, signerName: signer, trustBundle: $0.1) })
    }

    func selection(_ labels: String = "app=registry-ca") throws -> ClusterTrustBundleSelection {
        try ClusterTrustBundleSelection(signerName: signer, labelSelector: labels)
    }

    func testTheAnchorsAreEachCertificateOnceInAStableOrder() throws {
        let ca = try pem("ca.crt")
        let other = try pem("other-ca.crt")
        let one = try CAWatch.anchors(listing([("a", ca + other), ("b", other)]), selection: try selection(), now: Date())
        let moved = try CAWatch.anchors(listing([("a", other), ("b", ca)]), selection: try selection(), now: Date())
        XCTAssertEqual(one, moved, "the same certificates, wherever they are, give the same file")
        let parsed = try CertificateParser.parseCAFile(one, source: "anchors")
        XCTAssertEqual(parsed.count, 2)
        XCTAssertEqual(Set(parsed.map(\.subject)), Set(try CertificateParser.parse(Array((ca + other).utf8), source: "x").map(\.subject)))
        XCTAssertTrue(parsed[0].der.lexicographicallyPrecedes(parsed[1].der))
    }

    func testWhatGivesNoCAFailsNamingTheBundle() throws {
        assertAgentError(
            try CAWatch.anchors(listing([]), selection: try selection(), now: Date()), .invalidCertificate,
            "no ClusterTrustBundle matches", "ClusterTrustBundles of signer example.com/registry-ca with labels app=registry-ca",
            "the CA installed before stays", "kubectl get clustertrustbundles --show-labels")
        assertAgentError(
            try CAWatch.anchors(listing([("a", try pem("ca.crt")), ("empty", "")]), selection: try selection(), now: Date()),
            .invalidCertificate, "ClusterTrustBundle empty holds no certificate")
        assertAgentError(
            try CAWatch.anchors(
                listing([("a", try pem("ca.crt")), ("leaf", try pem("leaf.crt"))]), selection: try selection(), now: Date()),
            .invalidCertificate, "ClusterTrustBundle leaf: 'CN=registry.example,O=node-agent tests' is not a CA certificate")
        assertAgentError(
            try CAWatch.anchors(listing([("old", try pem("expired-ca.crt"))]), selection: try selection(), now: Date()),
            .invalidCertificate, "ClusterTrustBundle old: CA 'CN=Expired CA,O=node-agent tests' expired")
    }

    func list(_ items: [(String, String, String)]) -> JSONValue {
        [
            "kind": "ClusterTrustBundleList", "metadata": ["resourceVersion": "50"],
            "items": .array(
                items.map {
                    [
                        "metadata": ["name": .string($0.0), "resourceVersion": .string($0.1)],
                        "spec": ["signerName": .string(signer), "trustBundle": .string($0.2)],
                    ]
                }),
        ]
    }

    func testAChangeIsAReadingOfItsOwnAndAnOutageKeepsTheLastOne() throws {
        let api = BundleListFakeAPI()
        let source = CASource.clusterTrustBundles(
            try selection(),
            api: try XCTUnwrap(KubeAPI.resolve(url: "https://127.0.0.1:6443", tokenFile: "/t", caFile: "/c", environment: [:])),
            interval: 1)
        let watch = CAWatch(source, logger: Logger(label: "test"), client: api)
        let second: UInt64 = 1_000_000_000
        api.answer = (200, list([("a", "1", try pem("ca.crt"))]))
        let first = watch.read(now: 0)
        guard case .pem(let bytes, let named) = first else { return XCTFail("\(first)") }
        XCTAssertEqual(try CertificateParser.parseCAFile(bytes, source: "x").count, 1)
        XCTAssertEqual(named, "ClusterTrustBundles of signer example.com/registry-ca with labels app=registry-ca (a)")
        guard case .pem = try watch.input() else { return XCTFail("no PEM input") }

        // Within the interval: no list.
        XCTAssertEqual(watch.read(now: second / 2), first)
        XCTAssertEqual(api.lists, 1)
        // Unchanged bundles: the same reading (no reconcile).
        XCTAssertEqual(watch.read(now: second), first)
        // The API server is away or overloaded: the last selection stays, no reconcile.
        api.failure = AgentError(.io, "connection refused")
        XCTAssertEqual(watch.read(now: 2 * second), first)
        api.failure = nil
        api.answer = (503, nil)
        XCTAssertEqual(watch.read(now: 3 * second), first)
        // A new CA in the bundle: a new reading.
        api.answer = (200, list([("a", "2", try pem("ca.crt") + pem("other-ca.crt"))]))
        let rotated = watch.read(now: 4 * second)
        XCTAssertNotEqual(rotated, first)
        // The selection matches nothing any more: a failed reading, and the reconcile fails with its reason.
        api.answer = (200, list([]))
        guard case .failed(let why) = watch.read(now: 5 * second) else { return XCTFail("not failed") }
        XCTAssertTrue(why.contains("no ClusterTrustBundle matches"), why)
        assertAgentError(try watch.input(), .invalidCertificate, "no ClusterTrustBundle matches")
        // RBAC taken away: not the API's passing state, a failure of its own.
        api.answer = (403, ["kind": "Status", "reason": "Forbidden", "message": "forbidden"])
        guard case .failed(let refused) = watch.read(now: 6 * second) else { return XCTFail("not failed") }
        XCTAssertTrue(refused.contains("HTTP 403: Forbidden: forbidden"), refused)
    }

    func testAtStartAnAPIServerThatDoesNotAnswerIsTheReconcilesError() throws {
        let api = BundleListFakeAPI()
        api.failure = AgentError(.io, "connect to 127.0.0.1:6443: connection refused")
        let source = CASource.clusterTrustBundles(
            try selection(),
            api: try XCTUnwrap(KubeAPI.resolve(url: "https://127.0.0.1:6443", tokenFile: "/t", caFile: "/c", environment: [:])),
            interval: 1)
        let watch = CAWatch(source, logger: Logger(label: "test"), client: api)
        guard case .failed = watch.read(now: 0) else { return XCTFail("not failed") }
        assertAgentError(try watch.input(), .io, "the Kubernetes API did not answer", "connection refused")
    }

    func run(_ arguments: [String]) throws -> RunCommand {
        try RunCommand.parse(["--registry", "registry-service.openfaas.svc.cluster.local:443"] + arguments)
    }

    func testOneCASourceExactly() throws {
        let api = ["--kube-api", "https://127.0.0.1:6443"]
        guard case .file("/ca.crt") = try run(["--ca", "/ca.crt"]).caSource() else { return XCTFail("not the file") }
        guard case .clusterTrustBundles(let s, _, 10) = try run(["--ca-cluster-trust-bundle-signer", signer] + api).caSource() else {
            return XCTFail("not the bundles")
        }
        XCTAssertEqual(s, try ClusterTrustBundleSelection(signerName: signer, labelSelector: ""))
        assertAgentError(try run([]).caSource(), .invalidInput, "no CA: --ca or --ca-cluster-trust-bundle-signer is required")
        assertAgentError(
            try run(["--ca", "/ca.crt", "--ca-cluster-trust-bundle-signer", signer] + api).caSource(), .invalidInput,
            "--ca and --ca-cluster-trust-bundle-signer both name the CA's source")
        assertAgentError(
            try run(["--ca", "/ca.crt", "--ca-cluster-trust-bundle-labels", "app=x"]).caSource(), .invalidInput,
            "--ca-cluster-trust-bundle-labels selects ClusterTrustBundles, but the CA comes from --ca")
        assertAgentError(
            try run(["--ca-cluster-trust-bundle-signer", "registry-ca"] + api).caSource(), .invalidInput, "is not a signer name")
        assertAgentError(
            try run(["--ca-cluster-trust-bundle-signer", signer, "--ca-cluster-trust-bundle-interval", "0"] + api).caSource(),
            .invalidInput,
            "--ca-cluster-trust-bundle-interval must be 0.05-3600 s")
    }
}
