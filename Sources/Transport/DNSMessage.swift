import HostSystem
import Vocabulary

/// DNS wire format (RFC 1035), the part a stub resolver needs: one question, answers of type A
/// and AAAA (CNAMEs are followed by reading every address record of the answer section).
public enum DNSMessage {
    public enum RecordType: UInt16, Sendable {
        case a = 1
        case cname = 5
        case aaaa = 28
    }

    public struct Response: Equatable, Sendable {
        public var id: UInt16
        public var rcode: UInt8
        public var truncated: Bool
        public var addresses: [IPAddress]
    }

    public static func query(id: UInt16, name: DomainName, type: RecordType) -> [UInt8] {
        var out: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xff), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.labels {
            out.append(UInt8(label.utf8.count))
            out.append(contentsOf: label.utf8)
        }
        out.append(0)
        out += [UInt8(type.rawValue >> 8), UInt8(type.rawValue & 0xff), 0, 1]
        return out
    }

    public struct ParseError: Error, Equatable { public let reason: String }

    /// Parses a response; every read is bounds-checked, compression loops are refused.
    public static func parse(_ bytes: [UInt8]) throws -> Response {
        var reader = Reader(bytes: bytes)
        let id = try reader.u16()
        let flags = try reader.u16()
        guard flags & 0x8000 != 0 else { throw ParseError(reason: "not a response") }
        let qd = try reader.u16()
        let an = try reader.u16()
        _ = try reader.u16()
        _ = try reader.u16()
        for _ in 0..<qd {
            try reader.skipName()
            _ = try reader.u16()
            _ = try reader.u16()
        }
        var addresses: [IPAddress] = []
        for _ in 0..<an {
            try reader.skipName()
            let type = try reader.u16()
            _ = try reader.u16()  // class
            _ = try reader.u32()  // ttl
            let length = Int(try reader.u16())
            let data = try reader.bytes(length)
            if type == RecordType.a.rawValue && length == 4 {
                addresses.append(IPAddress(family: .v4, bytes: data))
            } else if type == RecordType.aaaa.rawValue && length == 16 {
                addresses.append(IPAddress(family: .v6, bytes: data))
            }
        }
        return Response(id: id, rcode: UInt8(flags & 0x000f), truncated: flags & 0x0200 != 0, addresses: addresses)
    }

    package struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func u8() throws -> UInt8 {
            guard offset < bytes.count else { throw ParseError(reason: "truncated message") }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func u16() throws -> UInt16 { UInt16(try u8()) << 8 | UInt16(try u8()) }
        mutating func u32() throws -> UInt32 { UInt32(try u16()) << 16 | UInt32(try u16()) }

        mutating func bytes(_ n: Int) throws -> [UInt8] {
            guard n >= 0, offset + n <= bytes.count else { throw ParseError(reason: "truncated record") }
            defer { offset += n }
            return Array(bytes[offset..<offset + n])
        }

        /// Moves past `n` bytes. (Not `_ = try bytes(n)`: Swift 6.3.1 at -O releases an unused
        /// Array(slice) before copying into it, a heap use-after-free write found by scripts/fuzz.)
        mutating func skip(_ n: Int) throws {
            guard n >= 0, offset + n <= bytes.count else { throw ParseError(reason: "truncated record") }
            offset += n
        }

        /// Skips a name in place; a compression pointer ends it (the name it points to is not needed).
        mutating func skipName() throws {
            var labels = 0
            while true {
                let length = try u8()
                if length == 0 { return }
                if length & 0xc0 == 0xc0 {
                    _ = try u8()
                    return
                }
                guard length & 0xc0 == 0 else { throw ParseError(reason: "bad label type") }
                try skip(Int(length))
                labels += 1
                guard labels <= 127 else { throw ParseError(reason: "name too long") }
            }
        }
    }
}
