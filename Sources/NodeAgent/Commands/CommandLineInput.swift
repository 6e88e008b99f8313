import ArgumentParser
import Vocabulary

/// The command line after EnvironmentOptions filled it, and where each filled option came from:
/// messages about an option name what the user set (`NODE_AGENT_TIMEOUT`, or the config file's
/// line), not a flag the user never typed.
struct CommandLineInput {
    var arguments: [String]
    /// Option name (without dashes) -> where its value came from, for options not on the command line.
    var sources: [String: OptionSource]

    /// The subcommand named, if any.
    var command: String? {
        guard let first = arguments.first, NodeAgent.configuration.subcommands.contains(where: { $0._commandName == first }) else {
            return nil
        }
        return first
    }

    /// How to call option `name` in a message: its flag, or what set it.
    func label(_ name: String, flag: String? = nil) -> String {
        switch sources[name] {
        case .environment(let variable)?: return variable
        case .file(let path, let line, let key)?: return "\(key) (\(path):\(line))"
        case nil: return flag ?? "--\(name)"
        }
    }

    /// `message` with each option that came from the environment or the config file named as
    /// the user set it (`--timeout` -> `NODE_AGENT_TIMEOUT`).
    func naming(_ message: String) -> String {
        var out = ""
        var rest = Substring(message)
        while let dashes = rest.firstRange(of: "--") {
            out += rest[..<dashes.lowerBound]
            let word = rest[dashes.upperBound...].prefix { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            out += sources[String(word)] != nil ? label(String(word)) : "--" + word
            rest = rest[word.endIndex...]
        }
        return out + rest
    }

    /// One line for a usage error that ArgumentParser described as `message` (its
    /// `message(for:)`), ending with where to read more: `--registry is missing (or
    /// NODE_AGENT_REGISTRY); see 'node-agent probe --help'`.
    func usageLine(_ message: String, command: String?) -> String {
        let see = "; see 'node-agent\(command.map { " \($0)" } ?? "") --help'"
        let known = command.map { (EnvironmentOptions.options[$0] ?? []) + (EnvironmentOptions.flags[$0] ?? []) } ?? []
        if let m = message.wholeMatch(of: /Missing expected argument '--([a-z0-9-]+)(?: <[^>]*>)?'/) {
            let name = String(m.1)
            let variable = known.contains(name) ? " (or \(EnvironmentOptions.envName(name)))" : ""
            return "--\(name) is missing\(variable)\(see)"
        }
        if let m = message.wholeMatch(of: /The value '(.*)' is invalid for '(-{1,2}[a-z0-9-]+)(?: <([^>]*)>)?'(.*)/.dotMatchesNewlines()) {
            let (value, flag, valueName, rest) = (String(m.1), String(m.2), m.3.map(String.init), String(m.4))
            let name = Self.longName(flag)
            let what: String
            if let list = rest.wholeMatch(of: /\. Please provide one of (.*)\./.dotMatchesNewlines()) {
                what = "is not one of \(list.1)"
            } else if rest.hasPrefix(": ") {
                what = "is not valid: \(rest.dropFirst(2))"
            } else if let valueName, ["seconds", "days"].contains(valueName) {
                what = "is not a number of \(valueName)"
            } else {
                what = "is not valid"
            }
            let who: String
            switch sources[name] {
            case .environment(let variable)?: who = "\(variable)='\(value)'"
            case .file(let path, let line, let key)?: who = "\(path):\(line): \(key)='\(value)'"
            case nil: who = "\(flag == "-o" ? "-o/--output" : flag) '\(value)'"
            }
            return Self.oneLine("\(who) \(what)") + see
        }
        if let m = message.wholeMatch(of: /Missing value for '(-{1,2}[a-z0-9-]+)(?: <([^>]*)>)?'/) {
            return "\(m.1) needs a value\(m.2.map { " (<\($0)>)" } ?? "")\(see)"
        }
        if let m = message.wholeMatch(of: /Unknown option '([^']*)'(?:\. Did you mean '([^']*)'\?)?/) {
            return "unknown option '\(m.1)'\(m.2.map { " (did you mean '\($0)'?)" } ?? "")\(see)"
        }
        var line = Self.oneLine(message)
        if line.hasSuffix(".") { line.removeLast() }
        if let first = line.first, first.isUppercase, line.dropFirst().first?.isLowercase == true {
            line = first.lowercased() + line.dropFirst()
        }
        return line + see
    }

    /// `-o` -> `output`, `--timeout` -> `timeout`.
    static func longName(_ flag: String) -> String {
        if flag.hasPrefix("--") { return String(flag.dropFirst(2)) }
        let short = String(flag.dropFirst())
        return EnvironmentOptions.shortNames.first { $0.value == short }?.key ?? short
    }

    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingBlanks() }.filter { !$0.isEmpty }.joined(separator: " ")
    }
}

/// A usage error (ArgumentParser's exit 64): the agent prints it on one line and exits 2.
struct UsageFailure: Error {
    /// ArgumentParser's `message(for:)`.
    var message: String
    /// The command whose help to point to.
    var command: String?
}
