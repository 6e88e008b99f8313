import Glibc

/// Writes `text` whole to standard output (1) or error (2), retrying short writes and EINTR.
public func writeStandard(_ text: String, to fd: Int32 = 1) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 { if errno == EINTR { continue } else { return } }
        bytes = bytes.dropFirst(n)
    }
}
