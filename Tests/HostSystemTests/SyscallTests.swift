import Foundation
import Glibc
import HostSystem
import Vocabulary
import XCTest

/// The one syscall layer: a blocking call that a signal interrupts (a handler installed without
/// SA_RESTART, as Go, libdispatch and the agent's own signal handling may leave them) is made
/// again, and poll(2) is restarted with the time left, never past its deadline.
final class SyscallTests: XCTestCase {
    private var previous = sigaction()

    override func setUp() {
        // A handler without SA_RESTART: the kernel ends a blocked read or poll with EINTR.
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        action.sa_flags = 0
        sigemptyset(&action.sa_mask)
        sigaction(SIGUSR2, &action, &previous)
    }

    override func tearDown() { sigaction(SIGUSR2, &previous, nil) }

    /// Signals the calling thread `count` times, 50 ms apart, then writes one byte to `fd`.
    private func interrupt(_ count: Int, thenWrite fd: Int32?) -> Thread {
        let target = pthread_self()
        let thread = Thread {
            for _ in 0..<count {
                usleep(50_000)
                pthread_kill(target, SIGUSR2)
            }
            usleep(50_000)
            if let fd { _ = Syscall.writeAll(fd, [0x78]) }
        }
        thread.start()
        return thread
    }

    private func makePipe() -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&fds), 0)
        return (fds[0], fds[1])
    }

    func testABlockedReadInterruptedBySignalsIsMadeAgain() {
        let (r, w) = makePipe()
        defer {
            close(r)
            close(w)
        }
        // Without the layer, the same signal ends the read: the setup really interrupts.
        _ = interrupt(1, thenWrite: w)
        var buffer = [UInt8](repeating: 0, count: 8)
        let plain = buffer.withUnsafeMutableBytes { read(r, $0.baseAddress, $0.count) }
        let plainErrno = errno
        XCTAssertEqual(plain, -1)
        XCTAssertEqual(plainErrno, EINTR)
        usleep(150_000)
        XCTAssertEqual(Syscall.read(r, into: &buffer), 1, "the byte written after the signal")

        _ = interrupt(3, thenWrite: w)
        XCTAssertEqual(Syscall.read(r, into: &buffer), 1, "three signals, then the byte")
        XCTAssertEqual(buffer[0], 0x78)
    }

    func testPollIsRestartedWithTheTimeLeftAndEndsAtItsDeadline() {
        let (r, w) = makePipe()
        defer {
            close(r)
            close(w)
        }
        var fds = [pollfd(fd: r, events: Int16(POLLIN), revents: 0)]
        _ = interrupt(2, thenWrite: w)
        XCTAssertEqual(Syscall.poll(&fds, until: monotonicNanoseconds() + 5_000_000_000), 1, "readable after two signals")

        // Nothing to read: interrupted twice, it still ends at its deadline, not later, not with -1.
        var buffer = [UInt8](repeating: 0, count: 8)
        XCTAssertEqual(Syscall.read(r, into: &buffer), 1)
        fds[0].revents = 0
        _ = interrupt(2, thenWrite: nil)
        let start = monotonicNanoseconds()
        let deadline = start + 300_000_000
        XCTAssertEqual(Syscall.poll(&fds, until: deadline), 0)
        let end = monotonicNanoseconds()
        XCTAssertGreaterThanOrEqual(end, deadline, "ended before its deadline")
        XCTAssertLessThan(end - start, 2_000_000_000, "restarted with the whole time again and again")
    }

    func testWriteAllWritesEverythingOrSaysWhy() {
        let (r, w) = makePipe()
        let bytes = [UInt8](repeating: 0x61, count: 200_000)  // more than a pipe holds at once
        let done = DispatchSemaphore(value: 0)
        let reader = Thread {
            var total = 0
            var buffer = [UInt8](repeating: 0, count: 65536)
            while case let n = Syscall.read(r, into: &buffer), n > 0 { total += n }
            XCTAssertEqual(total, bytes.count)
            done.signal()
        }
        reader.start()
        XCTAssertEqual(Syscall.writeAll(w, bytes), 0)
        close(w)
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        close(r)
        XCTAssertEqual(Syscall.writeAll(w, [1]), EBADF, "a closed descriptor: the errno, not a crash")
    }

    func testWaitpidReapsAndReportsTheExitStatus() throws {
        let pid = fork()
        if pid == 0 { _exit(7) }
        XCTAssertGreaterThan(pid, 0)
        let (reaped, status) = Syscall.waitpid(pid)
        XCTAssertEqual(reaped, pid)
        XCTAssertEqual((status >> 8) & 0xff, 7)
        XCTAssertEqual(Syscall.waitpid(pid).pid, -1, "reaped once")
    }
}
