import AgentCore
import FoundationEssentials
import Kubernetes
import Logging
import TrustStore
import Vocabulary

/// Where `run` takes the registry's CA from: a file (a Secret volume, a projected
/// clusterTrustBundle volume, trust-manager's ConfigMap), or the ClusterTrustBundles the API
/// server selects, listed every `interval` seconds.
enum CASource: Sendable {
    case file(String)
    case clusterTrustBundles(ClusterTrustBundleSelection, api: KubeAPI, interval: Double)
}

/// The CA source as the `run` loop follows it: read at every watch tick, a change from one tick
/// to the next is a reason to reconcile, and the reconcile takes the CA from the last reading.
///
/// The ClusterTrustBundles' trust anchors are taken as kubelet's projected volume takes them:
/// every certificate of every selected bundle, the same certificate once (by its DER), in a
/// stable order (by DER: a certificate moved from one bundle to another changes nothing on the
/// node). Then they go through the CA file's parser and checks. A selection that matches
/// nothing, a bundle without a certificate or one the checks refuse, RBAC that refuses the list,
/// a label selector the API server refuses: the reconcile fails with that reason and changes
/// nothing on the node, so the CA installed before stays (the node keeps pulling with it) while
/// the node condition says what is wrong. An API server that does not answer (or answers 429 or
/// 5xx) keeps the last good selection, with a warning.
final class CAWatch {
    /// What the source holds at one tick.
    enum Reading: Equatable {
        /// The CA file's bytes (nil: unreadable; the reconcile reads it again and says why).
        case file([UInt8]?)
        /// The selected bundles' anchors, normalized; `source` names them in messages.
        case pem([UInt8], source: String)
        /// Why the selection gives no CA.
        case failed(String)
    }

    let source: CASource
    let logger: Logger
    private(set) var reading: Reading?
    private var lister: ClusterTrustBundleLister?
    private var listedAt: UInt64?
    private var fingerprint: [String]?
    private var failure: AgentError?
    private var warned: String?

    /// `client` stands in for the source's API (tests).
    init(_ source: CASource, logger: Logger, client: (any KubeAPIClient)? = nil) {
        self.source = source
        self.logger = logger
        if case .clusterTrustBundles(let selection, var api, _) = source {
            // A list of a few small objects from the API server's watch cache answers in
            // milliseconds; the loop (resolved's watch, SIGTERM) waits for no more than this.
            api.timeoutMilliseconds = 5_000
            lister = ClusterTrustBundleLister(api: client ?? api, selection: selection)
        }
    }

    /// Why a reconcile follows a change of the reading.
    var changed: String {
        if case .file = source { return "the CA file changed" }
        return "the ClusterTrustBundles changed"
    }

    /// Reads the source at `now` (monotonic nanoseconds): the file at every tick; the API when
    /// the interval has passed since the last list (else the last reading).
    func read(now: UInt64) -> Reading {
        switch source {
        case .file(let path):
            let bytes = try? NodeConfig.readFile(path, what: "CA file", limit: CertificateParser.maximumFileSize)
            reading = .file(bytes)
        case .clusterTrustBundles(_, _, let interval):
            if let reading, let listedAt, now &- listedAt < UInt64(interval * 1e9) { return reading }
            listedAt = now
            readBundles()
        }
        return reading ?? .failed("not read yet")
    }

    private func readBundles() {
        guard let lister else { return }
        let listing: ClusterTrustBundleListing
        do throws(ClusterTrustBundleLister.Failure) {
            listing = try lister.list()
        } catch {
            if error.transient, reading != nil {
                let said = Redaction.text("\(error)")
                if said != warned { logger.warning("keeping the ClusterTrustBundles of the last list: \(said)") }
                warned = said
                return
            }
            fail(error.error)
            return
        }
        if warned != nil { logger.info("listing the ClusterTrustBundles works again") }
        warned = nil
        // The same bundles at the same resourceVersions: the same anchors, not parsed again.
        if listing.fingerprint == fingerprint, case .pem = reading { return }
        fingerprint = listing.fingerprint
        do {
            let pem = try Self.anchors(listing, selection: lister.selection, now: Date())
            reading = .pem(pem, source: "\(lister.selection.description) (\(listing.bundles.map(\.name).joined(separator: ", ")))")
            failure = nil
            logger.info(
                "ClusterTrustBundles listed",
                metadata: [
                    "version": "certificates.k8s.io/\(listing.version)", "bundles": "\(listing.fingerprint.joined(separator: ","))",
                ])
        } catch {
            fail(error as? AgentError ?? AgentError(.invalidCertificate, "\(error)"))
        }
    }

    private func fail(_ error: AgentError) {
        failure = error
        fingerprint = nil
        reading = .failed("\(error)")
    }

    /// The CA for a reconcile; throws what the selection failed on (the reconcile then fails and
    /// changes nothing).
    func input() throws -> NodeConfig.CAInput {
        switch reading {
        case .file, nil:
            if case .file(let path) = source { return .file(path) }
            throw failure ?? AgentError(.io, "the ClusterTrustBundles were not listed yet")
        case .pem(let bytes, let source):
            return .pem(bytes, source: source)
        case .failed(let message):
            throw failure ?? AgentError(.io, message)
        }
    }

    /// The trust anchors of the listed bundles, as one PEM file: each certificate once, ordered
    /// by its DER. Each bundle goes through the CA file's parser and checks on its own, so that
    /// an error names the bundle.
    static func anchors(_ listing: ClusterTrustBundleListing, selection: ClusterTrustBundleSelection, now: Date) throws -> [UInt8] {
        guard !listing.bundles.isEmpty else {
            throw AgentError(
                .invalidCertificate,
                "no ClusterTrustBundle matches: the API server (certificates.k8s.io/\(listing.version)) lists no \(selection.description); the CA installed before stays",
                hint:
                    "check the bundles' spec.signerName and labels (kubectl get clustertrustbundles --show-labels), or --ca-cluster-trust-bundle-signer and --ca-cluster-trust-bundle-labels"
            )
        }
        var seen = Set<[UInt8]>()
        var certificates: [Certificate] = []
        for bundle in listing.bundles {
            let source = "ClusterTrustBundle \(bundle.name)"
            guard bundle.trustBundle.contains("-----BEGIN ") else {
                throw AgentError(
                    .invalidCertificate, "\(source) holds no certificate in spec.trustBundle; the CA installed before stays",
                    hint: "put the registry's CA (PEM CERTIFICATE blocks) in the bundle, or select other bundles")
            }
            for certificate in try CertificateParser.parseCAFile(Array(bundle.trustBundle.utf8), source: source, now: now)
            where seen.insert(certificate.der).inserted {
                certificates.append(certificate)
            }
        }
        certificates.sort { $0.der.lexicographicallyPrecedes($1.der) }
        return Array(certificates.map(\.pem).joined().utf8)
    }
}
