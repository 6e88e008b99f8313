import Glibc
import Vocabulary

extension StartedProgram {
    /// The program's first line of standard output, without its line break, read while it runs
    /// (before its input is given): nil when no whole line came within `timeoutSeconds`, or the
    /// program closed its output or wrote `limit` bytes without one first. What it wrote after
    /// the line, or of a line that did not end, stays for `finish`. Before `finish`.
    public func firstLine(timeoutSeconds: Double, limit: Int = 65536) -> [UInt8]? {
        precondition(!finished, "a finished program's output is read by finish")
        let deadline = monotonicNanoseconds() + UInt64(max(timeoutSeconds, 0) * 1e9)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !readAhead.contains(0x0A) && readAhead.count < limit {
            var ready = [pollfd(fd: output, events: Int16(POLLIN), revents: 0)]
            guard Syscall.poll(&ready, until: deadline) > 0 else { return nil }
            let n = Syscall.read(output, into: &buffer)
            guard n > 0 else { return nil }
            readAhead += buffer[0..<n]
        }
        guard let end = readAhead.firstIndex(of: 0x0A) else { return nil }
        let line = Array(readAhead[..<end])
        readAhead.removeSubrange(...end)
        return line
    }

    /// Writes `bytes` (at most `ProcessRunner.inputLimit`, so it never blocks on the pipe) to
    /// the program's standard input and leaves it open, for more and `finish`'s end of file:
    /// false when the program's input was given already or it ended without reading it. Before
    /// `finish`.
    public func give(_ bytes: [UInt8]) -> Bool {
        precondition(!finished, "a finished program's input is closed")
        guard inputFD >= 0, bytes.count <= ProcessRunner.inputLimit else { return false }
        return writeInput(bytes)
    }
}
