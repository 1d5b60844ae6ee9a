// The command protocol, its configuration, the error types, and the entry points.
import Foundation

/// A command (or a group of subcommands). Declare inputs with `@Option`, `@Flag` and `@Argument`.
public protocol ParsableCommand: SendableMetatype {
    static var configuration: CommandConfiguration { get }
    init()
    /// Called after parsing and before `run()`; throw `ValidationError` to report a usage error.
    mutating func validate() throws
    mutating func run() throws
}

extension ParsableCommand {
    public static var configuration: CommandConfiguration { CommandConfiguration() }
    public mutating func validate() throws {}
    /// By default a command prints its help (the natural behaviour for a command group).
    public mutating func run() throws { throw CleanExit.helpRequest(Self.self) }

    /// The name used on the command line: `configuration.commandName` or the type name in kebab-case.
    static var commandName: String { configuration.commandName ?? kebabCase(String(describing: self)) }
}

public struct CommandConfiguration: Sendable {
    public var commandName: String?
    /// One line, shown in help and in the parent's subcommand list.
    public var abstract: String
    /// Longer text shown in help after the abstract.
    public var discussion: String
    /// Printed by `--version` on the root command when not empty.
    public var version: String
    public var subcommands: [any ParsableCommand.Type]

    public init(commandName: String? = nil, abstract: String = "", discussion: String = "", version: String = "",
                subcommands: [any ParsableCommand.Type] = []) {
        self.commandName = commandName
        self.abstract = abstract
        self.discussion = discussion
        self.version = version
        self.subcommands = subcommands
    }
}

/// Thrown from `validate()` (or `run()`): printed with the usage line, exit code 64.
public struct ValidationError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A usage error found while parsing: printed with the usage line, exit code 64.
public struct CommandLineError: Error, CustomStringConvertible {
    public var message: String
    /// The command being parsed, from the root down.
    public var commandPath: [any ParsableCommand.Type]
    public var description: String { message }
}

/// Ends the program successfully: help or a plain message.
public struct CleanExit: Error, CustomStringConvertible {
    enum Kind { case help((any ParsableCommand.Type)?), message(String) }
    let kind: Kind
    /// Print help for `command` (the root when `nil`) and exit 0.
    public static func helpRequest(_ command: (any ParsableCommand.Type)? = nil) -> CleanExit { CleanExit(kind: .help(command)) }
    /// Print `text` and exit 0.
    public static func message(_ text: String) -> CleanExit { CleanExit(kind: .message(text)) }
    public var description: String {
        switch kind {
        case .help(let c): "help request for \(c.map { String(describing: $0) } ?? "root")"
        case .message(let m): m
        }
    }
}

/// Throw from `run()` to exit with a specific status and no message.
public struct ExitCode: Error, Equatable, CustomStringConvertible {
    public var rawValue: Int32
    public init(_ rawValue: Int32) { self.rawValue = rawValue }
    public static let success = ExitCode(0)
    public static let failure = ExitCode(1)
    public static let usage = ExitCode(64)
    public var description: String { "exit code \(rawValue)" }
}

extension ParsableCommand {
    /// Parses `args` (without the program name) into a validated command, descending into subcommands.
    /// Throws `CommandLineError` for usage errors and `CleanExit` for `--help`/`help`/`--version`.
    public static func parseAsRoot(_ args: [String]) throws -> any ParsableCommand {
        try CommandParser.parse(root: Self.self, args)
    }

    /// The help text for `command`, a (possibly nested) subcommand of `Self`; the root when `nil`.
    public static func helpMessage(for command: (any ParsableCommand.Type)? = nil, columns: Int = 80) -> String {
        HelpGenerator(path: path(to: command ?? Self.self), columns: columns).help()
    }

    /// The usage line of `command` (a subcommand of `Self`; the root when `nil`).
    public static func usageString(for command: (any ParsableCommand.Type)? = nil) -> String {
        HelpGenerator(path: path(to: command ?? Self.self), columns: 80).usage()
    }

    /// 0 for help/clean exits, 64 (EX_USAGE) for usage and validation errors, `ExitCode`'s value, else 1.
    public static func exitCode(for error: Error) -> Int32 {
        switch error {
        case is CleanExit: 0
        case is CommandLineError, is ValidationError: 64
        case let e as ExitCode: e.rawValue
        default: 1
        }
    }

    /// What `main` prints for `error` (help text for help requests; empty for `ExitCode`).
    public static func message(for error: Error) -> String {
        switch error {
        case let e as CleanExit:
            switch e.kind {
            case .help(let command): return helpMessage(for: command)
            case .message(let text): return text
            }
        case let e as CommandLineError:
            let generator = HelpGenerator(path: e.commandPath, columns: 80)
            return "Error: \(e.message)\n\(generator.wrapUsage(prefix: "Usage: "))\n"
                + "  See '\(generator.commandLine) --help' for more information."
        case let e as ValidationError:
            return message(for: CommandLineError(message: e.message, commandPath: [Self.self]))
        case is ExitCode:
            return ""
        case let e as CustomStringConvertible:
            return "Error: \(e.description)"
        case let e as LocalizedError:
            return "Error: \(e.errorDescription ?? "\(error)")"
        default:
            return "Error: \(error)"
        }
    }

    /// Parses, validates and runs; prints help/errors (errors to stderr). Returns the exit code.
    public static func runAsRoot(_ args: [String]) -> Int32 {
        var error: Error
        do {
            var command = try parseAsRoot(args)
            do {
                try command.run()
                return 0
            } catch let e as ValidationError {
                error = CommandLineError(message: e.message, commandPath: path(to: type(of: command)))
            }
        } catch let e {
            error = e
        }
        let code = exitCode(for: error)
        let text = message(for: error)
        if !text.isEmpty {
            if code == 0 {
                print(text)
            } else {
                FileHandle.standardError.write(Data((text + "\n").utf8))
            }
        }
        return code
    }

    /// Runs the command line (`CommandLine.arguments` by default) and exits the process.
    public static func main(_ arguments: [String]?) {
        let code = runAsRoot(arguments ?? Array(CommandLine.arguments.dropFirst()))
        exit(code)
    }

    /// Entry point for `@main` and `Root.main()`.
    public static func main() { main(nil) }

    /// The chain of commands from `Self` down to `target` (just `[target]` when not found below `Self`).
    static func path(to target: any ParsableCommand.Type) -> [any ParsableCommand.Type] {
        func search(_ path: [any ParsableCommand.Type]) -> [any ParsableCommand.Type]? {
            if ObjectIdentifier(path.last!) == ObjectIdentifier(target) { return path }
            for sub in path.last!.configuration.subcommands where !path.contains(where: { ObjectIdentifier($0) == ObjectIdentifier(sub) }) {
                if let found = search(path + [sub]) { return found }
            }
            return nil
        }
        return search([Self.self]) ?? [target]
    }
}
