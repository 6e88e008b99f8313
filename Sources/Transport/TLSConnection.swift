import COpenSSL
import FoundationEssentials
import HostSystem
import TrustStore
import Vocabulary

#if canImport(Glibc)
    import Glibc
#endif

/// What a TLS check trusts: a CA file as OpenSSL reads it (a file named on this machine; the OS
/// bundle of the host, for the OS's own tools, read inside its root), or the pool containerd's Go
/// builds for a host (`GoTrustPool`), where every certificate is an anchor.
public enum TrustSource: Sendable {
    case file(String)
    case hostFile(HostFiles, HostPath)
    case pool(GoTrustPool)
}

/// A TLS client connection on OpenSSL that verifies as Go (and so containerd) does: trust from
/// one CA file, SNI set to the registry host, the name checked against the SAN only (never the
/// CN). Verification runs but does not abort the handshake, so that the exact OpenSSL verify
/// code can be reported.
/// A TLS client context whose trust is one CA file. Loading is the slow part (OpenSSL 3 decodes
/// about 5,000 certificates a second), so it happens before the connection is opened: a large
/// bundle must not eat the peer's timeout and be reported as a stalling server. A PEM bundle is
/// indexed, not decoded (`TrustIndex`): a handshake decodes only the roots that the peer chain's
/// names lead to, which are the only ones OpenSSL's own lookup would consider, so the verify code
/// and chain are those of the whole file loaded (a test compares the two).
package final class TLSTrust {
    package let context: OpaquePointer
    /// Every trusted certificate ends a chain (Go's rule; a pool's).
    package let anyTrustedIsAnAnchor: Bool
    /// nil when the context holds the whole file.
    private let index: TrustIndex?
    private let lock = PlainLock()
    /// The OpenSSL canonical-name hash of each indexed subject, computed on the first
    /// verification that byte-equal names did not pass.
    private var canonicalKeys: [UInt?]?
    private var decoded = 0

    /// Roots decoded by the last verification (tests: a few, never the whole bundle).
    package var lastDecoded: Int { lock.withLock { decoded } }

    /// `indexed: false` loads the whole file up front (what the index must agree with; tests).
    /// The bundle is a file named on this machine, read with the guards of every file read
    /// (regular files only, bounded).
    package convenience init(trustFile: String, indexed: Bool = true) throws {
        let bytes = try HostFiles.readLocalFile(trustFile, what: "trust bundle", limit: 16 << 20)
        try self.init(pem: bytes, naming: trustFile, indexed: indexed)
    }

    /// A bundle's bytes (PEM): indexed; where the index refuses them, loaded whole as OpenSSL
    /// loads a CA file (every certificate and CRL OpenSSL's PEM reader takes).
    package init(pem bytes: [UInt8], naming name: String, indexed: Bool = true) throws {
        anyTrustedIsAnAnchor = false
        let ctx = try Self.clientContext()
        index = indexed ? TrustIndex(pem: bytes) : nil
        if index == nil {
            let added = bytes.withUnsafeBytes { node_agent_store_add_pem(SSL_CTX_get_cert_store(ctx), $0.baseAddress, Int32($0.count)) }
            guard added > 0 else {
                ERR_clear_error()
                SSL_CTX_free(ctx)
                throw AgentError(.io, "cannot load trust from \(name)")
            }
        }
        context = ctx
        if index != nil { installVerifier() }
    }

    /// A context trusting exactly `pool`'s certificates, each an anchor. An empty pool trusts
    /// nothing (every verification fails: unable to get the local issuer).
    package init(pool: GoTrustPool) throws {
        anyTrustedIsAnAnchor = true
        context = try Self.clientContext()
        index = TrustIndex(ders: pool.certificates)
        installVerifier()
    }

    /// A TLS 1.2+ client context that verifies without aborting the handshake (the verify code
    /// is read afterwards).
    private static func clientContext() throws -> OpaquePointer {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw AgentError(.io, "OpenSSL: cannot create a TLS context") }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        _ = node_agent_ssl_ctx_set_min_tls12(ctx)
        return ctx
    }

    private func installVerifier() {
        // The callback replaces OpenSSL's X509_verify_cert for this context; the trust object
        // outlives every connection made with it (each TLSConnection holds it).
        SSL_CTX_set_cert_verify_callback(
            context,
            { storeContext, arg in
                guard let storeContext, let arg else { return 0 }
                return Unmanaged<TLSTrust>.fromOpaque(arg).takeUnretainedValue().verify(storeContext)
            }, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Verifies `storeContext` as a handshake with this trust verifies it: with the index's
    /// roots, or OpenSSL's own verification where the whole file is loaded.
    package func verifyContext(_ storeContext: OpaquePointer) -> Int32 {
        index == nil ? X509_verify_cert(storeContext) : verify(storeContext)
    }

    /// Verifies the peer's chain in `storeContext` with the bundle's roots whose subjects are the
    /// chain's names (and the issuers of those, for cross-signed roots): byte-equal names first,
    /// then, if that does not verify, names equal in OpenSSL's canonical form.
    private func verify(_ storeContext: OpaquePointer) -> Int32 {
        guard let leaf = X509_STORE_CTX_get0_cert(storeContext) else { return 0 }
        guard let index else { return verify(storeContext, trusting: []) }
        var chain = [leaf]
        if let untrusted = X509_STORE_CTX_get0_untrusted(storeContext) {
            for i in 0..<node_agent_sk_x509_num(untrusted) { if let x = node_agent_sk_x509_value(untrusted, i) { chain.append(x) } }
        }
        var names = Set<[UInt8]>()
        for x in chain {
            names.insert(Self.der(X509_get_subject_name(x)))
            names.insert(Self.der(X509_get_issuer_name(x)))
        }
        let exact = index.certificates(named: names)
        let result = verify(storeContext, trusting: exact)
        guard result != 1 else { return result }
        let keys: [UInt?] = lock.withLock {
            if canonicalKeys == nil { canonicalKeys = index.entries.map { Self.canonicalKey(Array($0.subject)) } }
            return canonicalKeys!
        }
        let canonical = index.certificates(named: names, subjectKeys: keys, key: Self.canonicalKey)
        // A superset of `exact`; only new candidates can change the outcome.
        return canonical.count > exact.count ? verify(storeContext, trusting: canonical) : result
    }

    /// Verifies with exactly `roots` trusted; the outcome lands in `storeContext`.
    private func verify(_ storeContext: OpaquePointer, trusting roots: [TrustIndex.Entry]) -> Int32 {
        guard let stack = node_agent_sk_x509_new() else { return -1 }
        defer { node_agent_sk_x509_pop_free(stack) }
        for root in roots {
            root.der.withUnsafeBufferPointer { buffer in
                var p: UnsafePointer<UInt8>? = buffer.baseAddress
                if let x = d2i_X509(nil, &p, buffer.count) { _ = node_agent_sk_x509_push(stack, x) }
            }
        }
        lock.withLock { decoded = roots.count }
        return node_agent_verify_into(storeContext, Self.emptyStore, stack)
    }

    /// OpenSSL's hash of a DER name in its canonical form (the c_rehash hash).
    private static func canonicalKey(_ der: [UInt8]) -> UInt? {
        der.withUnsafeBufferPointer { buffer in
            var p: UnsafePointer<UInt8>? = buffer.baseAddress
            guard let name = d2i_X509_NAME(nil, &p, buffer.count) else {
                ERR_clear_error()
                return nil
            }
            defer { X509_NAME_free(name) }
            var ok: Int32 = 0
            let hash = X509_NAME_hash_ex(name, nil, nil, &ok)
            return ok == 1 ? UInt(hash) : nil
        }
    }

    /// A name as DER (i2d_X509_NAME).
    package static func der(_ name: OpaquePointer?) -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        let length = i2d_X509_NAME(name, &out)
        guard length > 0, let out else { return [] }
        defer { node_agent_openssl_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: Int(length)))
    }

    /// The store a verification with an explicit list of roots starts from (it holds nothing).
    nonisolated(unsafe) private static let emptyStore = X509_STORE_new()

    deinit { SSL_CTX_free(context) }
}

package final class TLSConnection {
    package let socket: Socket
    package let trust: TLSTrust
    package let ssl: OpaquePointer

    /// `checkTime`: verify validity periods at that time instead of now (OpenSSL's
    /// X509_VERIFY_PARAM_set_time, which the verify callback's copy of the parameters keeps),
    /// to tell a certificate valid a little later from one that is wrong.
    /// A pool's trust (`TLSTrust.anyTrustedIsAnAnchor`) ends a chain at any of its certificates,
    /// as in Go's `crypto/x509` (and so containerd), where a pool certificate is an anchor whether
    /// or not it is self-signed: an intermediate given as the CA verifies (OpenSSL's
    /// X509_V_FLAG_PARTIAL_CHAIN; without it OpenSSL wants the chain up to a root, code 2).
    package init(socket: Socket, trust: TLSTrust, serverName: String, serverIsIP: Bool, checkTime: Date? = nil) throws {
        self.socket = socket
        self.trust = trust
        guard let s = SSL_new(trust.context) else { throw AgentError(.io, "OpenSSL: cannot create a TLS session") }
        ssl = s
        SSL_set_fd(s, socket.fd)
        if !serverIsIP { _ = node_agent_ssl_set_sni(s, serverName) }
        SSL_set_hostflags(s, UInt32(X509_CHECK_FLAG_NEVER_CHECK_SUBJECT))
        SSL_set1_host(s, serverName)
        Self.configure(SSL_get0_param(s), checkTime: checkTime, anchors: trust.anyTrustedIsAnAnchor)
    }

    /// The settings that differ between trusts and tries: the time validity is checked at (now
    /// when nil), and whether any trusted certificate ends a chain.
    private static func configure(_ param: OpaquePointer?, checkTime: Date?, anchors: Bool) {
        if let checkTime {
            X509_VERIFY_PARAM_set_time(param, time_t(checkTime.timeIntervalSince1970))
        } else {
            X509_VERIFY_PARAM_clear_flags(param, UInt(X509_V_FLAG_USE_CHECK_TIME))
        }
        if anchors {
            X509_VERIFY_PARAM_set_flags(param, UInt(X509_V_FLAG_PARTIAL_CHAIN))
        } else {
            X509_VERIFY_PARAM_clear_flags(param, UInt(X509_V_FLAG_PARTIAL_CHAIN))
        }
    }

    /// The peer's chain of this finished handshake verified again, as a handshake with `other`
    /// would verify it (the same name, `other`'s roots and anchors), at `checkTime` (now when
    /// nil): what a second connection to the same server would find, without its handshake.
    /// The server sends one chain for one name, so only the trust and the time can differ.
    package func verify(with other: TLSTrust, checkTime: Date? = nil) -> (code: Int, chain: [Certificate]) {
        guard let param = X509_VERIFY_PARAM_new() else { return (Int(X509_V_ERR_OUT_OF_MEM), []) }
        defer { X509_VERIFY_PARAM_free(param) }
        X509_VERIFY_PARAM_set1(param, SSL_get0_param(ssl))
        Self.configure(param, checkTime: checkTime, anchors: other.anyTrustedIsAnAnchor)
        guard let context = node_agent_peer_verify_context(ssl, SSL_CTX_get_cert_store(other.context), param) else {
            return (Int(X509_V_ERR_UNSPECIFIED), [])
        }
        defer { X509_STORE_CTX_free(context) }
        _ = withExtendedLifetime(other) { other.verifyContext(context) }
        return (Int(X509_STORE_CTX_get_error(context)), certificates(X509_STORE_CTX_get0_chain(context)))
    }

    deinit { SSL_free(ssl) }

    package func handshake() throws {
        try retrying("TLS handshake") { SSL_connect(ssl) }
    }

    package var verifyCode: Int { SSL_get_verify_result(ssl) }

    package static func verifyText(_ code: Int) -> String {
        X509_verify_cert_error_string(code).map { String(cString: $0) } ?? "code \(code)"
    }

    package var peerChain: [Certificate] { certificates(SSL_get_peer_cert_chain(ssl)) }
    package var verifiedChain: [Certificate] { certificates(SSL_get0_verified_chain(ssl)) }

    package func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = try retrying("TLS write") {
                bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress! + offset, Int32($0.count - offset)) }
            }
            offset += Int(n)
        }
    }

    /// Reads up to `max` bytes; empty at the end of the stream.
    package func read(max: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        do {
            let n = try retrying("TLS read") { buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) } }
            return Array(buffer[0..<Int(n)])
        } catch let e as TLSClosed {
            _ = e
            return []
        }
    }

    private struct TLSClosed: Error {}

    @discardableResult
    private func retrying(_ what: String, _ op: () -> Int32) throws -> Int32 {
        while true {
            let r = op()
            if r > 0 { return r }
            let err = SSL_get_error(ssl, r)
            switch err {
            case SSL_ERROR_WANT_READ: try socket.wait(events: Int16(POLLIN), what: what)
            case SSL_ERROR_WANT_WRITE: try socket.wait(events: Int16(POLLOUT), what: what)
            case SSL_ERROR_ZERO_RETURN: throw TLSClosed()
            default:
                let code = ERR_get_error()
                ERR_clear_error()
                if code == 0 {
                    if what == "TLS read" { throw TLSClosed() }
                    throw AgentError(.io, "\(what): the peer closed the connection or did not speak TLS")
                }
                var buf = [CChar](repeating: 0, count: 256)
                ERR_error_string_n(code, &buf, buf.count)
                throw AgentError(
                    .io, "\(what) failed: \(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
            }
        }
    }

    private func certificates(_ stack: OpaquePointer?) -> [Certificate] {
        guard let stack else { return [] }
        var out: [Certificate] = []
        for i in 0..<node_agent_sk_x509_num(stack) {
            if let x = node_agent_sk_x509_value(stack, i), let c = try? CertificateParser.describe(x) { out.append(c) }
        }
        return out
    }
}
