import Vocabulary

/// D-Bus properties (`org.freedesktop.DBus.Properties`), read failing closed: a property the
/// answer lacks, or carries with another type than the one asked for, is an error naming it and
/// what was found (`PropertyMismatch`), never a default value.
extension SystemBus {
    /// Reads a property (`Get`); `read` gets the reader positioned inside the variant. A variant
    /// of another signature than `signature` throws `PropertyMismatch`; the service's refusal
    /// (e.g. `org.freedesktop.DBus.Error.UnknownProperty`) a `BusCallError`.
    public func property<T>(
        destination: String, path: String, interface: String, name: String,
        signature: String, read: (MessageReader) throws -> T
    ) throws -> T {
        try call(
            destination: destination, path: path, interface: "org.freedesktop.DBus.Properties", member: "Get",
            build: { w in
                try w.append(string: interface)
                try w.append(string: name)
            },
            read: { r in
                let found = try r.variantSignature()
                guard found == signature else {
                    throw PropertyMismatch(
                        interface: interface, path: path, problems: [.init(name: name, expected: signature, found: found)])
                }
                try r.enter("v", signature)
                let value = try read(r)
                try r.exit()
                return value
            })
    }

    /// Reads the properties `expected` (name: D-Bus signature) of `interface` in one round trip
    /// (`GetAll`), as strictly as a `Get` of each: one the answer lacks, or carries with another
    /// signature, throws `PropertyMismatch` naming every such one and what was found (after the
    /// whole answer is read; `read` has then seen the others). `read` gets each expected one's
    /// name with the reader inside its variant; the answer's other properties are skipped.
    public func properties(
        destination: String, path: String, interface: String, expected: [String: String],
        read: (_ name: String, MessageReader) throws -> Void
    ) throws {
        var seen = Set<String>()
        var wrong: [String: String] = [:]
        try call(
            destination: destination, path: path, interface: "org.freedesktop.DBus.Properties", member: "GetAll",
            build: { try $0.append(string: interface) },
            read: { r in
                try r.enter("a", "{sv}")
                while try r.enter("e", "sv") {
                    let name = try r.string()
                    let found = try r.variantSignature()
                    if let signature = expected[name], !seen.contains(name), found == signature {
                        try r.enter("v", signature)
                        try read(name, r)
                        try r.exit()
                        seen.insert(name)
                    } else {
                        if expected[name] != nil, !seen.contains(name) { wrong[name] = found ?? "" }
                        try r.skip("v")
                    }
                    try r.exit()
                }
                try r.exit()
            })
        let problems = expected.keys.sorted().filter { !seen.contains($0) }.map {
            PropertyMismatch.Problem(name: $0, expected: expected[$0]!, found: wrong[$0])
        }
        guard problems.isEmpty else { throw PropertyMismatch(interface: interface, path: path, problems: problems) }
    }
}

/// Properties of an object that could not be read as asked: missing from the answer, or of
/// another type than expected.
public struct PropertyMismatch: Error, CustomStringConvertible, Sendable {
    public struct Problem: Equatable, Sendable {
        public let name: String
        /// The D-Bus signature asked for, e.g. "s".
        public let expected: String
        /// The signature the answer carried; nil: the property was missing.
        public let found: String?

        /// e.g. "ActiveState is missing", "ActiveEnterTimestamp is of type 's' where 't' was asked for".
        public func text(expectedAs owner: String) -> String {
            guard let found else { return "\(name) is missing" }
            return "\(name) is of type '\(found)' where \(owner) is '\(expected)'"
        }
    }

    public let interface: String
    public let path: String
    public let problems: [Problem]

    /// The problems, each named, with `owner` for whose type was expected (e.g. "systemd's").
    public func text(expectedAs owner: String = "the one asked for") -> String {
        problems.map { $0.text(expectedAs: owner) }.joined(separator: "; ")
    }

    public var description: String { "\(interface) at \(path): \(text())" }
}
