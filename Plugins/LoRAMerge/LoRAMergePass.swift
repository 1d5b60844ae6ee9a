import Foundation
import Common
import ModelFormat
import Engine
import Toolbench

/// `lora-merge`: fold a PEFT LoRA adapter into the base weights (PEFT's `merge_and_unload`).
public struct LoRAMerge: CompressionPass {
    public static let name = "lora-merge"
    public static let summary = "Fold a PEFT LoRA adapter into the weights, W + (lora_alpha/r)·B·A, giving a plain checkpoint."
    public static let references = [ReferenceSpec("adapter", .adapter, required: false, "the adapter to merge, when an earlier stage produced it")]

    public struct Options: PassOptions {
        /// The adapter directory (alternatively bound by `references: { adapter: … }` in a recipe).
        public var adapter: String?

        public init(adapter: String? = nil) { self.adapter = adapter }

        static let table = OptionTable<Options>([
            .option("adapter", \.adapter, type: "path", "PEFT adapter directory (or a recipe reference named adapter)."),
        ])
        public init(from decoder: Decoder) throws {
            self.init()
            try Self.table.decode(&self, from: decoder)
        }
        public func encode(to encoder: Encoder) throws { try Self.table.encode(self, to: encoder) }
        public static var fields: [OptionField] { table.fields(defaults: Options()) }
        public var inputPaths: [String] { adapter.map { [$0] } ?? [] }
    }

    public init() {}

    public func check(_ model: ModelSummary, options o: Options, references: [String: PlannedArtifact]) throws -> PlannedOutput {
        if model.isQuantized {
            throw passError("the model is int8-quantized", fix: "merge the adapter into the float model, then quantize")
        }
        switch (o.adapter, references["adapter"]) {
        case (nil, nil):
            throw passError("no adapter to merge", fix: "set options.adapter to a PEFT adapter directory, or bind references: { adapter: \"<stage>\" }")
        case (.some, .some):
            throw passError("both options.adapter and references.adapter are given", fix: "give the adapter once")
        case (.some(let path), nil):
            // Cheap: adapter_config.json plus the adapter's (small) tensors, checked against the planned shapes.
            let url = resolvePath(path)
            let adapter = try LoRAAdapter.load(directory: url)
            try adapter.validate(against: model.config, source: url.path)
        case (nil, .some(let ref)):
            if let url = ref.existingPath {
                let adapter = try LoRAAdapter.load(directory: url)
                try adapter.validate(against: model.config, source: url.path)
            }
        }
        return PlannedOutput(checkpoint: model)
    }

    public func apply(_ context: PassContext, options o: Options) throws -> PassResult {
        let t0 = Date()
        guard let adapterURL = o.adapter.map({ context.resolve($0) }) ?? context.references["adapter"] else {
            throw passError("no adapter to merge", fix: "set options.adapter")
        }
        // The input stage's own adapter is folded in by loadInput(); merging it again here
        // (input: "ft", references: { adapter: "ft" }) would add B·A twice.
        let ownAdapter = context.inputAdapter?.standardizedFileURL.path == adapterURL.standardizedFileURL.path
        let ck = ownAdapter ? try Checkpoint.load(directory: context.input) : try context.loadInput()
        let adapter = try LoRAAdapter.load(directory: adapterURL)
        try adapter.validate(against: ck.config, source: adapterURL.path)
        let t1 = Date()
        let merged = try ck.merging(adapter, source: adapterURL.path)
        context.log(String(format: "load %.3f s, merge %.3f s", t1.timeIntervalSince(t0), Date().timeIntervalSince(t1)))
        context.log("merged \(adapter.weights.count) modules (r \(adapter.r), alpha \(adapter.alpha), scaling \(adapter.scaling))")
        let metrics: [String: JSONValue] = [
            "adapter": .string(adapterURL.path), "r": .int(adapter.r), "lora_alpha": .number(adapter.alpha),
            "scaling": .number(Double(adapter.scaling)), "merged_modules": .int(adapter.weights.count),
            "target_modules": .array(adapter.targetModules.map { .string($0) }),
        ]
        return PassResult(checkpoint: merged, metrics: metrics)
    }
}
