import HostSystem
import Vocabulary
import XCTest

/// Asserts that `expression` throws an `AgentError` with `code` whose text (message and hint)
/// contains every one of `phrases`: what is wrong, and what to do about it. Not just "it threw".
public func assertAgentError<T>(
    _ expression: @autoclosure () throws -> T, _ code: AgentError.Code, _ phrases: String...,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertThrowsError(try expression(), file: file, line: line) { error in
        guard let error = error as? AgentError else {
            return XCTFail("threw \(type(of: error)), not an AgentError: \(error)", file: file, line: line)
        }
        XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
        for phrase in phrases {
            XCTAssertTrue(error.description.contains(phrase), "'\(error)' lacks '\(phrase)'", file: file, line: line)
        }
    }
}

/// Asserts that `expression` throws an `AgentError` with `code` and exactly `cause` (an errno, a
/// bus error name, an exit status): the value, not the words.
public func assertAgentError<T>(
    _ expression: @autoclosure () throws -> T, _ code: AgentError.Code, cause: AgentError.Cause,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertThrowsError(try expression(), file: file, line: line) { error in
        guard let error = error as? AgentError else {
            return XCTFail("threw \(type(of: error)), not an AgentError: \(error)", file: file, line: line)
        }
        XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
        XCTAssertEqual(error.cause, cause, "\(error)", file: file, line: line)
    }
}
