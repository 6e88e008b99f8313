import Glibc

/// A connection to a unix stream socket by its path, made one way for every caller: a new
/// `AF_UNIX` `SOCK_STREAM` socket, close-on-exec, connected to the path's address.
public enum UnixSocket {
    /// Why `connect(to:nonBlocking:)` made no connection.
    public enum Failure: Error, Equatable {
        /// The path does not fit a unix socket address: `limit` bytes at the most.
        case pathTooLong(limit: Int)
        /// socket(2) or connect(2) failed with this errno.
        case failed(Int32)
    }

    /// The longest path a unix socket address holds, in bytes (`sun_path` less its NUL: 107).
    public static let pathLimit = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// The address of the unix socket at `path`; nil where the path is longer than `pathLimit`.
    public static func address(_ path: String) -> sockaddr_un? {
        let bytes = Array(path.utf8)
        guard bytes.count <= pathLimit else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return address
    }

    /// A new socket connected to `path`: its descriptor, the caller's to close; or why not (the
    /// socket, if made, closed). `nonBlocking`: the socket is non-blocking from the start, so a
    /// listener whose backlog is full answers EAGAIN instead of waiting. A connect(2) that a
    /// signal interrupts is not made again (EINTR is its answer).
    public static func connect(to path: String, nonBlocking: Bool = false) -> Result<Int32, Failure> {
        guard var address = address(path) else { return .failure(.pathTooLong(limit: pathLimit)) }
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let fd = socket(AF_UNIX, type, 0)
        guard fd >= 0 else { return .failure(.failed(errno)) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            return .failure(.failed(code))
        }
        return .success(fd)
    }
}
