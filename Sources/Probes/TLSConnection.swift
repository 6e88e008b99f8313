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
/// bundle must not eat the peer's timeout and be reported as a stalling server.
final class TLSTrust {
    let context: OpaquePointer

    init(trustFile: String) throws {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw AgentError(.io, "OpenSSL: cannot create a TLS context") }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        _ = node_agent_ssl_ctx_set_min_tls12(ctx)
        guard SSL_CTX_load_verify_locations(ctx, trustFile, nil) == 1 else {
            ERR_clear_error()
            SSL_CTX_free(ctx)
            throw AgentError(.io, "cannot load trust from \(trustFile)")
        }
        context = ctx
    }

    deinit { SSL_CTX_free(context) }

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
