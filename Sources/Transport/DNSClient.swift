import HostSystem
import Vocabulary

#if canImport(Glibc)
    import Glibc
#endif

/// What a DNS server said about a name.
public enum DNSAnswer: Equatable, Sendable {
    case addresses([IPAddress])
    case noData
    case nxdomain
    case servfail
    case refused
    case rcode(UInt8)
    case timeout
    /// The server's address refused the packet (ICMP port unreachable): nothing listens there.
    case unreachable
    case failure(String)

    public var summary: String {
        switch self {
        case .addresses(let a): return a.map(\.description).joined(separator: ", ")
        case .noData: return "no address records (NOERROR, empty answer)"
        case .nxdomain: return "NXDOMAIN (the name does not exist there)"
        case .servfail: return "SERVFAIL (the server failed to answer)"
        case .refused: return "REFUSED (the server refuses to answer this name)"
        case .rcode(let c): return "answer code \(c)"
        case .timeout: return "no answer (timeout)"
        case .unreachable: return "nothing listens for DNS there (connection refused)"
        case .failure(let why): return why
        }
    }
}

/// A DNS client like `nslookup NAME SERVER`: asks one server directly over UDP, and over TCP
/// when the answer is truncated. Replies are bounded in size and time.
public struct DNSClient: Sendable {
    public var timeoutMilliseconds: Int32
    public var port: UInt16

    public init(timeoutMilliseconds: Int32 = 2000, port: UInt16 = 53) {
        self.timeoutMilliseconds = timeoutMilliseconds
        self.port = port
    }

    public func query(_ name: DomainName, type: DNSMessage.RecordType, server: IPAddress) -> DNSAnswer {
        let id = UInt16.random(in: 0...UInt16.max)
        let question = DNSMessage.query(id: id, name: name, type: type)
        var reply = exchange(question, id: id, server: server, tcp: false)
        if case .success(let r) = reply, r.truncated {
            reply = exchange(question, id: id, server: server, tcp: true)
        }
        switch reply {
        case .failure(let answer): return answer
        case .success(let r):
            switch r.rcode {
            case 0: return r.addresses.isEmpty ? .noData : .addresses(r.addresses)
            case 2: return .servfail
            case 3: return .nxdomain
            case 5: return .refused
            default: return .rcode(r.rcode)
            }
        }
    }

    /// A and AAAA together: addresses when either has some; otherwise the A answer.
    public func lookup(_ name: DomainName, server: IPAddress) -> DNSAnswer {
        let a = query(name, type: .a, server: server)
        if case .addresses = a { return a }
        let aaaa = query(name, type: .aaaa, server: server)
        if case .addresses = aaaa { return aaaa }
        return a
    }

    package enum Exchange {
        case success(DNSMessage.Response)
        case failure(DNSAnswer)
    }

    private func exchange(_ question: [UInt8], id: UInt16, server: IPAddress, tcp: Bool) -> Exchange {
        let socket: Socket
        do {
            socket = try Socket.connect(
                to: server, port: port, type: Int32(tcp ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue),
                timeoutMilliseconds: timeoutMilliseconds)
        } catch let e as SocketError {
            return .failure(Self.answer(for: e))
        } catch {
            return .failure(.failure("\(error)"))
        }
        do {
            if tcp {
                try socket.writeAll([UInt8(question.count >> 8), UInt8(question.count & 0xff)] + question)
                let lengthBytes = try socket.readExactly(2)
                let length = Int(lengthBytes[0]) << 8 | Int(lengthBytes[1])
                let body = try socket.readExactly(length)
                let r = try DNSMessage.parse(body)
                return r.id == id ? .success(r) : .failure(.failure("reply with a wrong id"))
            }
            try socket.writeAll(question)
            // UDP: ignore datagrams that are not the reply to this question, until the deadline.
            while true {
                let datagram = try socket.readSome(max: 65535)
                if let r = try? DNSMessage.parse(datagram), r.id == id { return .success(r) }
            }
        } catch let e as SocketError {
            return .failure(Self.answer(for: e))
        } catch let e as DNSMessage.ParseError {
            return .failure(.failure("malformed reply: \(e.reason)"))
        } catch {
            return .failure(.failure("\(error)"))
        }
    }

    package static func answer(for error: SocketError) -> DNSAnswer {
        error.isTimeout ? .timeout : error.isRefused ? .unreachable : .failure(error.description)
    }
}
