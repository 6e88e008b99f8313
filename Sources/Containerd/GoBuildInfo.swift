/// What a Go program's binary says of how it was built (`go version -m`): the Go release and the
/// build settings that decide how it resolves names (cgo or the pure Go resolver). Read from the
/// ELF section `.go.buildinfo` (Go 1.18+ layout: a 32-byte header, then the version and the module
/// information as length-prefixed strings). Pure: works on bytes handed to it.
public struct GoBuildInfo: Equatable, Sendable {
    /// `go1.19.8`.
    public var goVersion: String
    /// The `build` settings (`CGO_ENABLED` -> `1`, `-tags` -> `netgo,osusergo`, `DefaultGODEBUG` -> ...).
    public var settings: [String: String]
    /// The main module's path (`mod` line), e.g. `github.com/containerd/containerd/v2`: a Go
    /// module's major version 2 and later is in its path, whatever the version string says
    /// (Debian's builds say `+unknown`).
    public var mainModule: String? = nil
    /// The main package's import path (`path` line), e.g.
    /// `github.com/containerd/containerd/v2/cmd/containerd`: there even in builds outside module
    /// mode, which have no `mod` line (Debian's).
    public var mainPath: String? = nil

    public init(goVersion: String, settings: [String: String], mainModule: String? = nil, mainPath: String? = nil) {
        self.goVersion = goVersion
        self.settings = settings
        self.mainModule = mainModule
        self.mainPath = mainPath
    }

    /// (major, minor) of `goVersion`, e.g. (1, 19); nil for a development build.
    public var release: (major: Int, minor: Int)? {
        guard goVersion.hasPrefix("go") else { return nil }
        let parts = goVersion.dropFirst(2).split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        return parts.count == 2 ? (parts[0], parts[1]) : nil
    }

    public var tags: [String] { (settings["-tags"] ?? "").split(separator: ",").map(String.init) }

    /// Whether the binary can call the C library's resolver: built with cgo and without `netgo`.
    public var canUseCgo: Bool { settings["CGO_ENABLED"] == "1" && !tags.contains("netgo") }

    package static let magic: [UInt8] = [0xff] + Array(" Go buildinf:".utf8)

    /// Reads the build information from an ELF file through `read(offset, count)`; nil when the
    /// file is not a 64-bit little-endian ELF Go binary of the 1.18+ layout.
    public static func read(_ read: (Int, Int) throws -> [UInt8]?) rethrows -> GoBuildInfo? {
        guard let header = try read(0, 64), header.count == 64, header.starts(with: [0x7f, 0x45, 0x4c, 0x46, 2, 1]) else { return nil }
        let shoff = Int(le(header, 0x28, 8))
        let shentsize = Int(le(header, 0x3a, 2))
        let shnum = Int(le(header, 0x3c, 2))
        let shstrndx = Int(le(header, 0x3e, 2))
        guard shoff > 0, shentsize >= 64, shnum > 0, shnum < 4096, shstrndx < shnum,
            let table = try read(shoff, shnum * shentsize), table.count == shnum * shentsize
        else { return nil }
        func section(_ i: Int) -> (name: Int, offset: Int, size: Int) {
            let b = i * shentsize
            return (Int(le(table, b, 4)), Int(le(table, b + 0x18, 8)), Int(le(table, b + 0x20, 8)))
        }
        let names = section(shstrndx)
        guard names.size < 1 << 20, let strings = try read(names.offset, names.size) else { return nil }
        let wanted = Array(".go.buildinfo".utf8) + [0]
        for i in 0..<shnum {
            let s = section(i)
            guard s.name >= 0, s.name + wanted.count <= strings.count,
                Array(strings[s.name..<(s.name + wanted.count)]) == wanted
            else { continue }
            // The strings run past the section's 32-byte header into the data that follows it
            // (the section's size does not cover them); Go's debug/buildinfo reads 64 KiB too.
            guard let bytes = try read(s.offset, 64 << 10) else { return nil }
            return parse(section: bytes)
        }
        return nil
    }

    /// Parses the contents of the `.go.buildinfo` section.
    public static func parse(section bytes: [UInt8]) -> GoBuildInfo? {
        guard bytes.count >= 32, bytes.starts(with: magic), bytes[15] & 0x2 != 0 else { return nil }
        var at = 32
        func string() -> String? {
            var length = 0
            var shift = 0
            while at < bytes.count {
                let b = bytes[at]
                at += 1
                length |= Int(b & 0x7f) << shift
                if b & 0x80 == 0 { break }
                shift += 7
                if shift > 28 { return nil }
            }
            guard length >= 0, at + length <= bytes.count else { return nil }
            defer { at += length }
            return String(decoding: bytes[at..<(at + length)], as: UTF8.self)
        }
        guard let version = string(), let modinfo = string() else { return nil }
        var settings: [String: String] = [:]
        let lines = modinfo.split(separator: "\n")
        let mainModule = lines.first { $0.hasPrefix("mod\t") }.flatMap { $0.split(separator: "\t").dropFirst().first.map(String.init) }
        // The first line starts after the 16 bytes that mark the module information's start.
        let mainPath = lines.lazy.compactMap { line -> String? in
            guard let r = line.firstRange(of: "path\t"),
                r.lowerBound == line.startIndex || line.distance(from: line.startIndex, to: r.lowerBound) == 16
            else { return nil }
            return String(line[r.upperBound...])
        }.first
        for line in modinfo.split(separator: "\n") where line.hasPrefix("build\t") {
            let kv = line.dropFirst(6)
            guard let eq = kv.firstIndex(of: "=") else { continue }
            settings[String(kv[..<eq])] = String(kv[kv.index(after: eq)...])
        }
        return GoBuildInfo(goVersion: version, settings: settings, mainModule: mainModule, mainPath: mainPath)
    }

    package static func le(_ b: [UInt8], _ at: Int, _ n: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in (0..<n).reversed() { v = v << 8 | UInt64(b[at + i]) }
        return v
    }
}
