import Glibc
import Vocabulary

/// The agent's blocking system calls, restarted when a signal interrupts them (EINTR), here and
/// nowhere else (NIOPosix's `System.swift` is the model). Each returns what the call returns,
/// with `errno` as the last call left it; the caller turns a failure into its own error.
/// Non-blocking descriptors (sockets, the health endpoint) treat EINTR as EAGAIN: try again when
/// poll(2) says so.
public enum Syscall {
    /// `call` again while it fails with EINTR.
    public static func restarting<T: BinaryInteger>(_ call: () -> T) -> T {
        while true {
            let result = call()
            if result >= 0 || errno != EINTR { return result }
        }
    }

    /// write(2) of all of `bytes` to `fd`, short writes continued: 0, or the errno that stopped it.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32 {
        var offset = 0
        while offset < bytes.count {
            let n = restarting { bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) } }
            if n < 0 { return errno }
            if n == 0 { return EIO }
            offset += n
        }
        return 0
    }

    /// read(2) into `buffer`: the bytes read, 0 at end of file, -1 with errno.
    public static func read(_ fd: Int32, into buffer: inout [UInt8]) -> Int {
        restarting { buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
    }

    /// pread(2) at `offset` into `buffer` from `start`: the bytes read, 0 at end of file, -1 with errno.
    public static func pread(_ fd: Int32, into buffer: inout [UInt8], from start: Int, at offset: Int) -> Int {
        restarting { buffer.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress! + start, $0.count - start, off_t(offset)) } }
    }

    /// waitpid(2) for `pid` with `options`: the pid reaped (0 with WNOHANG and still running, -1
    /// with errno), and its wait status.
    @discardableResult
    public static func waitpid(_ pid: pid_t, options: Int32 = 0) -> (pid: pid_t, status: Int32) {
        var status: Int32 = 0
        let reaped = restarting { Glibc.waitpid(pid, &status, options) }
        return (reaped, status)
    }

    /// poll(2) of `fds` until `deadline` (monotonic nanoseconds; nil: no limit), restarted with
    /// the time left when interrupted: the number ready, 0 once the deadline has passed, -1 with errno.
    public static func poll(_ fds: inout [pollfd], until deadline: UInt64?) -> Int32 {
        while true {
            var milliseconds: Int32 = -1
            if let deadline {
                let now = monotonicNanoseconds()
                // Rounded up, so that a 0 means the deadline has passed.
                milliseconds = Int32(clamping: (deadline > now ? deadline - now + 999_999 : 0) / 1_000_000)
            }
            let r = Glibc.poll(&fds, nfds_t(fds.count), milliseconds)
            if r >= 0 || errno != EINTR { return r }
        }
    }
}
