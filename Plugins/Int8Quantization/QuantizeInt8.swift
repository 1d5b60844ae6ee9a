import Foundation
import Common
import ModelFormat
import Engine
import Toolbench

/// `quantize-int8`: symmetric per-output-channel int8 weights for the decoder linears, written
/// in the compressed-tensors layout (docs/checkpoint-format.md, "Int8 checkpoints").
public struct QuantizeInt8: CompressionPass {
    public static let name = "quantize-int8"
    public static let summary = "Symmetric per-output-channel int8 weights for the decoder linears (compressed-tensors layout)."

    /// The recommendation head's projections stay in float (as in the spec's example block).
    public static let alwaysIgnored = ["ellmrec.input_proj", "ellmrec.output_proj"]

    public struct Options: PassOptions {
        public var modules: [String]
        /// Modules left in float: full names ("model.layers.0.mlp.down_proj") or "re:<regex>".
        public var ignore: [String]

        public init(modules: [String] = TensorNames.linearModules, ignore: [String] = []) {
            self.modules = modules
            self.ignore = ignore
        }

        static let table = OptionTable<Options>([
            .option("modules", \.modules, "Linear kinds to quantize (the seven decoder linears by default)."),
            .option("ignore", \.ignore, "Modules kept in float: full names (model.layers.0.mlp.down_proj) or re:<regex>."),
        ])
        public init(from decoder: Decoder) throws {
            self.init()
            try Self.table.decode(&self, from: decoder)
        }
        public func encode(to encoder: Encoder) throws { try Self.table.encode(self, to: encoder) }
        public static var fields: [OptionField] { table.fields(defaults: Options()) }

        public func validate() throws {
            if modules.isEmpty { throw passError("\"modules\" is empty", fix: "list at least one linear kind, or drop the stage") }
            for m in modules where !TensorNames.linearModules.contains(m) {
                let hint = nearest(m, in: TensorNames.linearModules).map { " — did you mean \"\($0)\"?" } ?? ""
                throw passError("modules: \"\(m)\" is not a decoder linear\(hint)", fix: "choose from \(TensorNames.linearModules.joined(separator: ", "))")
            }
            if Set(modules).count != modules.count { throw passError("modules has duplicates", fix: "list each kind once") }
            for p in ignore where p.hasPrefix("re:") {
                if (try? NSRegularExpression(pattern: String(p.dropFirst(3)))) == nil {
                    throw passError("ignore: \"\(p)\" is not a valid regular expression", fix: "fix the pattern after re:")
                }
            }
        }
    }

    public init() {}

    /// The quantization_config for a model: user ignores, the head, and every decoder linear
    /// whose kind is not selected (named exactly, so readers need no knowledge of `modules`).
    static func quantizationConfig(_ o: Options, layers: Int) -> QuantizationConfig {
        var ignore = alwaysIgnored + o.ignore
        for l in 0..<layers {
            for m in TensorNames.linearModules where !o.modules.contains(m) { ignore.append(TensorNames.linear(l, m)) }
        }
        return QuantizationConfig.int8Channel(ignore: ignore)
    }

    public func check(_ model: ModelSummary, options o: Options, references: [String: PlannedArtifact]) throws -> PlannedOutput {
        if model.isQuantized {
            throw passError("the model is already int8-quantized", fix: "quantize the float model once (remove this stage or point it at a float checkpoint)")
        }
        let all = (0..<model.numLayers).flatMap { l in TensorNames.linearModules.map { TensorNames.linear(l, $0) } }
        for p in o.ignore where !all.contains(where: { QuantizationConfig.int8Channel(ignore: [p]).isIgnored($0) }) {
            let hint = nearest(p, in: all).map { " — did you mean \"\($0)\"?" } ?? ""
            throw passError("ignore: \"\(p)\" matches no decoder linear of this \(model.numLayers)-layer model\(hint)",
                            fix: "name modules as model.layers.{i}.self_attn.q_proj or use re:<regex>")
        }
        let q = Self.quantizationConfig(o, layers: model.numLayers)
        if !all.contains(where: { !q.isIgnored($0) }) {
            throw passError("every decoder linear is ignored; nothing to quantize", fix: "shorten \"ignore\" or widen \"modules\"")
        }
        var out = model
        out.config.quantization = q
        return PlannedOutput(checkpoint: out)
    }

    public func apply(_ context: PassContext, options o: Options) throws -> PassResult {
        let ck = try context.loadInput()
        let planned = try check(ModelSummary(ck), options: o, references: [:])
        var out = ck
        out.config.quantization = planned.checkpoint?.config.quantization
        let targets = TensorNames.quantizedModules(for: out.config)
        var errors: [String: JSONValue] = [:]
        var layerErr2 = [Double](repeating: 0, count: ck.config.numLayers), layerNorm2 = layerErr2
        var before = 0, after = 0
        for module in targets {
            let w = ck.tensors[module + ".weight"]!   // validated checkpoint: every linear exists
            let rows = w.shape[0], cols = w.shape[1]
            let q = try Int8Math.quantizeRows(try w.floats(), rows: rows, cols: cols)
            out.tensors[module + ".weight"] = Tensor(int8: q.values, shape: [rows, cols])
            out.tensors[module + ".weight_scale"] = Tensor(floats: q.scales, shape: [rows, 1])
            before += w.data.count
            after += rows * cols + rows * 4
            errors[module] = .number(q.relativeError)
            if let l = Int(module.dropFirst("model.layers.".count).prefix { $0 != "." }) {
                layerErr2[l] += q.errorSquared
                layerNorm2[l] += q.normSquared
            }
        }
        let totalBefore = ck.tensors.values.reduce(0) { $0 + $1.data.count }
        let totalAfter = out.tensors.values.reduce(0) { $0 + $1.data.count }
        let perLayer = zip(layerErr2, layerNorm2).map { $1 > 0 ? ($0 / $1).squareRoot() : 0 }
        context.log(String(format: "quantized %d linears: %.2f MiB → %.2f MiB (%.2fx); checkpoint %.2fx", targets.count,
                           Double(before) / 1048576, Double(after) / 1048576, Double(before) / Double(max(after, 1)),
                           Double(totalBefore) / Double(max(totalAfter, 1))))
        let metrics: [String: JSONValue] = [
            "quantized_modules": .int(targets.count),
            "linear_weight_bytes_before": .int(before), "linear_weight_bytes_after": .int(after),
            "linear_weight_ratio": .number(Double(before) / Double(max(after, 1))),
            "tensor_bytes_before": .int(totalBefore), "tensor_bytes_after": .int(totalAfter),
            "checkpoint_ratio": .number(Double(totalBefore) / Double(max(totalAfter, 1))),
            "relative_error": .object(errors),
            "layer_relative_error": .numbers(perLayer),
        ]
        return PassResult(checkpoint: out, metrics: metrics)
    }
}

public enum Int8Math {
    public struct Quantized: Sendable {
        public var values: [Int8]     // (out, in)
        public var scales: [Float]    // (out)
        public var errorSquared: Double
        public var normSquared: Double
        public var relativeError: Double { normSquared > 0 ? (errorSquared / normSquared).squareRoot() : 0 }
    }

    /// Per output channel (row): scale = max|w_row| / 127, q = clamp(round_half_even(w / scale), −127, 127)
    /// — symmetric, as llm-compressor's channel-wise int8 (torch.round rounds half to even).
    /// The quantization itself is the engine's (`Int8Quant`, the same kernel the int8
    /// inference path quantizes with); this adds the checks and ‖W − Ŵ‖², ‖W‖² with Ŵ = q · scale.
    /// An all-zero row gets scale 1 (any scale reconstructs it exactly).
    public static func quantizeRows(_ w: [Float], rows: Int, cols: Int) throws -> Quantized {
        guard w.count == rows * cols else { throw passError("weight has \(w.count) values for [\(rows), \(cols)]", fix: "this is a bug") }
        for r in 0..<rows where !(w[(r * cols)..<((r + 1) * cols)].allSatisfy { $0.isFinite }) {
            throw passError("row \(r) holds a non-finite weight", fix: "the checkpoint is damaged (NaN/Inf); retrain or restore it")
        }
        var (q, scales) = Int8Quant.quantizeRows(w, rows: rows, cols: cols)
        var err2 = 0.0, norm2 = 0.0
        for r in 0..<rows {
            if scales[r] == 0 { scales[r] = 1 }
            let s = Double(scales[r])
            for c in (r * cols)..<((r + 1) * cols) {
                let d = Double(w[c]) - Double(q[c]) * s
                err2 += d * d
                norm2 += Double(w[c]) * Double(w[c])
            }
        }
        return Quantized(values: q, scales: scales, errorSquared: err2, normSquared: norm2)
    }
}
