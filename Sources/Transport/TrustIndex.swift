import COpenSSL
import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

/// A PEM trust bundle indexed by subject name, without decoding its certificates: a node's bundle
/// holds ~140 roots, and OpenSSL 3 takes ~0.2 ms to decode each (their public keys go through its
/// provider decoders), ~20-40 ms per load, on every run of `bootstrap`. A handshake needs only the
/// roots that issued the peer's chain; `TLSTrust` decodes those when it verifies.
///
/// Only plain `CERTIFICATE` blocks are indexed. Anything else in the file (a `TRUSTED CERTIFICATE`
/// with OpenSSL's trust settings, a key, a block that does not walk as DER) makes the index nil and
/// the file is loaded whole, as before.
public struct TrustIndex: Sendable {
    public struct Entry: Sendable {
        /// The certificate, DER.
        public let der: [UInt8]
        /// Its subject and issuer names, DER (as the certificate encodes them).
        public let subject: ArraySlice<UInt8>
        public let issuer: ArraySlice<UInt8>
    }

    public let entries: [Entry]
    private let bySubject: [ArraySlice<UInt8>: [Int]]

    public init?(pem bytes: [UInt8]) {
        var entries: [Entry] = []
        var inBlock = false
        var body: [UInt8] = []
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            let text = line.last == UInt8(ascii: "\r") ? line.dropLast() : line
            if text.starts(with: Self.dashes) {
                if !inBlock, text.elementsEqual(Self.begin) {
                    inBlock = true
                    body = []
                    continue
                }
                guard inBlock, text.elementsEqual(Self.end), let der = Self.base64Decode(body),
                    let (subject, issuer) = Self.names(der)
                else { return nil }
                entries.append(Entry(der: der, subject: subject, issuer: issuer))
                inBlock = false
            } else if inBlock {
                body.append(contentsOf: text)
            }
        }
        guard !inBlock, !entries.isEmpty else { return nil }
        self.entries = entries
        var bySubject: [ArraySlice<UInt8>: [Int]] = [:]
        for (i, e) in entries.enumerated() { bySubject[e.subject, default: []].append(i) }
        self.bySubject = bySubject
    }

    /// An index of certificates given as DER (a pool built elsewhere); nil when none has the
    /// shape of a certificate.
    public init?(ders: [[UInt8]]) {
        let entries = ders.compactMap { der in Self.names(der).map { Entry(der: der, subject: $0.subject, issuer: $0.issuer) } }
        guard !entries.isEmpty else { return nil }
        self.entries = entries
        var bySubject: [ArraySlice<UInt8>: [Int]] = [:]
        for (i, e) in entries.enumerated() { bySubject[e.subject, default: []].append(i) }
        self.bySubject = bySubject
    }

    /// The certificates whose subject is one of `names`, and the certificates that issued those
    /// (transitively: a cross-signed root is followed to the root that signed it), in file order.
    public func certificates(named names: Set<[UInt8]>) -> [Entry] {
        closure(of: names) { bySubject[$0[...]] ?? [] }
    }

    /// As `certificates(named:)`, with names compared by `key` (OpenSSL's canonical form, for the
    /// same name encoded another way: OpenSSL's own issuer lookup matches those too); `subjectKeys`
    /// holds the key of each entry's subject, nil where there is none. Keys may collide: a
    /// certificate too many is harmless, OpenSSL checks every candidate's name and signature.
    public func certificates<Key: Hashable>(named names: Set<[UInt8]>, subjectKeys: [Key?], key: ([UInt8]) -> Key?) -> [Entry] {
        var byKey: [Key: [Int]] = [:]
        for (i, k) in subjectKeys.enumerated() { if let k { byKey[k, default: []].append(i) } }
        return closure(of: names) { name in key(name).flatMap { byKey[$0] } ?? [] }
    }

    /// The entries `candidates` gives for `names`, then for the issuers of those, and so on.
    private func closure(of names: Set<[UInt8]>, candidates: ([UInt8]) -> [Int]) -> [Entry] {
        var pending = Array(names)
        var seenNames = names
        var picked = Set<Int>()
        while let name = pending.popLast() {
            for i in candidates(name) where picked.insert(i).inserted {
                let issuer = Array(entries[i].issuer)
                if seenNames.insert(issuer).inserted { pending.append(issuer) }
            }
        }
        return picked.sorted().map { entries[$0] }
    }

    private static let dashes = Array("-----".utf8)
    private static let begin = Array("-----BEGIN CERTIFICATE-----".utf8)
    private static let end = Array("-----END CERTIFICATE-----".utf8)

    static let padValue: UInt32 = 64
    static let blankValue: UInt32 = 65

    /// Each byte's value in base64: 0-63 for the alphabet, `padValue` for `=`, `blankValue` for a
    /// space or tab, 255 for anything else (one load a byte: ~200 KB of a bundle on each load).
    private static let base64Values: [UInt8] = (0...255).map { b -> UInt8 in
        switch UInt8(b) {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return UInt8(b) - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return UInt8(b) - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt8(b) - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): return 62
        case UInt8(ascii: "/"): return 63
        case UInt8(ascii: "="): return UInt8(padValue)
        case UInt8(ascii: " "), UInt8(ascii: "\t"): return UInt8(blankValue)
        default: return 255
        }
    }

    /// Strict base64 (RFC 4648 alphabet, `=` padding, blanks ignored); nil for anything else.
    package static func base64Decode(_ text: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        var padding = 0
        for c in text {
            let v = UInt32(Self.base64Values[Int(c)])
            switch v {
            case 0..<64: break
            case Self.padValue:
                padding += 1
                continue
            case Self.blankValue: continue
            default: return nil
            }
            guard padding == 0 else { return nil }
            accumulator = (accumulator << 6) | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return padding <= 2 && !out.isEmpty ? out : nil
    }

    /// The subject and issuer of a DER certificate (RFC 5280: Certificate ::= SEQUENCE {
    /// tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer, validity,
    /// subject, ... } ... }), each as its whole TLV; nil when the bytes do not have that shape.
    package static func names(_ der: [UInt8]) -> (subject: ArraySlice<UInt8>, issuer: ArraySlice<UInt8>)? {
        guard let certificate = tlv(der[...]), certificate.tag == 0x30, certificate.rest.isEmpty,
            let tbs = tlv(certificate.value), tbs.tag == 0x30
        else { return nil }
        var fields = tbs.value
        var items: [(tag: UInt8, whole: ArraySlice<UInt8>)] = []
        while items.count < 6, let item = tlv(fields) {
            items.append((item.tag, fields[fields.startIndex..<item.rest.startIndex]))
            fields = item.rest
        }
        if items.first?.tag == 0xA0 { items.removeFirst() }
        guard items.count >= 5, items[0].tag == 0x02, items[1].tag == 0x30, items[2].tag == 0x30,
            items[3].tag == 0x30, items[4].tag == 0x30
        else { return nil }
        return (items[4].whole, items[2].whole)
    }

    /// One DER element: its tag, its value and what follows it (single-byte tags, definite lengths).
    package static func tlv(_ bytes: ArraySlice<UInt8>) -> (tag: UInt8, value: ArraySlice<UInt8>, rest: ArraySlice<UInt8>)? {
        var i = bytes.startIndex
        guard bytes.count >= 2 else { return nil }
        let tag = bytes[i]
        guard tag & 0x1F != 0x1F else { return nil }
        i += 1
        var length = Int(bytes[i])
        i += 1
        if length & 0x80 != 0 {
            let count = length & 0x7F
            guard (1...4).contains(count), bytes.endIndex - i >= count else { return nil }
            length = 0
            for _ in 0..<count {
                length = length << 8 | Int(bytes[i])
                i += 1
            }
        }
        guard length <= bytes.endIndex - i else { return nil }
        return (tag, bytes[i..<i + length], bytes[(i + length)...])
    }
}
