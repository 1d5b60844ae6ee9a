import Foundation
import ModelFormat
import Engine
import Toolbench
import TestKit

// Test passes: the host is tested without importing a real pass (it never does).

/// Keeps the first `layers` decoder layers.
struct Shrink: CompressionPass {
    static let name = "shrink"
    static let summary = "Keep the first N layers (test pass)."
    struct Options: PassOptions {
        var layers: Int
        var inner: Inner
        struct Inner: Codable, Sendable {
            var lambda: Double
            init(lambda: Double = 1) { self.lambda = lambda }
            enum CodingKeys: String, CodingKey { case lambda }
            init(from decoder: Decoder) throws {
                lambda = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(Double.self, forKey: .lambda) ?? 1
            }
        }
        enum CodingKeys: String, CodingKey { case layers, inner }
        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            layers = try c.decode(Int.self, forKey: .layers)
            inner = try c.decodeIfPresent(Inner.self, forKey: .inner) ?? Inner()
        }
        static let fields = [OptionField("layers", "int", "Layers to keep."), OptionField("inner", "object", default: "{lambda: 1}", "Nested test options.")]
        func validate() throws { if layers < 1 { throw passError("layers is \(layers)", fix: "keep at least one") } }
    }
    func check(_ model: ModelSummary, options: Options, references: [String: PlannedArtifact]) throws -> PlannedOutput {
        if options.layers > model.numLayers {
            throw passError("keeping \(options.layers) layers but the model has only \(model.numLayers)", fix: "keep fewer")
        }
        var m = model
        m.config.numLayers = options.layers
        return PlannedOutput(checkpoint: m)
    }
    func apply(_ context: PassContext, options: Options) throws -> PassResult {
        var ck = try context.loadInput()
        for n in ck.tensors.keys where n.hasPrefix("model.layers.") {
            let i = Int(n.dropFirst("model.layers.".count).prefix { $0 != "." })!
            if i >= options.layers { ck.tensors[n] = nil }
        }
        ck.config.numLayers = options.layers
        context.log("kept \(options.layers)")
        return PassResult(checkpoint: ck, metrics: ["layers": .int(options.layers)])
    }
}

/// Reads a `teacher` checkpoint; outputs its input unchanged (a distillation's shape).
struct Distil: CompressionPass {
    static let name = "distil"
    static let summary = "Copies its input; needs a teacher (test pass)."
    static let references = [ReferenceSpec("teacher", .checkpoint, required: true, "the teacher model")]
    struct Options: PassOptions {
        static let fields: [OptionField] = []
    }
    func check(_ model: ModelSummary, options: Options, references: [String: PlannedArtifact]) throws -> PlannedOutput {
        guard let t = references["teacher"]?.model else { throw passError("no teacher", fix: "bind one") }
        if t.numLayers < model.numLayers { throw passError("the teacher is smaller than the student", fix: "swap them") }
        return PlannedOutput(checkpoint: model)
    }
    func apply(_ context: PassContext, options: Options) throws -> PassResult {
        _ = try Checkpoint.load(directory: context.references["teacher"]!)
        return PassResult(checkpoint: try context.loadInput())
    }
}

/// Produces only an adapter (a LoRA fine-tune's shape).
struct MakeAdapter: CompressionPass {
    static let name = "make-adapter"
    static let summary = "Writes an empty LoRA adapter (test pass)."
    struct Options: PassOptions { static let fields: [OptionField] = [] }
    func check(_ model: ModelSummary, options: Options, references: [String: PlannedArtifact]) throws -> PlannedOutput {
        PlannedOutput(checkpoint: nil, adapter: true)
    }
    func apply(_ context: PassContext, options: Options) throws -> PassResult {
        PassResult(checkpoint: nil, adapter: LoRAAdapter(r: 2, alpha: 4, targetModules: [], weights: [:]))
    }
}

let testRegistry = PassRegistry([Shrink.self, Distil.self, MakeAdapter.self])

func tinyCheckpoint(layers: Int) -> Checkpoint { PassConformance.tinyCheckpoint(layers: layers) }

func tempDir(_ label: String) throws -> URL {
    let u = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    return u
}
