import CRIClient
import NIOCore
import NIOHPACK
import NIOHTTP2

extension GRPCFuzz {
    /// Input: names and values, alternating, separated by 0 bytes (a header list as HPACK gives
    /// it), read as trailers and as a trailers-only answer; then the input as a status (its first
    /// two bytes the code, the rest the message) sent as a server sends it, read back.
    static func status(_ input: [UInt8]) {
        let parts = input.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        // Names only of ASCII: swift-nio-http2 refuses a header block with others before it is read.
        var headers = HPACKHeaders()
        for i in stride(from: 0, to: parts.count - 1, by: 2) where parts[i].utf8.allSatisfy({ $0 < 0x80 }) {
            headers.add(name: parts[i], value: parts[i + 1])
        }

        let status = GRPCStatus(trailers: headers)
        precondition(!status.name.isEmpty && (0...0xFFFF).contains(status.code), "status \(status.code) out of gRPC's range")
        if let text = headers.first(name: "grpc-status"), let code = Int(text), (0...0xFFFF).contains(code) {
            let message = GRPCStatus.percentDecoded(headers.first(name: "grpc-message") ?? "")
            precondition(status == GRPCStatus(code: code, message: message), "grpc-status \(text) read as \(status)")
        } else {
            precondition(status.code == GRPCStatus.unknown && status.message.contains("grpc-status"), "no grpc-status read as \(status)")
        }

        // The list as the answer's first and last headers: never a message, and the HTTP status
        // and content type checked before the gRPC status.
        var reader = GRPCResponseReader(maxMessageBytes: 64)
        guard case .failure(let ended)? = reader.consume(.headers(.init(headers: headers, endStream: true))) else {
            preconditionFailure("a trailers-only answer gave a message or no outcome")
        }
        if let http = headers.first(name: ":status"), http.count == 3, http.hasPrefix("1") {
            // An informational answer that ends the stream: no response at all.
            precondition(
                ended.code == GRPCStatus.internalError && ended.message.hasSuffix("informational HTTP status \(http)"),
                "1xx ending the stream: \(ended)")
        } else if let http = headers.first(name: ":status"), http != "200" {
            precondition(ended == GRPCStatus(httpStatus: http), "HTTP status \(http) read as \(ended)")
            precondition(
                [2, 7, 12, 13, 14, 16].contains(ended.code) && ended.message.contains("status \(http),"), "HTTP status \(http): \(ended)")
        } else if !(headers.first(name: "content-type") ?? "").hasPrefix("application/grpc") {
            precondition(ended.code == GRPCStatus.unknown && ended.message.contains("content-type"), "not gRPC's content type: \(ended)")
        } else {
            precondition(status.code == 0 ? ended.code == GRPCStatus.internalError : ended == status, "trailers-only: \(ended)")
        }

        // A status round-trips: the code as digits, the message percent-encoded as gRPC's spec asks.
        guard input.count >= 2 else { return }
        let sent = GRPCStatus(code: Int(input[0]) << 8 | Int(input[1]), message: String(decoding: input[2...], as: UTF8.self))
        let trailers: HPACKHeaders = ["grpc-status": "\(sent.code)", "grpc-message": percentEncoded(sent.message)]
        precondition(GRPCStatus(trailers: trailers) == sent, "status \(sent) read back as \(GRPCStatus(trailers: trailers))")
        var answer = GRPCResponseReader(maxMessageBytes: 64)
        _ = answer.consume(.headers(.init(headers: okHead)))
        let outcome = answer.consume(.headers(.init(headers: trailers, endStream: true)))
        precondition(sent.code == 0 || outcome == .failure(sent), "trailers after the head: \(String(describing: outcome))")
    }

    /// grpc-message's encoding (PROTOCOL-HTTP2.md): UTF-8, bytes outside 0x20...0x7E and `%` as %XX.
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if (0x20...0x7E).contains(byte) && byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    /// Input: any bytes through the reader and the three answers; then the input's parts
    /// (separated by 0 bytes) as strings of the answers containerd writes, with fields this client
    /// skips between them, read back.
    static func protobuf(_ input: [UInt8]) {
        var reader = ProtoReader(input)
        var count = 0
        while let (field, value) = try? reader.next() {
            count += 1
            precondition(field > 0 && count <= input.count, "field \(count) of a \(input.count)-byte message")
            if case .bytes(let payload) = value { precondition(payload.count < input.count, "a field longer than its message") }
        }
        _ = try? PullImageResponse(decoding: input)
        _ = try? VersionResponse(decoding: input)
        if let status = try? StatusResponse(decoding: input) {
            precondition(status.info.count <= input.count / 2, "\(status.info.count) entries from \(input.count) bytes")
        }

        let parts = input.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        let at = { (i: Int) in i < parts.count ? parts[i] : "" }
        var unknown = input.makeIterator()
        var w = ProtoWriter()
        for (field, value) in (1...4).map({ ($0, at($0 - 1)) }) {
            skipped(&w, unknown.next())
            w.string(field, value)
        }
        skipped(&w, unknown.next())
        var version = VersionResponse()
        (version.version, version.runtimeName, version.runtimeVersion, version.runtimeAPIVersion) = (at(0), at(1), at(2), at(3))
        precondition((try? VersionResponse(decoding: w.bytes)) == version, "a VersionResponse read back different")
        precondition((try? PullImageResponse(decoding: w.bytes)) == PullImageResponse(imageRef: at(0)), "a PullImageResponse")

        // Status: a RuntimeStatus (skipped), then the info map's entries; a repeated key's last value wins.
        var info: [String: String] = [:]
        w = ProtoWriter()
        w.message(1) { $0.message(1) { $0.string(1, "RuntimeReady") } }
        for i in stride(from: 0, to: parts.count - 1, by: 2) {
            info[parts[i]] = parts[i + 1]
            w.message(2) {
                $0.string(1, parts[i])
                $0.string(2, parts[i + 1])
            }
            skipped(&w, unknown.next())
        }
        precondition((try? StatusResponse(decoding: w.bytes)) == StatusResponse(info: info), "a StatusResponse read back different")

        // The request this client writes, read by the same reader.
        let request = fields(PullImageRequest(image: at(0), username: at(1), password: at(2)).encoded())
        let image = fields(request[1] ?? [])
        let auth = fields(request[2] ?? [])
        let read = [image[1], auth[1], auth[2]].map { String(decoding: $0 ?? [], as: UTF8.self) }
        precondition(read == [at(0), at(1), at(2)] && request[1] != nil, "a PullImageRequest read back as \(read)")
    }

    /// The length-delimited fields of a message this client wrote (which must read).
    static func fields(_ bytes: [UInt8]) -> [Int: [UInt8]] {
        var reader = ProtoReader(bytes)
        var out: [Int: [UInt8]] = [:]
        while let (field, value) = try! reader.next() {
            if case .bytes(let payload) = value { out[field] = Array(payload) }
        }
        return out
    }

    /// A field no CRI answer of this client's has (numbers 5 to 20), of the wire type `byte` picks.
    static func skipped(_ w: inout ProtoWriter, _ byte: UInt8?) {
        guard let byte else { return }
        let field = UInt64(5 + byte % 16)
        switch byte >> 4 & 3 {
        case 0:
            w.varint(field << 3)
            w.varint(UInt64(byte) << 56)
        case 1:
            w.varint(field << 3 | 1)
            for _ in 0..<8 { w.varint(0) }
        case 2:
            w.varint(field << 3 | 5)
            for _ in 0..<4 { w.varint(UInt64(byte & 0x7F)) }
        default: w.message(Int(field)) { $0.string(1, "x") }
        }
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
