import Vocabulary

#if canImport(Glibc)
    import Glibc
#endif

/// The host files one run of the agent's has read through `HostFolderReads`, kept for that run
/// alone by what fstat says of them: device, inode, size, modification and change time. A
/// `bootstrap` reads the same ~140 CA files two or three times (the store's check before the
/// plan, the native rebuild, Go's pool, which reaches them through /etc/ssl/certs' links): the
/// later readings look at the file (`fstatat` of its entry, inside the root as before) and take
/// the bytes kept when nothing of that changed. A file rewritten or replaced in the run (the
/// bundle the rebuild writes is a new inode, a change in place moves its change time) is read
/// again. A file changed less than a second before it is read is not kept: file times tick
/// coarsely (a jiffy, up to 4 ms, on kernels without fine-grained timestamps), so a rewrite in
/// place right after the read could leave every field the same; a file last changed a second
/// before cannot change again with the same times. Off outside `during`; at most 16 MB kept,
/// files of at most 1 MB.
public enum HostReadMemo {
    struct Identity: Hashable {
        let device: UInt64, inode: UInt64, size: Int64
        let modified: Int, modifiedNanoseconds: Int, changed: Int, changedNanoseconds: Int

        init(_ st: stat) {
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
            size = Int64(st.st_size)
            modified = st.st_mtim.tv_sec
            modifiedNanoseconds = st.st_mtim.tv_nsec
            changed = st.st_ctim.tv_sec
            changedNanoseconds = st.st_ctim.tv_nsec
        }
    }

    private static let lock = PlainLock()
    nonisolated(unsafe) private static var files: [Identity: [UInt8]]?
    nonisolated(unsafe) private static var kept = 0
    static let fileLimit = 1 << 20
    static let totalLimit = 16 << 20

    /// Runs `body` with the memo on, and empties it after.
    public static func during<T>(_ body: () throws -> T) rethrows -> T {
        lock.withLock {
            files = [:]
            kept = 0
        }
        defer {
            lock.withLock {
                files = nil
                kept = 0
            }
        }
        return try body()
    }

    /// The bytes kept for the regular file fstat describes as `st`; nil when none.
    static func bytes(_ st: stat) -> [UInt8]? {
        lock.withLock { files?[Identity(st)] }
    }

    /// Keeps `bytes`, read from the regular file fstat described as `st` before the read.
    static func keep(_ bytes: [UInt8], _ st: stat) {
        guard bytes.count <= fileLimit, Int(st.st_size) == bytes.count else { return }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        guard now.tv_sec - st.st_ctim.tv_sec >= 2 || (now.tv_sec - st.st_ctim.tv_sec == 1 && now.tv_nsec >= st.st_ctim.tv_nsec)
        else { return }
        lock.withLock {
            guard files != nil, kept + bytes.count <= totalLimit else { return }
            if files?.updateValue(bytes, forKey: Identity(st)) == nil { kept += bytes.count }
        }
    }
}
