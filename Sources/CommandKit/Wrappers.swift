// The property wrappers `@Option`, `@Flag` and `@Argument`. Each carries its declaration
// (an `ArgumentDefinition`, read through `Mirror` for both parsing and help) and a small
// copy-on-write box that the parser fills in.

enum ArgumentKind { case option, flag, positional }

/// Everything the parser and the help generator need to know about one declaration.
struct ArgumentDefinition {
    var kind: ArgumentKind
    var names: NameSpecification = .long
    var help: String
    var valueName: String?
    var inversion: FlagInversion?
    var isRequired = false
    var isArray = false
    var defaultDescription: String?
    var choices: [String] = []
    var valueKind = "value"
    /// Parses one string into the element type; `nil` when the string is not valid.
    var parse: (String) -> Any? = { $0 }
}

/// Existential view of a wrapper, found by reflecting over a command's stored properties.
protocol ArgumentBinding {
    var definition: ArgumentDefinition { get }
    /// Stores the parsed elements (never empty) in the wrapper.
    func assign(_ values: [Any])
}

final class Storage<Value> {
    var value: Value?
    init(_ value: Value?) { self.value = value }
}

private func missingValue(_ wrapper: String) -> Never {
    fatalError("\(wrapper) property read before the command was parsed; create commands with parseAsRoot(_:)")
}

// MARK: - @Option

@propertyWrapper
public struct Option<Value>: ArgumentBinding {
    var storage: Storage<Value>
    let definition: ArgumentDefinition
    let combine: ([Any]) -> Value

    public var wrappedValue: Value {
        get {
            guard let value = storage.value else { missingValue("@Option") }
            return value
        }
        set {
            if isKnownUniquelyReferenced(&storage) { storage.value = newValue } else { storage = Storage(newValue) }
        }
    }

    func assign(_ values: [Any]) { storage.value = combine(values) }

    /// Lets `@Option var x: T?` take part in the synthesized `init()`; the constrained initializers
    /// below are the ones actually chosen.
    @available(*, unavailable, message: "The value type must conform to ExpressibleByArgument.")
    public init() { fatalError("unavailable") }

    init(initial: Value?, definition: ArgumentDefinition, combine: @escaping ([Any]) -> Value) {
        storage = Storage(initial)
        self.definition = definition
        self.combine = combine
    }
}

/// Definition of an option or positional whose elements have type `T`.
private func makeDefinition<T: ExpressibleByArgument>(
    _ kind: ArgumentKind, _ type: T.Type, name: NameSpecification, help: String, valueName: String?,
    required: Bool = false, array: Bool = false, defaultDescription: String? = nil
) -> ArgumentDefinition {
    ArgumentDefinition(
        kind: kind, names: name, help: help, valueName: valueName, isRequired: required, isArray: array,
        defaultDescription: defaultDescription, choices: T.allValueStrings, valueKind: T.valueKindDescription,
        parse: { T(argument: $0) })
}

private func arrayDefault<T: ExpressibleByArgument>(_ values: [T]) -> String? {
    values.isEmpty ? nil : values.map(\.defaultValueDescription).joined(separator: ",")
}

extension Option where Value: ExpressibleByArgument {
    /// An option with a default: `@Option var seed: Int = 42`.
    public init(wrappedValue: Value, name: NameSpecification = .long, help: String = "", valueName: String? = nil) {
        self.init(initial: wrappedValue,
                  definition: makeDefinition(.option, Value.self, name: name, help: help, valueName: valueName,
                                         defaultDescription: wrappedValue.defaultValueDescription),
                  combine: { $0.last as! Value })
    }

    /// A required option: `@Option var output: String`.
    public init(name: NameSpecification = .long, help: String = "", valueName: String? = nil) {
        self.init(initial: nil,
                  definition: makeDefinition(.option, Value.self, name: name, help: help, valueName: valueName, required: true),
                  combine: { $0.last as! Value })
    }

    /// Zero-argument form (`@Option var output: String`), needed for the synthesized `init()`.
    public init() { self.init(name: .long) }
}

extension Option {
    /// An optional option: `@Option var output: String?`.
    public init<T: ExpressibleByArgument>(name: NameSpecification = .long, help: String = "", valueName: String? = nil)
    where Value == T? {
        self.init(initial: .some(nil),
                  definition: makeDefinition(.option, T.self, name: name, help: help, valueName: valueName),
                  combine: { $0.last as? T })
    }

    public init<T: ExpressibleByArgument>() where Value == T? { self.init(name: .long) }

    /// An optional option with an explicit initial value: `@Option var output: String? = nil`.
    public init<T: ExpressibleByArgument>(wrappedValue: T?, name: NameSpecification = .long, help: String = "",
                                          valueName: String? = nil) where Value == T? {
        self.init(initial: .some(wrappedValue),
                  definition: makeDefinition(.option, T.self, name: name, help: help, valueName: valueName,
                                         defaultDescription: wrappedValue?.defaultValueDescription),
                  combine: { $0.last as? T })
    }

    /// A repeatable option, also accepting comma lists: `@Option var ids: [Int] = []`.
    public init<T: ExpressibleByArgument>(wrappedValue: [T], name: NameSpecification = .long, help: String = "",
                                          valueName: String? = nil) where Value == [T] {
        self.init(initial: wrappedValue,
                  definition: makeDefinition(.option, T.self, name: name, help: help, valueName: valueName, array: true,
                                         defaultDescription: arrayDefault(wrappedValue)),
                  combine: { $0.map { $0 as! T } })
    }

    /// A repeatable option defaulting to `[]`: `@Option var ids: [Int]`.
    public init<T: ExpressibleByArgument>(name: NameSpecification = .long, help: String = "", valueName: String? = nil)
    where Value == [T] {
        self.init(wrappedValue: [], name: name, help: help, valueName: valueName)
    }

    public init<T: ExpressibleByArgument>() where Value == [T] { self.init(name: .long) }
}

// MARK: - @Flag

@propertyWrapper
public struct Flag: ArgumentBinding {
    var storage: Storage<Bool>
    let definition: ArgumentDefinition

    public var wrappedValue: Bool {
        get {
            guard let value = storage.value else { missingValue("@Flag") }
            return value
        }
        set {
            if isKnownUniquelyReferenced(&storage) { storage.value = newValue } else { storage = Storage(newValue) }
        }
    }

    func assign(_ values: [Any]) { storage.value = values.last as? Bool }

    /// `@Flag var json = false` → `--json`; with `inversion: .prefixedNo` also `--no-json`.
    public init(wrappedValue: Bool, name: NameSpecification = .long, inversion: FlagInversion? = nil, help: String = "") {
        storage = Storage(wrappedValue)
        definition = ArgumentDefinition(
            kind: .flag, names: name, help: help, inversion: inversion,
            defaultDescription: inversion == nil ? nil : String(wrappedValue), valueKind: "flag")
    }

    /// `@Flag var json: Bool` defaults to `false`.
    public init(name: NameSpecification = .long, inversion: FlagInversion? = nil, help: String = "") {
        self.init(wrappedValue: false, name: name, inversion: inversion, help: help)
    }

    public init() { self.init(wrappedValue: false) }
}

// MARK: - @Argument

@propertyWrapper
public struct Argument<Value>: ArgumentBinding {
    var storage: Storage<Value>
    let definition: ArgumentDefinition
    let combine: ([Any]) -> Value

    public var wrappedValue: Value {
        get {
            guard let value = storage.value else { missingValue("@Argument") }
            return value
        }
        set {
            if isKnownUniquelyReferenced(&storage) { storage.value = newValue } else { storage = Storage(newValue) }
        }
    }

    func assign(_ values: [Any]) { storage.value = combine(values) }

    /// Lets `@Argument var x: T?` take part in the synthesized `init()`; the constrained initializers
    /// below are the ones actually chosen.
    @available(*, unavailable, message: "The value type must conform to ExpressibleByArgument.")
    public init() { fatalError("unavailable") }

    init(initial: Value?, definition: ArgumentDefinition, combine: @escaping ([Any]) -> Value) {
        storage = Storage(initial)
        self.definition = definition
        self.combine = combine
    }
}

extension Argument where Value: ExpressibleByArgument {
    /// A positional with a default: `@Argument var split: String = "test"`.
    public init(wrappedValue: Value, help: String = "", valueName: String? = nil) {
        self.init(initial: wrappedValue,
                  definition: makeDefinition(.positional, Value.self, name: [], help: help, valueName: valueName,
                                         defaultDescription: wrappedValue.defaultValueDescription),
                  combine: { $0.last as! Value })
    }

    /// A required positional: `@Argument var checkpoint: String`.
    public init(help: String = "", valueName: String? = nil) {
        self.init(initial: nil,
                  definition: makeDefinition(.positional, Value.self, name: [], help: help, valueName: valueName,
                                         required: true),
                  combine: { $0.last as! Value })
    }

    public init() { self.init(help: "") }
}

extension Argument {
    /// An optional positional: `@Argument var checkpoint: String?`.
    public init<T: ExpressibleByArgument>(help: String = "", valueName: String? = nil) where Value == T? {
        self.init(initial: .some(nil),
                  definition: makeDefinition(.positional, T.self, name: [], help: help, valueName: valueName),
                  combine: { $0.last as? T })
    }

    public init<T: ExpressibleByArgument>() where Value == T? { self.init(help: "") }

    /// A variadic positional taking all remaining arguments: `@Argument var files: [String]`.
    public init<T: ExpressibleByArgument>(help: String = "", valueName: String? = nil) where Value == [T] {
        self.init(wrappedValue: [], help: help, valueName: valueName)
    }

    public init<T: ExpressibleByArgument>() where Value == [T] { self.init(help: "") }

    /// A variadic positional with a default: `@Argument var files: [String] = ["a"]`.
    public init<T: ExpressibleByArgument>(wrappedValue: [T], help: String = "", valueName: String? = nil)
    where Value == [T] {
        self.init(initial: wrappedValue,
                  definition: makeDefinition(.positional, T.self, name: [], help: help, valueName: valueName, array: true,
                                         defaultDescription: arrayDefault(wrappedValue)),
                  combine: { $0.map { $0 as! T } })
    }
}

// MARK: - @OptionGroup

/// Options declared once and shared by several commands (`@OptionGroup var model: ModelOptions`),
/// as swift-argument-parser's: the group's declarations are parsed and listed in help as the
/// command's own, and its `validate()` runs before the command's.
public protocol ParsableArguments {
    init()
    /// Throw `ValidationError` for a usage error.
    func validate() throws
}

extension ParsableArguments {
    public func validate() throws {}
}

protocol ArgumentGroupBinding {
    var groupValue: any ParsableArguments { get }
}

@propertyWrapper
public struct OptionGroup<Value: ParsableArguments>: ArgumentGroupBinding {
    public var wrappedValue: Value
    public init() { wrappedValue = Value() }
    var groupValue: any ParsableArguments { wrappedValue }
}
