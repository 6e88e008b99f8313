#if canImport(Glibc)
import Glibc
#endif
import COpenSSL
import FoundationEssentials
import HostSystem
import TrustStore

/// A TLS client connection on OpenSSL that verifies as Go (and so containerd) does: trust from
/// one CA file, SNI set to the registry host, the name checked against the SAN only (never the
/// CN). Verification runs but does not abort the handshake, so that the exact OpenSSL verify
/// code can be reported.
/// A TLS client context whose trust is one CA file. Loading is the slow part (OpenSSL 3 decodes
/// about 5,000 certificates a second), so it happens before the connection is opened: a large
/// bundle must not eat the peer's timeout and be reported as a stalling server. A PEM bundle is
/// indexed, not decoded (`TrustIndex`): a handshake decodes only the roots named by the peer's
/// chain, and only when those do not verify it is the whole file loaded, so that a failure reports
/// the code that the whole file gives.
final class TLSTrust {
    let context: OpaquePointer
    let trustFile: String
    /// nil when the context holds the whole file.
    private let index: TrustIndex?
    private let lock = PlainLock()
    /// The whole file, loaded by the first verification that the indexed roots did not pass.
    private var wholeFile: OpaquePointer?

    /// Whether a verification needed the whole file (tests: a verified chain should not).
    var loadedWholeFile: Bool { lock.withLock { wholeFile != nil } }

    /// `indexed: false` loads the whole file up front (what the index must agree with; tests).
    init(trustFile: String, indexed: Bool = true) throws {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw AgentError(.io, "OpenSSL: cannot create a TLS context") }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        _ = node_agent_ssl_ctx_set_min_tls12(ctx)
        let bytes = !indexed ? nil : (try? HostPath(trustFile)).flatMap { path in (try? HostRoot("/")).flatMap { try? HostFiles(root: $0).read(path) } }
        index = bytes.flatMap { TrustIndex(pem: $0) }
        if index == nil {
            guard SSL_CTX_load_verify_locations(ctx, trustFile, nil) == 1 else {
                ERR_clear_error()
                SSL_CTX_free(ctx)
                throw AgentError(.io, "cannot load trust from \(trustFile)")
            }
        }
        context = ctx
        self.trustFile = trustFile
        if index != nil {
            // The callback replaces OpenSSL's X509_verify_cert for this context; the trust object
            // outlives every connection made with it (each TLSConnection holds it).
            SSL_CTX_set_cert_verify_callback(ctx, { storeContext, arg in
                guard let storeContext, let arg else { return 0 }
                return Unmanaged<TLSTrust>.fromOpaque(arg).takeUnretainedValue().verify(storeContext)
            }, Unmanaged.passUnretained(self).toOpaque())
        }
    }

    /// Verifies the peer's chain in `storeContext` with the bundle's roots that its names lead to;
    /// when they do not verify it, with the whole file (the exact code a full load gives).
    private func verify(_ storeContext: OpaquePointer) -> Int32 {
        guard let index, let leaf = X509_STORE_CTX_get0_cert(storeContext) else { return 0 }
        var chain = [leaf]
        if let untrusted = X509_STORE_CTX_get0_untrusted(storeContext) {
            for i in 0..<node_agent_sk_x509_num(untrusted) { if let x = node_agent_sk_x509_value(untrusted, i) { chain.append(x) } }
        }
        var names = Set<[UInt8]>()
        for x in chain {
            names.insert(Self.der(X509_get_subject_name(x)))
            names.insert(Self.der(X509_get_issuer_name(x)))
        }
        let roots = index.certificates(named: names)
        if !roots.isEmpty, let stack = node_agent_sk_x509_new() {
            for root in roots {
                root.der.withUnsafeBufferPointer { buffer in
                    var p: UnsafePointer<UInt8>? = buffer.baseAddress
                    if let x = d2i_X509(nil, &p, buffer.count) { _ = node_agent_sk_x509_push(stack, x) }
                }
            }
            let ok = node_agent_verify_into(storeContext, Self.emptyStore, stack)
            node_agent_sk_x509_pop_free(stack)
            if ok == 1 { return 1 }
        }
        let whole: OpaquePointer? = lock.withLock {
            if wholeFile == nil, let store = X509_STORE_new() {
                if X509_STORE_load_file(store, trustFile) == 1 { wholeFile = store } else { X509_STORE_free(store) }
                ERR_clear_error()
            }
            return wholeFile
        }
        guard let whole else {
            X509_STORE_CTX_set_error(storeContext, X509_V_ERR_UNSPECIFIED)
            return 0
        }
        return node_agent_verify_into(storeContext, whole, nil)
    }

    private static func der(_ name: OpaquePointer?) -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        let length = i2d_X509_NAME(name, &out)
        guard length > 0, let out else { return [] }
        defer { node_agent_openssl_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: Int(length)))
    }

    /// The store a verification with an explicit list of roots starts from (it holds nothing).
    nonisolated(unsafe) private static let emptyStore = X509_STORE_new()

    deinit {
        SSL_CTX_free(context)
        if let wholeFile { X509_STORE_free(wholeFile) }
    }

    /// The trust for `trustFile`, loaded again only when the file changed (its identity, size or
    /// modification time): `run` probes every minute, and a node's bundle rarely changes.
    static func cached(_ trustFile: String) throws -> TLSTrust {
        var st = stat()
        guard stat(trustFile, &st) == 0 else { return try TLSTrust(trustFile: trustFile) }
        let key = [UInt64(st.st_dev), UInt64(st.st_ino), UInt64(st.st_size), UInt64(st.st_mtim.tv_sec), UInt64(st.st_mtim.tv_nsec)]
        return try cacheLock.withLock {
            if let (k, trust) = cache[trustFile], k == key { return trust }
            let trust = try TLSTrust(trustFile: trustFile)
            cache[trustFile] = (key, trust)
            return trust
        }
    }

    private static let cacheLock = PlainLock()
    nonisolated(unsafe) private static var cache: [String: ([UInt64], TLSTrust)] = [:]
}

final class TLSConnection {
    let socket: Socket
    let trust: TLSTrust
    let ssl: OpaquePointer

    init(socket: Socket, trust: TLSTrust, serverName: String, serverIsIP: Bool) throws {
        self.socket = socket
        self.trust = trust
        guard let s = SSL_new(trust.context) else { throw AgentError(.io, "OpenSSL: cannot create a TLS session") }
        ssl = s
        SSL_set_fd(s, socket.fd)
        if !serverIsIP { _ = node_agent_ssl_set_sni(s, serverName) }
        SSL_set_hostflags(s, UInt32(X509_CHECK_FLAG_NEVER_CHECK_SUBJECT))
        SSL_set1_host(s, serverName)
    }

    deinit { SSL_free(ssl) }

    func handshake() throws {
        try retrying("TLS handshake") { SSL_connect(ssl) }
    }

    var verifyCode: Int { SSL_get_verify_result(ssl) }

    static func verifyText(_ code: Int) -> String {
        X509_verify_cert_error_string(code).map { String(cString: $0) } ?? "code \(code)"
    }

    var peerChain: [Certificate] { certificates(SSL_get_peer_cert_chain(ssl)) }
    var verifiedChain: [Certificate] { certificates(SSL_get0_verified_chain(ssl)) }

    func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = try retrying("TLS write") {
                bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress! + offset, Int32($0.count - offset)) }
            }
            offset += Int(n)
        }
    }

    /// Reads up to `max` bytes; empty at the end of the stream.
    func read(max: Int) throws -> [UInt8] {
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
                throw AgentError(.io, "\(what) failed: \(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
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
