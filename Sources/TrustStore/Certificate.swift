import COpenSSL
import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

/// One X.509 certificate, parsed by OpenSSL, with the facts the agent reports and checks.
public struct Certificate: Sendable, Equatable {
    public let subject: String
    public let issuer: String
    /// `openssl x509 -hash`: the name of the `<hash>.N` links in `/etc/ssl/certs`.
    public let subjectHash: String
    public let sha256Fingerprint: String
    public let isCA: Bool
    public let notBefore: Date
    public let notAfter: Date
    /// The certificate re-encoded as one PEM block, the form every trust store takes.
    public let pem: String
    public let der: [UInt8]

    public var isSelfSigned: Bool { subject == issuer }
}

/// Parsing and validating CA files: a file may hold several CA certificates, PEM or DER.
public enum CertificateParser {
    /// Files larger than this are refused: a CA bundle for one registry is a few kilobytes.
    public static let maximumFileSize = 1 << 20

    /// Parses every certificate in `bytes` (PEM blocks, or one DER certificate). Refuses private
    /// keys anywhere in the input, other PEM blocks, garbage, and oversized input.
    public static func parse(_ bytes: [UInt8], source: String) throws -> [Certificate] {
        guard bytes.count <= maximumFileSize else {
            throw AgentError(
                .invalidCertificate, "\(source) is \(bytes.count) bytes, more than a CA file can be (1 MiB)",
                hint: "give the file that holds the registry's CA certificate (ca.crt)")
        }
        guard !bytes.isEmpty else {
            throw AgentError(.invalidCertificate, "\(source) is empty", hint: "give the registry's CA certificate in PEM form")
        }
        let text = String(decoding: bytes, as: UTF8.self)
        if text.contains("PRIVATE KEY-----") {
            throw AgentError(
                .invalidCertificate, "\(source) contains a private key",
                hint: "give only the CA certificate; a private key must never be spread to nodes")
        }
        if text.contains("-----BEGIN ") {
            return try parsePEM(text, source: source)
        }
        return [try parseDER(bytes, source: source)]
    }

    /// How far ahead of this node's clock a certificate's notBefore may be and still be taken
    /// (with a warning): clocks of nodes and of the machine that issued a CA differ by seconds to
    /// minutes, most of all at boot before time sync, and refusing a freshly issued CA for that
    /// would leave the node unable to pull until the agent ran again.
    public static let notBeforeTolerance: TimeInterval = 300

    /// The warning for a certificate taken within `notBeforeTolerance`, nil when it is already
    /// valid at `now`.
    public static func earlyWarning(_ cert: Certificate, what: String, now: Date) -> String? {
        guard cert.notBefore > now else { return nil }
        let ahead = Int(cert.notBefore.timeIntervalSince(now).rounded(.up))
        return
            "\(what) '\(cert.subject)' is valid only from \(cert.notBefore.iso8601), \(ahead) s ahead of this node's clock: taken within the \(Int(notBeforeTolerance / 60))-minute tolerance, but Go programs such as containerd refuse it until then; check the node's time sync"
    }

    /// Parses and validates a CA file for installation: at least one certificate, each a CA
    /// (basicConstraints CA:TRUE) and valid at `now`, or from at most `notBeforeTolerance`
    /// ahead of it (`earlyWarning` says so).
    public static func parseCAFile(_ bytes: [UInt8], source: String, now: Date = Date()) throws -> [Certificate] {
        let certificates = try parse(bytes, source: source)
        for cert in certificates {
            if !cert.isCA {
                throw AgentError(
                    .invalidCertificate, "\(source): '\(cert.subject)' is not a CA certificate (no basicConstraints CA:TRUE)",
                    hint: "give the CA that signed the registry's certificate, not the registry's own certificate")
            }
            if cert.notAfter < now {
                throw AgentError(
                    .invalidCertificate, "\(source): CA '\(cert.subject)' expired on \(cert.notAfter.iso8601)",
                    hint: "renew the CA and re-issue the registry certificate")
            }
            if cert.notBefore > now.addingTimeInterval(notBeforeTolerance) {
                throw AgentError(
                    .invalidCertificate,
                    "\(source): CA '\(cert.subject)' is not valid before \(cert.notBefore.iso8601), more than \(Int(notBeforeTolerance / 60)) minutes ahead of this node's clock (\(now.iso8601))",
                    hint: "check the node's clock (time sync) or the CA's validity period")
            }
        }
        return certificates
    }

    private static func parsePEM(_ text: String, source: String) throws -> [Certificate] {
        var certificates: [Certificate] = []
        var rest = Substring(text)
        while let begin = rest.firstRange(of: "-----BEGIN ") {
            guard let labelEnd = rest[begin.upperBound...].firstRange(of: "-----") else {
                throw AgentError(.invalidCertificate, "\(source) has a broken PEM header")
            }
            let label = String(rest[begin.upperBound..<labelEnd.lowerBound])
            guard label == "CERTIFICATE" || label == "TRUSTED CERTIFICATE" else {
                throw AgentError(
                    .invalidCertificate, "\(source) holds a '\(label.escapedForMessage)' PEM block, not a certificate",
                    hint: "give a file with CERTIFICATE blocks only")
            }
            guard let end = rest[labelEnd.upperBound...].firstRange(of: "-----END \(label)-----") else {
                throw AgentError(.invalidCertificate, "\(source) has a PEM block without its END line")
            }
            let block = String(rest[begin.lowerBound..<end.upperBound]) + "\n"
            certificates.append(try parseOnePEM(block, source: source, index: certificates.count + 1))
            rest = rest[end.upperBound...]
        }
        guard !certificates.isEmpty else {
            throw AgentError(.invalidCertificate, "\(source) holds no certificate")
        }
        return certificates
    }

    private static func parseOnePEM(_ block: String, source: String, index: Int) throws -> Certificate {
        let bio = try MemoryBIO(Array(block.utf8))
        let x509 =
            block.contains("TRUSTED CERTIFICATE")
            ? PEM_read_bio_X509_AUX(bio.handle, nil, nil, nil)
            : PEM_read_bio_X509(bio.handle, nil, nil, nil)
        guard let x509 else {
            ERR_clear_error()
            throw AgentError(
                .invalidCertificate, "\(source): certificate #\(index) is not valid PEM/X.509",
                hint: "check that the file was copied whole")
        }
        defer { X509_free(x509) }
        return try describe(x509)
    }

    private static func parseDER(_ bytes: [UInt8], source: String) throws -> Certificate {
        let x509: OpaquePointer? = bytes.withUnsafeBufferPointer { buffer in
            var p: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_X509(nil, &p, buffer.count)
        }
        guard let x509 else {
            ERR_clear_error()
            throw AgentError(
                .invalidCertificate, "\(source) is neither a PEM nor a DER certificate",
                hint: "give the registry's CA certificate (-----BEGIN CERTIFICATE-----)")
        }
        defer { X509_free(x509) }
        return try describe(x509)
    }

    /// The subject hash (`openssl x509 -hash`) of the first certificate in PEM `bytes`, parsed
    /// with nothing else computed: the trust store's links need only this.
    public static func subjectHash(_ bytes: [UInt8]) -> String? {
        guard let bio = try? MemoryBIO(bytes), let x509 = PEM_read_bio_X509(bio.handle, nil, nil, nil) else {
            ERR_clear_error()
            return nil
        }
        defer { X509_free(x509) }
        return X509_subject_name_hash(x509).hex(width: 8)
    }

    /// Reads the facts of an OpenSSL certificate. The caller keeps ownership of `x509`.
    public static func describe(_ x509: OpaquePointer) throws -> Certificate {
        let subject = nameString(X509_get_subject_name(x509))
        let issuer = nameString(X509_get_issuer_name(x509))
        let hash = X509_subject_name_hash(x509).hex(width: 8)
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        X509_digest(x509, EVP_sha256(), &digest, &length)
        let fingerprint = digest.prefix(Int(length)).map { $0.upperHex(width: 2) }.joined(separator: ":")
        let isCA = (X509_get_extension_flags(x509) & UInt32(EXFLAG_CA)) != 0
        let notBefore = date(X509_get0_notBefore(x509))
        let notAfter = date(X509_get0_notAfter(x509))

        let out = try MemoryBIO([])
        PEM_write_bio_X509(out.handle, x509)
        let pem = out.contents()
        var derPointer: UnsafeMutablePointer<UInt8>?
        let derLength = i2d_X509(x509, &derPointer)
        var der: [UInt8] = []
        if derLength > 0, let derPointer {
            der = Array(UnsafeBufferPointer(start: derPointer, count: Int(derLength)))
            node_agent_openssl_free(derPointer)
        }
        return Certificate(
            subject: subject, issuer: issuer, subjectHash: hash, sha256Fingerprint: fingerprint,
            isCA: isCA, notBefore: notBefore, notAfter: notAfter,
            pem: String(decoding: pem, as: UTF8.self), der: der)
    }

    static func nameString(_ name: OpaquePointer?) -> String {
        guard let name, let bio = try? MemoryBIO([]) else { return "" }
        X509_NAME_print_ex(bio.handle, name, 0, node_agent_xn_flag_rfc2253())
        return String(decoding: bio.contents(), as: UTF8.self)
    }

    static func date(_ time: UnsafePointer<ASN1_TIME>?) -> Date {
        guard let time else { return Date(timeIntervalSince1970: 0) }
        var tm = tm()
        guard ASN1_TIME_to_tm(time, &tm) == 1 else { return Date(timeIntervalSince1970: 0) }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&tm)))
    }
}

/// An OpenSSL memory BIO, freed with its owner.
final class MemoryBIO {
    let handle: OpaquePointer

    init(_ bytes: [UInt8]) throws {
        guard let bio = BIO_new(BIO_s_mem()) else { throw AgentError(.io, "OpenSSL could not allocate a BIO") }
        handle = bio
        if !bytes.isEmpty {
            _ = bytes.withUnsafeBytes { BIO_write(bio, $0.baseAddress, Int32($0.count)) }
        }
    }

    func contents() -> [UInt8] {
        var pointer: UnsafeMutablePointer<CChar>?
        let length = node_agent_bio_get_mem_data(handle, &pointer)
        guard length > 0, let pointer else { return [] }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
    }

    deinit { BIO_free(handle) }
}
