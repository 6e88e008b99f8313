import CSystemd
import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

/// A connection to a D-Bus system bus by address, on libsystemd's sd-bus.
///
/// An sd-bus connection is single-threaded and its calls block: an instance must be used from one
/// thread at a time (the agent's commands are synchronous; long-running services give it its own
/// thread). That is why it is `@unchecked Sendable`: ownership moves between threads, use does not overlap.
public final class SystemBus: @unchecked Sendable {
    let handle: OpaquePointer
    public let address: String

    /// The address of the host's system bus as seen through a host root.
    public static func address(hostRoot: String) -> String {
        let socket = (hostRoot == "/" ? "" : hostRoot) + "/run/dbus/system_bus_socket"
        return "unix:path=" + escapeAddressValue(socket)
    }

    public init(address: String) throws {
        var bus: OpaquePointer?
        var r = sd_bus_new(&bus)
        guard r >= 0, let bus else { throw Self.error(r, "cannot allocate a D-Bus connection") }
        handle = bus
        r = sd_bus_set_address(bus, address)
        guard r >= 0 else {
            sd_bus_unref(bus)
            throw Self.error(r, "invalid D-Bus address '\(address.escapedForMessage)'")
        }
        // Without this sd-bus does not send Hello and the bus daemon drops the connection.
        sd_bus_set_bus_client(bus, 1)
        r = sd_bus_start(bus)
        guard r >= 0 else {
            sd_bus_unref(bus)
            throw AgentError(
                .dbus, "cannot connect to the system bus at \(address)", errno: -r,
                hint: "pass --dbus-address, or mount the host's /run/dbus/system_bus_socket")
        }
        self.address = address
    }

    deinit { sd_bus_flush_close_unref(handle) }

    /// Calls a method. `build` appends the arguments; the reply is handed to `read`.
    public func call<T>(
        destination: String, path: String, interface: String, member: String,
        timeoutMicroseconds: UInt64 = 10_000_000,
        build: (MessageWriter) throws -> Void = { _ in },
        read: (MessageReader) throws -> T
    ) throws -> T {
        var message: OpaquePointer?
        var r = sd_bus_message_new_method_call(handle, &message, destination, path, interface, member)
        guard r >= 0, let message else { throw Self.error(r, "cannot build \(interface).\(member)") }
        defer { sd_bus_message_unref(message) }
        try build(MessageWriter(message: message, context: member))
        var error = node_agent_bus_error_null()
        defer { sd_bus_error_free(&error) }
        var reply: OpaquePointer?
        r = sd_bus_call(handle, message, timeoutMicroseconds, &error, &reply)
        guard r >= 0, let reply else {
            throw BusCallError(
                name: error.name.map { String(cString: $0) } ?? "",
                message: error.message.map { String(cString: $0) } ?? Self.errnoText(r),
                member: "\(interface).\(member)")
        }
        defer { sd_bus_message_unref(reply) }
        return try read(MessageReader(message: reply, context: member))
    }

    /// Whether a service holds `name` on this bus now (false when the bus cannot say).
    public func hasOwner(_ name: String) -> Bool {
        (try? call(
            destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus",
            member: "NameHasOwner", build: { try $0.append(string: name) }, read: { try $0.bool() })) ?? false
    }

    static func error(_ r: Int32, _ what: String) -> AgentError {
        AgentError(.dbus, what, errno: -r)
    }

    static func errnoText(_ r: Int32) -> String {
        String(cString: strerror(-r))
    }

    /// D-Bus address values escape every byte outside `[-0-9A-Za-z_/.\\]` as `%XX`.
    static func escapeAddressValue(_ value: String) -> String {
        var out = ""
        for byte in value.utf8 {
            let c = Character(Unicode.Scalar(byte))
            if c.isASCII && (c.isLetter || c.isNumber || "-_/.\\".contains(c)) {
                out.append(c)
            } else {
                out += "%" + byte.upperHex(width: 2)
            }
        }
        return out
    }
}

/// A failed D-Bus call, with the error name the service gave.
extension SystemBus {
    /// The unique name that owns `name` on the bus (e.g. whether org.freedesktop.resolve1 is
    /// served, and by which connection: a new owner is a restarted service); nil when none does.
    public func nameOwner(_ name: String) throws -> String? {
        do {
            return try call(
                destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus",
                member: "GetNameOwner", build: { try $0.append(string: name) }, read: { try $0.string() })
        } catch let e as BusCallError where e.name == "org.freedesktop.DBus.Error.NameHasNoOwner" {
            return nil
        }
    }
}

public struct BusCallError: Error, CustomStringConvertible {
    public let name: String
    public let message: String
    public let member: String
    public var description: String { "\(member) failed: \(message)\(name.isEmpty ? "" : " [\(name)]")" }
}

/// Appends arguments to a method call.
public struct MessageWriter {
    let message: OpaquePointer
    let context: String

    private func check(_ r: Int32) throws {
        guard r >= 0 else { throw AgentError(.dbus, "cannot build \(context)", errno: -r) }
    }

    public func append(int32 value: Int32) throws {
        var v = value
        try check(sd_bus_message_append_basic(message, CChar(UInt8(ascii: "i")), &v))
    }

    public func append(uint32 value: UInt32) throws {
        var v = value
        try check(sd_bus_message_append_basic(message, CChar(UInt8(ascii: "u")), &v))
    }

    public func append(uint64 value: UInt64) throws {
        var v = value
        try check(sd_bus_message_append_basic(message, CChar(UInt8(ascii: "t")), &v))
    }

    public func append(bool value: Bool) throws {
        var v: Int32 = value ? 1 : 0
        try check(sd_bus_message_append_basic(message, CChar(UInt8(ascii: "b")), &v))
    }

    public func append(string value: String) throws {
        try check(value.withCString { sd_bus_message_append_basic(message, CChar(UInt8(ascii: "s")), $0) })
    }

    public func append(bytes value: [UInt8]) throws {
        try check(value.withUnsafeBytes { sd_bus_message_append_array(message, CChar(UInt8(ascii: "y")), $0.baseAddress, $0.count) })
    }

    public func open(_ type: Character, _ contents: String) throws {
        try check(sd_bus_message_open_container(message, CChar(type.asciiValue!), contents))
    }

    public func close() throws {
        try check(sd_bus_message_close_container(message))
    }
}

/// Reads values from a reply.
public struct MessageReader {
    let message: OpaquePointer
    let context: String

    private func check(_ r: Int32) throws {
        guard r >= 0 else { throw AgentError(.dbus, "unexpected reply to \(context)", errno: -r) }
    }

    public func int32() throws -> Int32 {
        var v: Int32 = 0
        try check(sd_bus_message_read_basic(message, CChar(UInt8(ascii: "i")), &v))
        return v
    }

    public func uint64() throws -> UInt64 {
        var v: UInt64 = 0
        try check(sd_bus_message_read_basic(message, CChar(UInt8(ascii: "t")), &v))
        return v
    }

    public func uint32() throws -> UInt32 {
        var v: UInt32 = 0
        try check(sd_bus_message_read_basic(message, CChar(UInt8(ascii: "u")), &v))
        return v
    }

    public func bool() throws -> Bool {
        var v: Int32 = 0
        try check(sd_bus_message_read_basic(message, CChar(UInt8(ascii: "b")), &v))
        return v != 0
    }

    public func string(type: Character = "s") throws -> String {
        var p: UnsafePointer<CChar>?
        try check(sd_bus_message_read_basic(message, CChar(type.asciiValue!), &p))
        return p.map { String(cString: $0) } ?? ""
    }

    public func bytes() throws -> [UInt8] {
        var p: UnsafeRawPointer?
        var size = 0
        try check(sd_bus_message_read_array(message, CChar(UInt8(ascii: "y")), &p, &size))
        guard let p, size > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: size))
    }

    /// The signature of the variant at the reader's position; nil when it is not a variant.
    public func variantSignature() throws -> String? {
        var type: CChar = 0
        var contents: UnsafePointer<CChar>?
        let r = sd_bus_message_peek_type(message, &type, &contents)
        try check(r)
        guard r > 0, type == CChar(UInt8(ascii: "v")), let contents else { return nil }
        return String(cString: contents)
    }

    /// Skips the values of `types` (a signature) at the reader's position.
    public func skip(_ types: String) throws { try check(sd_bus_message_skip(message, types)) }

    /// Enters a container; returns false at the end of an array (nothing left to enter).
    @discardableResult
    public func enter(_ type: Character, _ contents: String) throws -> Bool {
        let r = sd_bus_message_enter_container(message, CChar(type.asciiValue!), contents)
        try check(r)
        return r > 0
    }

    public func exit() throws {
        try check(sd_bus_message_exit_container(message))
    }
}
