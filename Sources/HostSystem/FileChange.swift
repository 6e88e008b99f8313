import Glibc
import Vocabulary

/// One planned change of one host file. Plans are computed purely from what is on the host and
/// what is wanted; an empty plan means "already done".
public struct FileChange: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable { case create, replace, remove }

    public var kind: Kind
    public var path: HostPath
    public var contents: [UInt8]
    public var mode: UInt32
    public var reason: String

    public init(kind: Kind, path: HostPath, contents: [UInt8] = [], mode: UInt32 = 0o644, reason: String) {
        self.kind = kind
        self.path = path
        self.contents = contents
        self.mode = mode
        self.reason = reason
    }

    /// The change that makes `path` hold `contents`, or nil when it already does.
    public static func ensure(
        _ path: HostPath, holds contents: [UInt8], mode: UInt32 = 0o644,
        reason: String, files: HostFiles
    ) throws -> FileChange? {
        ensure(path, holds: contents, mode: mode, current: try files.read(path), reason: reason)
    }

    /// The same from what the file holds now (`current`, nil when absent), read beforehand: no I/O.
    public static func ensure(
        _ path: HostPath, holds contents: [UInt8], mode: UInt32 = 0o644,
        current: [UInt8]?, reason: String
    ) -> FileChange? {
        if current == contents { return nil }
        return FileChange(
            kind: current == nil ? .create : .replace, path: path, contents: contents,
            mode: mode, reason: reason)
    }

    public func apply(to files: HostFiles) throws { try Self.apply([self], to: files) }

    /// The changes in their order, as one batch (`HostFiles.perform`): each file atomic, one
    /// journal commit for all instead of two per file.
    public static func apply(_ changes: [FileChange], to files: HostFiles) throws {
        try files.perform(changes.map(\.operation))
    }

    /// The change as `HostFiles.perform` takes it.
    public var operation: HostFiles.Operation {
        switch kind {
        case .create, .replace: .write(path, contents, mode: mode_t(mode))
        case .remove: .remove(path)
        }
    }

    public var description: String { "\(kind.rawValue) \(path): \(reason)" }
}
