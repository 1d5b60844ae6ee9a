// Turns a list of strings into a command: resolve the subcommand, then match tokens against
// the wrappers found by reflection, then store values and call `validate()`.

/// One declaration of a command, as found by `Mirror`.
struct BoundArgument {
    let label: String
    let definition: ArgumentDefinition
    let binding: ArgumentBinding
    let longNames: [String]
    let shortNames: [Character]

    var kind: ArgumentKind { definition.kind }
    var valueName: String { definition.valueName ?? kebabCase(label) }

    /// How the declaration is shown in errors and usage: `--seed <seed>`, `<checkpoint>`, `--json`.
    var displayName: String {
        switch kind {
        case .positional: return "<\(valueName)>"
        case .flag: return flagSpellings.first.map { "--\($0.name)" } ?? "-\(shortNames.first!)"
        case .option:
            let name = longNames.first.map { "--\($0)" } ?? "-\(shortNames.first!)"
            return "\(name) <\(valueName)>"
        }
    }

    /// The name alone, for value errors: `--seed`, `<count>`.
    var shortDisplayName: String {
        kind == .positional ? displayName : longNames.first.map { "--\($0)" } ?? "-\(shortNames.first!)"
    }

    /// Every long spelling of a flag and the value it sets.
    var flagSpellings: [(name: String, value: Bool)] {
        switch definition.inversion {
        case nil: return longNames.map { ($0, true) }
        case .prefixedNo: return longNames.flatMap { [($0, true), ("no-" + $0, false)] }
        case .prefixedEnableDisable: return longNames.flatMap { [("enable-" + $0, true), ("disable-" + $0, false)] }
        }
    }

    /// The declarations of `command`, in declaration order.
    /// The declarations of `command` (or of an argument group), in declaration order; an
    /// `@OptionGroup`'s declarations take its place.
    static func all(in command: Any) -> [BoundArgument] {
        Mirror(reflecting: command).children.flatMap { child -> [BoundArgument] in
            if let group = child.value as? ArgumentGroupBinding { return all(in: group.groupValue) }
            guard let binding = child.value as? ArgumentBinding, var label = child.label else { return [] }
            if label.hasPrefix("_") { label.removeFirst() }
            let definition = binding.definition
            let (long, short) = definition.kind == .positional ? ([], []) : definition.names.resolve(label: label)
            return [BoundArgument(label: label, definition: definition, binding: binding,
                                  longNames: long, shortNames: short)]
        }
    }

    /// The argument groups of `command` (nested ones too), for their `validate()`.
    static func groups(in value: Any) -> [any ParsableArguments] {
        Mirror(reflecting: value).children.flatMap { child -> [any ParsableArguments] in
            guard let g = child.value as? ArgumentGroupBinding else { return [] }
            return groups(in: g.groupValue) + [g.groupValue]
        }
    }
}

enum CommandParser {
    static func parse(root: any ParsableCommand.Type, _ args: [String]) throws -> any ParsableCommand {
        var path: [any ParsableCommand.Type] = [root]
        var rest = args[...]
        if rest.first == "--version", !root.configuration.version.isEmpty {
            throw CleanExit.message(root.configuration.version)
        }
        // Descend while the next token names a subcommand.
        while let token = rest.first, !token.hasPrefix("-") {
            let current = path.last!
            let subcommands = current.configuration.subcommands
            if subcommands.isEmpty { break }
            if let sub = subcommand(named: token, of: current) {
                path.append(sub)
                rest.removeFirst()
                continue
            }
            if token == "help" {
                var target = path
                for name in rest.dropFirst() where !name.hasPrefix("-") {
                    guard let sub = subcommand(named: name, of: target.last!) else {
                        throw unknownSubcommand(name, path: target)
                    }
                    target.append(sub)
                }
                throw CleanExit.helpRequest(target.last!)
            }
            // A group may take positional arguments itself; otherwise the word must be a subcommand.
            if BoundArgument.all(in: current.init()).contains(where: { $0.kind == .positional }) { break }
            throw unknownSubcommand(token, path: path)
        }
        return try parseCommand(path: path, Array(rest))
    }

    static func subcommand(named name: String, of command: any ParsableCommand.Type) -> (any ParsableCommand.Type)? {
        command.configuration.subcommands.first { $0.commandName == name }
    }

    static func unknownSubcommand(_ name: String, path: [any ParsableCommand.Type]) -> CommandLineError {
        let known = path.last!.configuration.subcommands.map { $0.commandName }
        var message = "unknown subcommand '\(name)'."
        if let best = nearest(name, among: known) { message += " Did you mean '\(best)'?" }
        message += " Known subcommands: \(known.joined(separator: ", "))"
        return CommandLineError(message: message, commandPath: path)
    }

    /// Parses the options and arguments of the last command of `path`.
    static func parseCommand(path: [any ParsableCommand.Type], _ tokens: [String]) throws -> any ParsableCommand {
        let type = path.last!
        var command = type.init()
        let arguments = BoundArgument.all(in: command)
        func failure(_ message: String) -> CommandLineError { CommandLineError(message: message, commandPath: path) }

        var long: [String: (index: Int, flagValue: Bool?)] = [:]
        var short: [Character: Int] = [:]
        for (i, argument) in arguments.enumerated() {
            if argument.kind == .flag {
                for (name, value) in argument.flagSpellings { long[name] = (i, value) }
            } else {
                for name in argument.longNames { long[name] = (i, nil) }
            }
            for c in argument.shortNames { short[c] = i }
        }

        var values = [[Any]](repeating: [], count: arguments.count)
        func add(_ raw: String, to index: Int) throws {
            let argument = arguments[index]
            // An empty value is never meant: as a path it would be the current directory, as
            // a list nothing at all (found by the hostile-flag sweep, HostileFlagTests).
            if raw.allSatisfy(\.isWhitespace) {
                throw failure("\(argument.shortDisplayName): an empty value; give one, or leave the option out")
            }
            let pieces = argument.definition.isArray
                ? raw.split(separator: ",", omittingEmptySubsequences: true).map(String.init) : [raw]
            for piece in pieces {
                guard let value = argument.definition.parse(piece) else {
                    let choices = argument.definition.choices
                    var message = "\(argument.shortDisplayName): '\(piece)' is not a valid \(argument.definition.valueKind)"
                    if !choices.isEmpty { message += " (choose from: \(choices.joined(separator: ", ")))" }
                    throw failure(message)
                }
                values[index].append(value)
            }
        }

        var positionals: [String] = []
        var i = 0
        var onlyPositionals = false
        /// The value for an option: inline (`--opt=v`, `-ov`) or the next token.
        func optionValue(_ inline: String?, for index: Int) throws -> String {
            if let inline { return inline }
            guard i < tokens.count, !looksLikeOption(tokens[i]) else {
                throw failure("missing value for option '\(arguments[index].displayName)'")
            }
            i += 1
            return tokens[i - 1]
        }

        while i < tokens.count {
            let token = tokens[i]
            i += 1
            if onlyPositionals || !looksLikeOption(token) {
                positionals.append(token)
            } else if token == "--" {
                onlyPositionals = true
            } else if token == "--help" || token == "-h" {
                throw CleanExit.helpRequest(type)
            } else if token.hasPrefix("--") {
                let body = token.dropFirst(2)
                let name = String(body.prefix { $0 != "=" })
                let inline = body.contains("=") ? String(body.drop { $0 != "=" }.dropFirst()) : nil
                guard let (index, flagValue) = long[name].map({ ($0.index, $0.flagValue) }) else {
                    var message = "unknown option '--\(name)'."
                    let known = long.keys.sorted() + ["help"]
                    if let best = nearest(name, among: known) { message += " Did you mean '--\(best)'?" }
                    throw failure(message)
                }
                if let flagValue {
                    if inline != nil { throw failure("option '--\(name)' does not take a value") }
                    values[index].append(flagValue)
                } else {
                    try add(try optionValue(inline, for: index), to: index)
                }
            } else {
                // Short options: `-v`, clustered flags `-vq`, `-o value`, `-ovalue`, `-o=value`.
                let chars = Array(token.dropFirst())
                for (k, c) in chars.enumerated() {
                    guard let index = short[c] else { throw failure("unknown option '-\(c)'") }
                    if arguments[index].kind == .flag {
                        values[index].append(true)
                        continue
                    }
                    var inline: String? = k + 1 < chars.count ? String(chars[(k + 1)...]) : nil
                    if inline?.first == "=" { inline?.removeFirst() }
                    try add(try optionValue(inline, for: index), to: index)
                    break
                }
            }
        }

        // Positionals fill the `@Argument`s in declaration order; an array takes the rest.
        var remaining = positionals[...]
        for (index, argument) in arguments.enumerated() where argument.kind == .positional {
            if argument.definition.isArray {
                while let token = remaining.popFirst() { try add(token, to: index) }
            } else if let token = remaining.popFirst() {
                try add(token, to: index)
            }
        }
        if let extra = remaining.first { throw failure("unexpected argument '\(extra)'") }

        for (index, argument) in arguments.enumerated() {
            if !values[index].isEmpty {
                argument.binding.assign(values[index])
            } else if argument.definition.isRequired {
                let what = argument.kind == .positional ? "argument" : "option"
                throw failure("missing required \(what) '\(argument.displayName)'")
            }
        }
        do {
            for g in BoundArgument.groups(in: command) { try g.validate() }
            try command.validate()
        } catch let error as ValidationError {
            throw failure(error.message)
        }
        return command
    }

    /// `-x`, `--x`, `--`; but not `-`, nor negative numbers like `-1` or `-0.5`.
    static func looksLikeOption(_ token: String) -> Bool {
        token.hasPrefix("-") && token.count > 1 && Double(token) == nil
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a plausible typo.
func nearest(_ word: String, among candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word, $0)) }
    guard let (best, distance) = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    return distance <= max(2, best.count / 3) && distance < max(word.count, best.count) ? best : nil
}

/// Levenshtein distance.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
