import Foundation

// Options declared once. A pass's option used to be written four times: its stored default,
// its `init(from:)` line, its `encode(to:)` line and its `OptionField` with a hand-typed
// default string ("[q_proj, v_proj]") that drifted from the real one. An `OptionTable` entry
// names the key, the help line and the key path; decoding, encoding and the `slmrec passes`
// listing (type and default, read off the default value) all come from that one entry.

/// A value an option can hold, with the type name and default text `slmrec passes` shows.
public protocol OptionValue: Codable, Sendable {
    static var optionType: String { get }
    var optionText: String { get }
}

extension Int: OptionValue {
    public static var optionType: String { "int" }
    public var optionText: String { "\(self)" }
}
extension UInt64: OptionValue {
    public static var optionType: String { "int" }
    public var optionText: String { "\(self)" }
}
extension Float: OptionValue {
    public static var optionType: String { "number" }
    public var optionText: String { Double(self).optionText }
}
extension Double: OptionValue {
    public static var optionType: String { "number" }
    /// `1` rather than `1.0`; `0.001` as Swift prints it.
    public var optionText: String { self == rounded() && abs(self) < 1e15 ? String(Int(self)) : "\(Float(self))" }
}
extension Bool: OptionValue {
    public static var optionType: String { "bool" }
    public var optionText: String { "\(self)" }
}
extension String: OptionValue {
    public static var optionType: String { "string" }
    public var optionText: String { self }
}
extension Array: OptionValue where Element: OptionValue {
    public static var optionType: String { "[\(Element.optionType)]" }
    public var optionText: String { "[" + map(\.optionText).joined(separator: ", ") + "]" }
}
extension Optional: OptionValue where Wrapped: OptionValue {
    public static var optionType: String { Wrapped.optionType }
    public var optionText: String { map(\.optionText) ?? "-" }
}

/// An unset optional option is left out of the encoded options (as Swift's synthesized
/// encoding does), so the effective options list only what has a value.
private protocol UnsetOption { var isUnset: Bool { get } }
extension Optional: UnsetOption { var isUnset: Bool { self == nil } }

/// A string option with a fixed set of values (`full|lora`).
public protocol OptionChoice: OptionValue, CaseIterable, RawRepresentable where RawValue == String {}

extension OptionChoice {
    public static var optionType: String { allCases.map(\.rawValue).joined(separator: "|") }
    public var optionText: String { rawValue }
}

/// The options of one type (`Root`), each declared once.
public struct OptionTable<Root>: @unchecked Sendable {
    public struct Entry: @unchecked Sendable {
        public let name: String
        let type: String
        let help: String
        let required: Bool
        let defaultText: (Root) -> String
        let decode: (inout Root, KeyedDecodingContainer<AnyKey>) throws -> Void
        let encode: (Root, inout KeyedEncodingContainer<AnyKey>) throws -> Void
    }

    public let entries: [Entry]
    public init(_ entries: [Entry]) { self.entries = entries }

    /// Tables of parts, flattened into one object (the keys of each part side by side).
    public static func part<P>(_ path: WritableKeyPath<Root, P>, _ table: OptionTable<P>) -> [Entry] {
        table.entries.map { e in
            Entry(name: e.name, type: e.type, help: e.help, required: e.required,
                  defaultText: { e.defaultText($0[keyPath: path]) },
                  decode: { root, c in try e.decode(&root[keyPath: path], c) },
                  encode: { root, c in try e.encode(root[keyPath: path], &c) })
        }
    }

    /// The listing `slmrec passes` prints, with types and defaults read off `defaults`.
    public func fields(defaults: Root) -> [OptionField] {
        entries.map { OptionField($0.name, $0.type, default: $0.required ? nil : $0.defaultText(defaults), $0.help) }
    }

    /// Reads every entry's key from `decoder` (strictly, through `StrictDecoding`) into `root`.
    public func decode(_ root: inout Root, from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        for e in entries { try e.decode(&root, c) }
    }

    public func encode(_ root: Root, to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        for e in entries { try e.encode(root, &c) }
    }
}

extension OptionTable.Entry {
    /// An optional option: absent keeps the default. `type` and `defaultText` override what the
    /// listing shows (`full|sampled` when a type has a value the option refuses); `encoded`
    /// writes the effective value instead of the stored one (a `nil` that means "auto").
    public static func option<V: OptionValue>(_ name: String, _ path: WritableKeyPath<Root, V>, type: String? = nil,
                                              defaultText: String? = nil, encoded: ((Root) -> V)? = nil, _ help: String) -> Self {
        Self(name: name, type: type ?? V.optionType, help: help, required: false,
              defaultText: { defaultText ?? $0[keyPath: path].optionText },
              decode: { root, c in
                  let key = AnyKey(name)
                  if let v = try decodeChoice(V.self, c, key) ?? c.decodeIfPresent(V.self, forKey: key) { root[keyPath: path] = v }
              },
              encode: { root, c in
                  let v = encoded?(root) ?? root[keyPath: path]
                  if let o = v as? UnsetOption, o.isUnset { return }
                  try c.encode(v, forKey: AnyKey(name))
              })
    }

    /// A required option (no default).
    public static func required<V: OptionValue>(_ name: String, _ path: WritableKeyPath<Root, V>, type: String? = nil, _ help: String) -> Self {
        Self(name: name, type: type ?? V.optionType, help: help, required: true, defaultText: { _ in "" },
              decode: { root, c in root[keyPath: path] = try c.decode(V.self, forKey: AnyKey(name)) },
              encode: { root, c in try c.encode(root[keyPath: path], forKey: AnyKey(name)) })
    }

}

extension KeyedDecodingContainer {
    /// A choice decoded with its list of valid values (and the nearest one) in the error, also
    /// for enums whose own `Decodable` is the synthesized one.
    /// `among`: the values accepted here (default: every case).
    public func decodeChoiceIfPresent<C: OptionChoice>(_ type: C.Type, forKey key: Key, among: [C]? = nil) throws -> C? {
        guard let s = try decodeIfPresent(String.self, forKey: key) else { return nil }
        let accepted = among ?? Array(C.allCases)
        guard let v = C(rawValue: s), accepted.contains(where: { $0.rawValue == v.rawValue }) else {
            let all = accepted.map(\.rawValue)
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath + [key],
                debugDescription: "\"\(s)\" is not one of \(all.joined(separator: ", "))\(suggestion(s, all))"))
        }
        return v
    }
}

private func decodeChoice<V: OptionValue>(_ type: V.Type, _ c: KeyedDecodingContainer<AnyKey>, _ key: AnyKey) throws -> V? {
    guard let choice = V.self as? any OptionChoice.Type else { return nil }
    func parse<C: OptionChoice>(_ t: C.Type) throws -> V? { try c.decodeChoiceIfPresent(C.self, forKey: key) as? V }
    return try parse(choice)
}
