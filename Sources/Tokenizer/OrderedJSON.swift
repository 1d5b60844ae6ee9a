import Foundation
import Common

/// A JSON tree whose objects keep every key, in file order, as the exact characters written.
///
/// Why not `Common.JSONValue`: its objects are `[String: JSONValue]`, and Swift compares and
/// hashes `String`s by canonical equivalence, so two vocabulary entries that differ only in
/// Unicode normalization collapse into one. LLaMa-2's vocabulary has six such pairs (e.g. "ί"
/// U+03AF, id 30207, and "ί" U+1F77, id 31042); Hugging Face and llama.cpp compare bytes and
/// keep both. Only `tokenizer.json` is read this way (with Common's one JSON reader, which
/// builds any `JSONTree`); everything else uses `JSONValue`.
indirect enum OrderedJSON: Sendable, JSONTree {
    case null, bool(Bool), number(Double, exactInt: Int?), string(String), array([OrderedJSON])
    case object([(key: String, value: OrderedJSON)])

    var objectPairs: [(key: String, value: OrderedJSON)]? { if case .object(let o) = self { return o } else { return nil } }
    var arrayValue: [OrderedJSON]? { if case .array(let a) = self { return a } else { return nil } }
    var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    var intValue: Int? { if case .number(_, let i) = self { return i } else { return nil } }
    var doubleValue: Double? { if case .number(let d, _) = self { return d } else { return nil } }
    var isNull: Bool { if case .null = self { return true } else { return false } }

    static var jsonNull: OrderedJSON { .null }
    static func json(bool: Bool) -> OrderedJSON { .bool(bool) }
    static func json(string: String) -> OrderedJSON { .string(string) }
    static func json(int: Int) -> OrderedJSON { .number(Double(int), exactInt: int) }
    static func json(double: Double) -> OrderedJSON { .number(double, exactInt: nil) }
    static func json(array: [OrderedJSON]) -> OrderedJSON { .array(array) }
    static func json(object: [(key: String, value: OrderedJSON)]) -> OrderedJSON { .object(object) }

    /// The value of `key` (the last one when a key repeats, as Python's and serde's readers do).
    /// Keys of the structural fields are ASCII, so `==` here is exact.
    subscript(key: String) -> OrderedJSON? { objectPairs?.last(where: { $0.key == key })?.value }
}
