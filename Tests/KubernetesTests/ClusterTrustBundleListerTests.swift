import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import Kubernetes

/// An API that answers each GET by the version in its path, and records the paths asked.
final class VersionedFakeKubeAPI: KubeAPIClient {
    var answers: [String: (status: Int, json: JSONValue?)] = [:]
    var failure: AgentError?
    var paths: [String] = []

    func request(_ method: String, _ path: String, contentType: String?, body: JSONValue?) throws -> (status: Int, json: JSONValue?) {
        paths.append(path)
        if let failure { throw failure }
        let version = path.split(separator: "/").dropFirst(2).first.map(String.init) ?? ""
        return answers[version] ?? (
            404, ["kind": "Status", "reason": "NotFound", "message": "the server could not find the requested resource"]
        )
    }

    func hint(_ status: Int, needs: String) -> String? { "the service account needs \(needs)" }
}

/// The agent's list of ClusterTrustBundles: the query it sends, the API version it settles on,
/// and which failures are the API's passing state (kept through) and which need someone to act.
final class ClusterTrustBundleListerTests: XCTestCase {
    let signer = "example.com/registry-ca"

    func list(_ items: [JSONValue]) -> JSONValue {
        [
            "kind": "ClusterTrustBundleList", "apiVersion": "certificates.k8s.io/v1beta1", "metadata": ["resourceVersion": "77"],
            "items": .array(items),
        ]
    }

    func bundle(_ name: String, rv: String, signer: String? = nil, pem: String = "PEM") -> JSONValue {
        [
            "metadata": ["name": .string(name), "resourceVersion": .string(rv)],
            "spec": ["signerName": .string(signer ?? self.signer), "trustBundle": .string(pem)],
        ]
    }

    func testTheSelectionIsTheQueryAndTheVersionIsFoundOnce() throws {
        let api = VersionedFakeKubeAPI()
        api.answers["v1beta1"] = (
            200, list([bundle("example.com:registry-ca:b", rv: "12"), bundle("example.com:registry-ca:a", rv: "11")])
        )
        let lister = ClusterTrustBundleLister(
            api: api, selection: try ClusterTrustBundleSelection(signerName: signer, labelSelector: " app=registry, env in (prod) "))
        let listing = try lister.list()
        XCTAssertEqual(
            api.paths,
            [
                "/apis/certificates.k8s.io/v1/clustertrustbundles?fieldSelector=spec.signerName%3Dexample.com/registry-ca&labelSelector=app%3Dregistry,%20env%20in%20(prod)",
                "/apis/certificates.k8s.io/v1beta1/clustertrustbundles?fieldSelector=spec.signerName%3Dexample.com/registry-ca&labelSelector=app%3Dregistry,%20env%20in%20(prod)",
            ])
        XCTAssertEqual(listing.version, "v1beta1")
        XCTAssertEqual(listing.bundles.map(\.name), ["example.com:registry-ca:a", "example.com:registry-ca:b"])
        XCTAssertEqual(listing.fingerprint, ["example.com:registry-ca:a@11", "example.com:registry-ca:b@12"])
        api.paths = []
        _ = try lister.list()
        XCTAssertEqual(api.paths.count, 1)
        XCTAssertTrue(api.paths[0].hasPrefix("/apis/certificates.k8s.io/v1beta1/"), api.paths[0])

        // v1 when the API server serves it (GA); no label selector when none is given.
        let ga = VersionedFakeKubeAPI()
        ga.answers["v1"] = (200, list([]))
        let gaLister = ClusterTrustBundleLister(api: ga, selection: try ClusterTrustBundleSelection(signerName: signer, labelSelector: ""))
        XCTAssertEqual(try gaLister.list().version, "v1")
        XCTAssertEqual(
            ga.paths, ["/apis/certificates.k8s.io/v1/clustertrustbundles?fieldSelector=spec.signerName%3Dexample.com/registry-ca"])
    }

    func failure(_ api: VersionedFakeKubeAPI) throws -> ClusterTrustBundleLister.Failure {
        let lister = ClusterTrustBundleLister(
            api: api, selection: try ClusterTrustBundleSelection(signerName: signer, labelSelector: "app=x"))
        do {
            _ = try lister.list()
        } catch {
            return error
        }
        XCTFail("the list succeeded")
        throw AgentError(.io, "no failure")
    }

    func testWhatNeedsSomeoneToActIsNotTransient() throws {
        // No version serves the resource: the feature gate, the beta API.
        let none = try failure(VersionedFakeKubeAPI())
        XCTAssertFalse(none.transient)
        XCTAssertTrue(none.error.message.contains("serves no ClusterTrustBundles"), none.error.message)
        XCTAssertTrue(none.error.hint?.contains("--runtime-config=certificates.k8s.io/v1beta1/clustertrustbundles=true") ?? false)

        // RBAC: the API's own words and what the ClusterRole needs.
        let api = VersionedFakeKubeAPI()
        api.answers["v1"] = (
            403,
            [
                "kind": "Status", "reason": "Forbidden",
                "message":
                    "clustertrustbundles.certificates.k8s.io is forbidden: User \"system:serviceaccount:node-agent:node-agent\" cannot list resource",
            ]
        )
        let forbidden = try failure(api)
        XCTAssertFalse(forbidden.transient)
        XCTAssertTrue(
            forbidden.error.message.contains("HTTP 403: Forbidden: clustertrustbundles.certificates.k8s.io is forbidden"),
            forbidden.error.message)
        XCTAssertEqual(
            forbidden.error.hint,
            "the service account's ClusterRole needs list on clustertrustbundles in certificates.k8s.io (daemonset.yaml has the rule)")

        // A label selector the API server refuses.
        api.answers["v1"] = (400, ["kind": "Status", "reason": "BadRequest", "message": "found '=', expected: ',' or 'end of string'"])
        let selector = try failure(api)
        XCTAssertFalse(selector.transient)
        XCTAssertTrue(selector.error.hint?.contains("--ca-cluster-trust-bundle-labels") ?? false)
    }

    func testTheAPIsPassingStateIsTransient() throws {
        let api = VersionedFakeKubeAPI()
        for status in [429, 500, 503] {
            api.answers["v1"] = (status, nil)
            let f = try failure(api)
            XCTAssertTrue(f.transient, "\(status)")
            XCTAssertTrue(f.error.message.contains("HTTP \(status)"), f.error.message)
        }
        api.failure = AgentError(.io, "connect to 10.96.0.1:443: connection refused")
        XCTAssertTrue(try failure(api).transient)
        // An answer that did not apply the field selector is not taken.
        api.failure = nil
        api.answers["v1"] = (200, list([bundle("other.example:x", rv: "1", signer: "other.example/x")]))
        let unfiltered = try failure(api)
        XCTAssertTrue(unfiltered.error.message.contains("is of signer 'other.example/x'"), unfiltered.error.message)
    }

    func testSignerNamesAreCheckedAsTheAPIServerDoes() throws {
        for good in ["example.com/registry-ca", "a.b/c.d-e", "kubernetes.io/kube-apiserver-serving"] {
            XCTAssertNoThrow(try ClusterTrustBundleSelection(signerName: good, labelSelector: ""), good)
        }
        for bad in ["", "registry-ca", "example/registry-ca", "example.com/a/b", "Example.com/x", "example.com/", "example.com/x y"] {
            assertAgentError(
                try ClusterTrustBundleSelection(signerName: bad, labelSelector: ""), .invalidInput, "is not a signer name",
                "example.com/registry-ca")
        }
        assertAgentError(
            try ClusterTrustBundleSelection(signerName: signer, labelSelector: "app=x\nenv=y"), .invalidInput, "control character")
    }
}
