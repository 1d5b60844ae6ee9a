// Help and usage text, generated from the same declarations the parser uses.

struct HelpGenerator {
    let path: [any ParsableCommand.Type]
    let columns: Int
    /// Column where descriptions start in the ARGUMENTS/OPTIONS/SUBCOMMANDS sections.
    let descriptionColumn = 26

    var command: any ParsableCommand.Type { path.last! }
    var arguments: [BoundArgument] { BoundArgument.all(in: command.init()) }
    /// `slmrec data prepare`.
    var commandLine: String { path.map { $0.commandName }.joined(separator: " ") }

    /// `slmrec data prepare [--seed <seed>] --output <output> <checkpoint>` (unwrapped).
    func usage() -> String { usageParts().joined(separator: " ") }

    /// The usage split into units that line wrapping keeps whole (`[--seed <seed>]`).
    func usageParts() -> [String] {
        var parts = [commandLine]
        let arguments = self.arguments
        for argument in arguments where argument.kind != .positional {
            var part = argument.definition.inversion != nil ? label(for: argument) : argument.displayName
            if argument.definition.isArray { part += " ..." }
            parts.append(argument.definition.isRequired ? part : "[\(part)]")
        }
        for argument in arguments where argument.kind == .positional {
            var part = argument.displayName
            if argument.definition.isArray { part += " ..." }
            parts.append(argument.definition.isRequired ? part : "[\(part)]")
        }
        if !command.configuration.subcommands.isEmpty { parts.append("<subcommand>") }
        return parts
    }

    func help() -> String {
        let configuration = command.configuration
        var sections: [String] = []
        if !configuration.abstract.isEmpty {
            sections.append(wrap("OVERVIEW: " + configuration.abstract, width: columns, indent: 0).joined(separator: "\n"))
        }
        if !configuration.discussion.isEmpty {
            sections.append(wrap(configuration.discussion, width: columns, indent: 0).joined(separator: "\n"))
        }
        sections.append(wrapUsage())

        let arguments = self.arguments
        let positionals = arguments.filter { $0.kind == .positional }
        if !positionals.isEmpty {
            sections.append("ARGUMENTS:\n" + positionals.map { entry(label(for: $0), description(for: $0)) }.joined(separator: "\n"))
        }
        var options = arguments.filter { $0.kind != .positional }.map { entry(label(for: $0), description(for: $0)) }
        options.append(entry("-h, --help", "Show help information."))
        if path.count == 1 && !configuration.version.isEmpty {
            options.append(entry("--version", "Show the version."))
        }
        sections.append("OPTIONS:\n" + options.joined(separator: "\n"))

        let subcommands = configuration.subcommands
        if !subcommands.isEmpty {
            let rows = subcommands.map { entry($0.commandName, $0.configuration.abstract) }
            sections.append("SUBCOMMANDS:\n" + rows.joined(separator: "\n") + "\n\n"
                + "  See '\(path[0].commandName) help <subcommand>' for detailed help.")
        }
        return sections.joined(separator: "\n\n")
    }

    /// `USAGE: ` followed by the usage, continuation lines indented under the command.
    func wrapUsage(prefix: String = "USAGE: ") -> String {
        let lines = wrap(units: usageParts(), width: columns - prefix.count, indent: 2)
        return prefix + lines.joined(separator: "\n" + String(repeating: " ", count: prefix.count))
    }

    func label(for argument: BoundArgument) -> String {
        switch argument.kind {
        case .positional:
            return argument.displayName + (argument.definition.isArray ? " ..." : "")
        case .flag:
            let shorts = argument.shortNames.map { "-\($0)" }
            var longs: [String] = []
            var spellings = argument.flagSpellings[...]
            while let first = spellings.popFirst() {
                if argument.definition.inversion != nil, let second = spellings.popFirst() {
                    longs.append("--\(first.name)/--\(second.name)")
                } else {
                    longs.append("--\(first.name)")
                }
            }
            return (shorts + longs).joined(separator: ", ")
        case .option:
            let names = argument.shortNames.map { "-\($0)" } + argument.longNames.map { "--\($0)" }
            return names.joined(separator: ", ") + " <\(argument.valueName)>"
                + (argument.definition.isArray ? " ..." : "")
        }
    }

    func description(for argument: BoundArgument) -> String {
        let definition = argument.definition
        var notes: [String] = []
        if !definition.choices.isEmpty && definition.kind != .flag {
            notes.append("values: " + definition.choices.joined(separator: ", "))
        }
        if let value = definition.defaultDescription, !value.isEmpty {
            if definition.kind == .flag, let spelling = argument.flagSpellings.first(where: { String($0.value) == value }) {
                notes.append("default: --\(spelling.name)")
            } else {
                notes.append("default: \(value)")
            }
        }
        if definition.isArray && definition.kind == .option { notes.append("repeatable or comma-separated") }
        let extra = notes.isEmpty ? "" : "(\(notes.joined(separator: "; ")))"
        return [definition.help, extra].filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// A two-column row: the label indented by 2, the description wrapped from `descriptionColumn`.
    func entry(_ label: String, _ description: String) -> String {
        let indent = String(repeating: " ", count: descriptionColumn)
        let lines = wrap(description, width: columns - descriptionColumn, indent: 0)
        let head = "  " + label
        guard let first = lines.first, !first.isEmpty else { return head }
        var out: [String]
        if head.count + 2 <= descriptionColumn {
            out = [head + String(repeating: " ", count: descriptionColumn - head.count) + first]
        } else {
            out = [head, indent + first]
        }
        out += lines.dropFirst().map { indent + $0 }
        return out.joined(separator: "\n")
    }
}

/// Greedy word wrap to `width` columns; continuation lines get `indent` extra spaces.
/// Explicit newlines are kept; a word longer than the width gets a line of its own.
func wrap(_ text: String, width: Int, indent: Int) -> [String] {
    text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().flatMap { index, paragraph in
        let lines = wrap(units: paragraph.split(separator: " ").map(String.init), width: width, indent: indent)
        return index == 0 ? lines : lines.map { String(repeating: " ", count: indent) + $0 }
    }
}

/// Greedy wrap of units that are never split, joined by single spaces.
func wrap(units: [String], width: Int, indent: Int) -> [String] {
    let pad = String(repeating: " ", count: indent)
    var lines: [String] = []
    var line = ""
    for unit in units {
        if line.isEmpty {
            line = (lines.isEmpty ? "" : pad) + unit
        } else if line.count + 1 + unit.count <= width {
            line += " " + unit
        } else {
            lines.append(line)
            line = pad + unit
        }
    }
    lines.append(line)
    return lines
}
