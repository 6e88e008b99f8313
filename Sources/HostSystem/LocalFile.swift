import FoundationEssentials
import Glibc
import Vocabulary

extension HostFiles {
    /// A file a person named on this machine (`--ca`, `--registry-auth`, `--config`), not under
    /// the host root, read with the same guards as the host's files: only a regular file (a FIFO
    /// would block the read, a device never end it), at most `limit` bytes. Symlinks are followed
    /// (a Secret volume's `ca.crt` is one). Every error names `what` and the path, with `code`.
    public static func readLocalFile(_ path: String, what: String, limit: Int, code: AgentError.Code = .invalidInput) throws -> [UInt8] {
        let name = "\(what) \(path)"
        func refuse(_ st: stat) -> AgentError? {
            switch st.st_mode & S_IFMT {
            case S_IFREG:
                return st.st_size > limit ? AgentError(code, "\(name) is larger than \(limit) bytes") : nil
            case S_IFDIR: return AgentError(code, "\(name) is a folder", hint: "pass the file inside it")
            default: return AgentError(code, "\(name) is not a regular file (a FIFO, socket or device)", hint: "pass a file")
            }
        }
        // Looked at before it is opened (opening a device can have effects of its own), and again
        // once open, in case it was replaced in between.
        var st = stat()
        guard stat(path, &st) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw AgentError(code, "\(name) does not exist") }
            throw AgentError(code, "cannot read \(name)", errno: errno, hint: "check its permissions")
        }
        if let error = refuse(st) { throw error }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw AgentError(code, "cannot read \(name)", errno: errno, hint: "check its permissions")
        }
        defer { close(fd) }
        guard fstat(fd, &st) == 0 else { throw AgentError(code, "cannot read \(name)", errno: errno) }
        if let error = refuse(st) { throw error }
        return try readToEnd(fd, limit: limit, naming: name, code: code)
    }

    /// The rest of an open file, refused once it passes `limit` bytes.
    /// `sizeHint`: the size fstat gave, so that a small file (a CA file, ~2 KB, ~140 of them a
    /// run) takes a buffer its size rather than 64 KB zeroed for each.
    static func readToEnd(_ fd: Int32, limit: Int, naming name: String, code: AgentError.Code, sizeHint: Int = 65535) throws -> [UInt8] {
        var out: [UInt8] = []
        let chunk = min(max(sizeHint + 1, 4096), 65536)
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: chunk) { buffer in
            while true {
                let n = Syscall.restarting { Glibc.read(fd, buffer.baseAddress, buffer.count) }
                if n < 0 { throw AgentError(code, "cannot read \(name)", errno: errno) }
                if n == 0 { break }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[0..<n]))
                if out.count > limit {
                    throw AgentError(code, "\(name) is larger than \(limit) bytes")
                }
            }
        }
        return out
    }
}
