// Values that can be parsed from one command-line string, and how options are named.

/// A type whose values can be read from a single command-line string.
///
/// `Int`, `Double`, `Float`, `UInt64`, `String`, `Bool` conform out of the box. An enum with a
/// `String` raw value conforms with an empty declaration, and help then lists its choices:
///
///     enum Format: String, CaseIterable, ExpressibleByArgument { case json, csv }
public protocol ExpressibleByArgument: SendableMetatype {
    init?(argument: String)
    /// Noun used in "is not a valid <noun>" errors.
    static var valueKindDescription: String { get }
    /// The allowed values (help "values: …" and error messages); empty if unrestricted.
    static var allValueStrings: [String] { get }
    /// How a default value is shown in help.
    var defaultValueDescription: String { get }
}

extension ExpressibleByArgument {
    public static var valueKindDescription: String { "value" }
    public static var allValueStrings: [String] { [] }
    public var defaultValueDescription: String { "\(self)" }
}

extension ExpressibleByArgument where Self: RawRepresentable, Self: CaseIterable, RawValue == String {
    public init?(argument: String) { self.init(rawValue: argument) }
    public static var valueKindDescription: String { "choice" }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
    public var defaultValueDescription: String { rawValue }
}

extension String: ExpressibleByArgument {
    public init?(argument: String) { self = argument }
    public static var valueKindDescription: String { "string" }
}

extension Int: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
    public static var valueKindDescription: String { "integer" }
}

extension Int32: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
    public static var valueKindDescription: String { "integer" }
}

extension UInt64: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
    public static var valueKindDescription: String { "unsigned integer" }
}

// No command has a use for NaN or infinity (a learning rate, a rating threshold, a ratio), and
// "1e309" or "1e39" overflow to infinity silently: a flag's number must be finite.
extension Double: ExpressibleByArgument {
    public init?(argument: String) {
        guard let v = Double(argument), v.isFinite else { return nil }
        self = v
    }
    public static var valueKindDescription: String { "finite number" }
}

extension Float: ExpressibleByArgument {
    public init?(argument: String) {
        guard let v = Float(argument), v.isFinite else { return nil }
        self = v
    }
    public static var valueKindDescription: String { "finite number" }
}

extension Bool: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument.lowercased() {
        case "true", "yes", "1": self = true
        case "false", "no", "0": self = false
        default: return nil
        }
    }
    public static var valueKindDescription: String { "boolean" }
    public static var allValueStrings: [String] { ["true", "false"] }
}

/// How an option or flag is spelled. A string literal is a long name: `"output"` → `--output`;
/// `"-o"` is a short name. Combine with an array literal: `[.customLong("out"), .short]`.
public struct NameSpecification: ExpressibleByStringLiteral, ExpressibleByArrayLiteral, Sendable {
    public enum Element: Equatable, Sendable {
        /// `--` + the property name in kebab-case.
        case long
        /// `-` + the first letter of the property name.
        case short
        case customLong(String)
        case customShort(Character)
    }
    var elements: [Element]

    public init(_ elements: [Element]) { self.elements = elements }
    public init(arrayLiteral elements: Element...) { self.elements = elements }
    public init(stringLiteral value: String) {
        if value.hasPrefix("--") {
            elements = [.customLong(String(value.dropFirst(2)))]
        } else if value.hasPrefix("-"), value.count == 2 {
            elements = [.customShort(value.last!)]
        } else {
            elements = [.customLong(value)]
        }
    }

    public static var long: NameSpecification { [.long] }
    public static var short: NameSpecification { [.short] }
    public static var shortAndLong: NameSpecification { [.long, .short] }
    public static func customLong(_ name: String) -> NameSpecification { [.customLong(name)] }
    public static func customShort(_ c: Character) -> NameSpecification { [.customShort(c)] }

    func resolve(label: String) -> (long: [String], short: [Character]) {
        var long: [String] = [], short: [Character] = []
        for e in elements {
            switch e {
            case .long: long.append(kebabCase(label))
            case .short: if let c = label.first { short.append(c) }
            case .customLong(let n): long.append(n)
            case .customShort(let c): short.append(c)
            }
        }
        return (long, short)
    }
}

/// How a Boolean flag can be turned off explicitly.
public enum FlagInversion: Sendable {
    /// `--json` / `--no-json`.
    case prefixedNo
    /// `--enable-cache` / `--disable-cache`.
    case prefixedEnableDisable
}

/// `maxLength` → `max-length`, `HTTPServer` → `http-server`.
func kebabCase(_ s: String) -> String {
    var out = ""
    let chars = Array(s)
    for (i, c) in chars.enumerated() {
        if c.isUppercase {
            let prevLower = i > 0 && (chars[i - 1].isLowercase || chars[i - 1].isNumber)
            let nextLower = i + 1 < chars.count && chars[i + 1].isLowercase
            let prevUpper = i > 0 && chars[i - 1].isUppercase
            if i > 0 && (prevLower || (prevUpper && nextLower)) { out.append("-") }
            out.append(contentsOf: c.lowercased())
        } else if c == "_" {
            out.append("-")
        } else {
            out.append(c)
        }
    }
    return out
}
