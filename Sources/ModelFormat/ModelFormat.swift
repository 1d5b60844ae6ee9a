// ModelFormat: safetensors read/write, config.json, PEFT LoRA adapters and the Checkpoint value.
// The contract is /work/shared/spec/ellmrec-checkpoint.md (copied in docs/checkpoint-format.md):
// every file we write must load in PyTorch / Hugging Face, and every file they write must load here.
import Foundation
import Common

/// Every problem with a file on disk is reported as: which file, what is wrong, what to do.
/// The CLI prints `description`; nothing below the CLI exits.
public struct ModelFormatError: Error, CustomStringConvertible, Sendable, Equatable {
    public let file: String
    public let problem: String
    public let fix: String

    public init(file: String, problem: String, fix: String) {
        self.file = file
        self.problem = problem
        self.fix = fix
    }

    public var description: String { "\(file): \(problem). Fix: \(fix)" }
}

/// The safetensors dtypes the toolbench reads and writes.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", i8 = "I8", i32 = "I32", i64 = "I64"

    public var byteSize: Int {
        switch self {
        case .i8: return 1
        case .f16, .bf16: return 2
        case .f32, .i32: return 4
        case .i64: return 8
        }
    }

    public var isFloat: Bool { self == .f32 || self == .f16 || self == .bf16 }

    /// The `torch_dtype` string Hugging Face writes for a float dtype.
    public var torchName: String? {
        switch self {
        case .f32: return "float32"
        case .f16: return "float16"
        case .bf16: return "bfloat16"
        default: return nil
        }
    }

    public init?(torchName: String) {
        switch torchName {
        case "float32": self = .f32
        case "float16": self = .f16
        case "bfloat16": self = .bf16
        default: return nil
        }
    }

    /// The order in which safetensors-rs lays out tensors: larger-alignment dtypes first
    /// (it sorts by `Reverse(dtype)` using the declaration order of its `Dtype` enum, then by
    /// name). Matching it keeps every tensor naturally aligned inside the data section and
    /// makes our files byte-identical to the ones `safetensors.torch.save_file` writes.
    var layoutRank: Int {
        switch self {
        case .i64: return 0
        case .f32: return 1
        case .i32: return 2
        case .bf16: return 3
        case .f16: return 4
        case .i8: return 5
        }
    }

    static var supportedList: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// Reads a JSON file into any `JSONTree` (`JSONValue`, or the tokenizer's order-keeping tree).
/// Every failure is a `ModelFormatError` naming the file (`shownAs`, default its path): it cannot
/// be read (`readFix`), or it is not valid JSON, with what and at which byte (`syntaxFix`).
public func readJSONFile<Tree: JSONTree>(_ url: URL, as _: Tree.Type = JSONValue.self, shownAs: String? = nil,
                                         readFix: String = "check that the file exists and is readable",
                                         syntaxFix: String = "fix the JSON syntax") throws -> Tree {
    let file = shownAs ?? url.path
    let data: Data
    do { data = try readFileData(url) } catch {
        throw ModelFormatError(file: file, problem: "cannot be read (\(error.localizedDescription))", fix: readFix)
    }
    do { return try parseJSON(data, as: Tree.self) } catch let e as JSONParseError {
        throw ModelFormatError(file: file, problem: "is not valid JSON (\(e.message) at byte \(e.offset))", fix: syntaxFix)
    }
}

/// `readJSONFile` for a file whose top level must be an object (`objectFix` says what it should be).
public func readJSONObject(_ url: URL, shownAs: String? = nil, readFix: String = "check that the file exists and is readable",
                           syntaxFix: String = "fix the JSON syntax", objectFix: String) throws -> [String: JSONValue] {
    guard case .object(let o) = try readJSONFile(url, shownAs: shownAs, readFix: readFix, syntaxFix: syntaxFix) else {
        throw ModelFormatError(file: shownAs ?? url.path, problem: "top level is not a JSON object", fix: objectFix)
    }
    return o
}
