import Foundation
import TestSupport
import Vocabulary
import XCTest

@testable import HostSystem

/// HostReadMemo: a run reads a CA file once while it is unchanged, and never gives bytes the
/// file no longer holds: a file rewritten in place (same size, the same inode) or replaced in
/// the run is read again, one changed within the last second is not kept at all, and outside a
/// run nothing is kept.
final class HostReadMemoTests: XCTestCase {
    var root: TemporaryHostRoot!
    var dir: String { root.directory }
    var files: HostFiles { root.files }

    override func setUpWithError() throws {
        root = try TemporaryHostRoot("readmemo")
        try FileManager.default.createDirectory(atPath: dir + "/etc/ssl/certs", withIntermediateDirectories: true)
    }

    override func tearDown() {
        root = nil
    }

    /// Writes `text` into the file in place (the same inode: truncated and written again).
    func rewrite(_ name: String, _ text: String) throws {
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: dir + name))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    func read(_ name: String) throws -> String? {
        try HostFolderReads(files: files).read(try HostPath(name)).map { String(decoding: $0, as: UTF8.self) }
    }

    func testAFileRewrittenInTheRunIsReadAgain() throws {
        let name = "/etc/ssl/certs/a.pem"
        try "first-version\n".write(toFile: dir + name, atomically: false, encoding: .utf8)
        // Old enough to be kept: changed more than a second before the run reads it.
        Thread.sleep(forTimeInterval: 1.1)
        try HostReadMemo.during {
            XCTAssertEqual(try read(name), "first-version\n")
            XCTAssertEqual(try read(name), "first-version\n")
            try rewrite(name, "other-version\n")  // the same size, the same inode
            XCTAssertEqual(try read(name), "other-version\n", "bytes the file no longer holds")
            try "replaced-file\n".write(toFile: dir + name, atomically: true, encoding: .utf8)  // a new inode
            XCTAssertEqual(try read(name), "replaced-file\n")
        }
    }

    func testAFileChangedWithinTheLastSecondIsNotKept() throws {
        let name = "/etc/ssl/certs/b.pem"
        try "first-version\n".write(toFile: dir + name, atomically: false, encoding: .utf8)
        try HostReadMemo.during {
            XCTAssertEqual(try read(name), "first-version\n")
            // At once, in place: on a kernel whose file times tick by the jiffy every field of
            // fstat can be as it was; the memo must not have kept the first reading.
            try rewrite(name, "other-version\n")
            XCTAssertEqual(try read(name), "other-version\n")
        }
    }

    func testOutsideARunNothingIsKept() throws {
        let name = "/etc/ssl/certs/c.pem"
        try "first-version\n".write(toFile: dir + name, atomically: false, encoding: .utf8)
        Thread.sleep(forTimeInterval: 1.1)
        XCTAssertEqual(try read(name), "first-version\n")
        try HostReadMemo.during {
            try rewrite(name, "other-version\n")
            XCTAssertEqual(try read(name), "other-version\n")
        }
    }

    /// The rule itself, whatever the kernel's file times: a reading is kept only for a file whose
    /// change time is a second old or more.
    func testOnlyAFileChangedASecondAgoOrMoreIsKept() throws {
        var st = stat()
        st.st_size = 3
        st.st_ino = 42
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        try HostReadMemo.during {
            st.st_ctim = now
            HostReadMemo.keep([1, 2, 3], st)
            XCTAssertNil(HostReadMemo.bytes(st), "kept a file changed just now")
            // Half a second ago.
            st.st_ctim =
                now.tv_nsec >= 500_000_000
                ? timespec(tv_sec: now.tv_sec, tv_nsec: now.tv_nsec - 500_000_000)
                : timespec(tv_sec: now.tv_sec - 1, tv_nsec: now.tv_nsec + 500_000_000)
            HostReadMemo.keep([1, 2, 3], st)
            XCTAssertNil(HostReadMemo.bytes(st), "kept a file changed less than a second ago")
            st.st_ctim.tv_sec = now.tv_sec - 2
            HostReadMemo.keep([1, 2, 3], st)
            XCTAssertEqual(HostReadMemo.bytes(st), [1, 2, 3])
            st.st_mtim.tv_nsec += 1
            XCTAssertNil(HostReadMemo.bytes(st), "another modification time is another file")
        }
        XCTAssertNil(HostReadMemo.bytes(st), "kept after the run")
    }
}
