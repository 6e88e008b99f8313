import Glibc

/// Writes `text` whole to standard output (1) or error (2), retrying short writes and EINTR.
public func writeStandard(_ text: String, to fd: Int32 = 1) {
    _ = Syscall.writeAll(fd, Array(text.utf8))
}
