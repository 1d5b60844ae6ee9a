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
        let ck = try context.loadInput()
        guard let adapterURL = o.adapter.map({ context.resolve($0) }) ?? context.references["adapter"] else {
            throw passError("no adapter to merge", fix: "set options.adapter")
        }
        let adapter = try LoRAAdapter.load(directory: adapterURL)
        try adapter.validate(against: ck.config, source: adapterURL.path)
        let t1 = Date()
        let merged = try LoRAMath.merge(ck, adapter)
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

public enum LoRAMath {
    /// W' = W + s·(B·A) with s = lora_alpha / r, as PEFT's `Linear.merge` computes it
    /// (`get_delta_weight` = (B @ A) · scaling, then added to the base weight), in fp32; the
    /// result is stored in the base weight's dtype (one rounding for F16/BF16 checkpoints).
    public static func merge(_ ck: Checkpoint, _ adapter: LoRAAdapter) throws -> Checkpoint {
        var out = ck
        let r = adapter.r, s = adapter.scaling
        for (module, pair) in adapter.weights {
            let wName = module + ".weight"
            guard let w = ck.tensors[wName], w.shape.count == 2 else {
                throw passError("the checkpoint has no weight \(wName)", fix: "the adapter does not fit this model")
            }
            let rows = w.shape[0], cols = w.shape[1]
            var merged = try w.floats()
            let a = try pair.a.floats(), b = try pair.b.floats()   // a (r, in), b (out, r)
            guard a.count == r * cols, b.count == rows * r else {
                throw passError("\(module): LoRA shapes \(pair.a.shape), \(pair.b.shape) do not fit \(w.shape)", fix: "the adapter does not fit this model")
            }
            // Row by row: delta_i = Σ_k B[i,k]·A[k,:] (PEFT's B @ A), then W_i += delta_i · s — the
            // same fp32 operations as PEFT's W + (B @ A)·s. A rank-r update is memory-bound;
            // level-1 loops avoid a threaded GEMM's start-up cost on these thin products.
            var delta = [Float](repeating: 0, count: cols)
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in merged.withUnsafeMutableBufferPointer { wp in
                delta.withUnsafeMutableBufferPointer { dp in
                    for i in 0..<rows {
                        dp.update(repeating: 0)
                        for k in 0..<r { saxpy(cols, bp[i * r + k], ap.baseAddress! + k * cols, dp.baseAddress!) }
                        let w = wp.baseAddress! + i * cols
                        for j in 0..<cols { w[j] += dp[j] * s }
                    }
                }
            } } }
            out.tensors[wName] = Tensor(floats: merged, shape: w.shape, dtype: w.dtype)
        }
        return out
    }
}
