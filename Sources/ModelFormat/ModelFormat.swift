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
