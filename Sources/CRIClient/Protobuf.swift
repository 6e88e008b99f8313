/// The few protobuf wire-format pieces the CRI messages need, written by hand: a pull sends two
/// nested messages of strings and reads one string back, so swift-protobuf (and its ~9.5 minute
/// first build of the code generator) would be all cost here.
///
/// proto3 strings and sub-messages are both "length-delimited" (wire type 2): a varint tag
/// `field << 3 | 2`, a varint length, the bytes. Empty strings are not written (proto3 default).
package struct ProtoWriter {
    package private(set) var bytes: [UInt8] = []

    package init() {}

    package mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    package mutating func lengthDelimited(_ field: Int, _ payload: [UInt8]) {
        varint(UInt64(field) << 3 | 2)
        varint(UInt64(payload.count))
        bytes += payload
    }

    package mutating func string(_ field: Int, _ value: String?) {
        guard let value, !value.isEmpty else { return }
        lengthDelimited(field, Array(value.utf8))
    }

    /// A sub-message; written even when empty (an empty `ImageSpec` still means "present").
    package mutating func message(_ field: Int, _ build: (inout ProtoWriter) -> Void) {
        var inner = ProtoWriter()
        build(&inner)
        lengthDelimited(field, inner.bytes)
    }
}

package struct ProtoDecodingError: Error, CustomStringConvertible {
    package var description: String
}

/// Reads the fields of one message, in order, skipping what the caller does not ask for: a newer
/// runtime may send fields this client has never heard of, and that must not fail the call.
package struct ProtoReader {
    private let bytes: [UInt8]
    private var offset = 0

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    package enum Value {
        case varint(UInt64)
        case bytes(ArraySlice<UInt8>)
        /// Fixed 32- or 64-bit values: skipped, none of our fields has them.
        case fixed
    }

    /// The next field's number and value, or nil at the end of the message.
    package mutating func next() throws -> (field: Int, value: Value)? {
        guard offset < bytes.count else { return nil }
        let tag = try readVarint()
        let field = Int(truncatingIfNeeded: tag >> 3)
        guard field > 0 else { throw ProtoDecodingError(description: "field number 0 at byte \(offset)") }
        switch tag & 7 {
        case 0: return (field, .varint(try readVarint()))
        case 1:
            try skip(8)
            return (field, .fixed)
        case 2:
            let length = try readVarint()
            guard length <= UInt64(bytes.count - offset) else {
                throw ProtoDecodingError(description: "field \(field): length \(length) past the end of the message")
            }
            let start = offset
            offset += Int(length)
            return (field, .bytes(bytes[start..<offset]))
        case 5:
            try skip(4)
            return (field, .fixed)
        // 3 and 4 are proto2 groups, which no CRI message has; 6 and 7 are not defined.
        case let wire: throw ProtoDecodingError(description: "field \(field): unsupported wire type \(wire)")
        }
    }

    private mutating func skip(_ count: Int) throws {
        guard count <= bytes.count - offset else { throw ProtoDecodingError(description: "truncated fixed-width field") }
        offset += count
    }

    private mutating func readVarint() throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while offset < bytes.count, shift < 64 {
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        throw ProtoDecodingError(description: "truncated or overlong varint")
    }

    /// Reads every field of `bytes`, calling `string` for each length-delimited one (proto3: a
    /// repeated occurrence of a singular field replaces the earlier value, so the caller simply
    /// assigns).
    package static func strings(_ bytes: [UInt8], _ string: (Int, String) -> Void) throws {
        var reader = ProtoReader(bytes)
        while let (field, value) = try reader.next() {
            if case .bytes(let payload) = value { string(field, String(decoding: payload, as: UTF8.self)) }
        }
    }
}
