import Foundation
import Common
import ModelFormat
import Engine
import Toolbench

/// `prune-layers`: remove decoder layers and renumber tensors and config.
public struct PruneLayers: CompressionPass {
    public static let name = "prune-layers"
    public static let summary = "Remove decoder layers (keep-first, an explicit list, ShortGPT block influence or angular distance) and renumber."

    public enum Strategy: String, OptionEnum {
        case keepFirst = "keep-first", keepList = "keep-list", blockInfluence = "block-influence", angular
        var needsCalibration: Bool { self == .blockInfluence || self == .angular }
    }

    public struct Options: PassOptions {
        public var strategy: Strategy
        /// Layers to keep (keep-first, block-influence, angular).
        public var keep: Int?
        /// Layer indices to keep (keep-list).
        public var layers: [Int]?
        /// Calibration: a prepared dataset directory (block-influence, angular).
        public var data: String?
        public var users: Int
        public var batchSize: Int

        public init(strategy: Strategy, keep: Int? = nil, layers: [Int]? = nil, data: String? = nil, users: Int = 256, batchSize: Int = 32) {
            self.strategy = strategy
            self.keep = keep
            self.layers = layers
            self.data = data
            self.users = users
            self.batchSize = batchSize
        }

        static let table = OptionTable<Options>([
            .required("strategy", \.strategy, "Which layers survive."),
            .option("keep", \.keep, "Layers to keep (keep-first, block-influence, angular)."),
            .option("layers", \.layers, "Indices of the layers to keep, 0-based (keep-list)."),
            .option("data", \.data, type: "path", "Prepared dataset directory for calibration (block-influence, angular)."),
            .option("users", \.users, "Calibration users: the first N lines of sequences.txt."),
            .option("batch_size", \.batchSize, "Calibration sequences per forward pass."),
        ])
        public init(from decoder: Decoder) throws {
            self.init(strategy: .keepFirst)
            try Self.table.decode(&self, from: decoder)
        }
        public func encode(to encoder: Encoder) throws { try Self.table.encode(self, to: encoder) }
        public static var fields: [OptionField] { table.fields(defaults: Options(strategy: .keepFirst)) }

        public var inputPaths: [String] { strategy.needsCalibration ? data.map { [$0] } ?? [] : [] }

        public func validate() throws {
            func bad(_ p: String, _ f: String) -> ToolbenchError { passError(p, fix: f) }
            switch strategy {
            case .keepList:
                guard let l = layers, !l.isEmpty else { throw bad("strategy keep-list needs \"layers\"", "list the layers to keep, e.g. layers: [0, 1, 3]") }
                if keep != nil { throw bad("\"keep\" does nothing with strategy keep-list", "remove \"keep\"; the length of \"layers\" is the count") }
                if Set(l).count != l.count { throw bad("\"layers\" has duplicates: \(l)", "list each layer once") }
                if let neg = l.first(where: { $0 < 0 }) { throw bad("\"layers\" holds \(neg)", "layer indices start at 0") }
            default:
                guard let k = keep else { throw bad("strategy \(strategy.rawValue) needs \"keep\"", "set keep: <number of layers to keep>") }
                if k < 1 { throw bad("keep is \(k)", "keep at least one layer") }
                if layers != nil { throw bad("\"layers\" does nothing with strategy \(strategy.rawValue)", "remove it, or use strategy keep-list") }
            }
            if strategy.needsCalibration {
                guard let d = data, !d.isEmpty else { throw bad("strategy \(strategy.rawValue) needs calibration \"data\"", "set data: \"<prepared dataset directory>\"") }
                if users < 1 { throw bad("users is \(users)", "use at least one calibration user") }
                if batchSize < 1 { throw bad("batch_size is \(batchSize)", "use a positive batch size") }
            } else if data != nil {
                throw bad("\"data\" does nothing with strategy \(strategy.rawValue)", "remove it (only block-influence and angular calibrate)")
            }
        }
    }

    public init() {}

    public func check(_ model: ModelSummary, options o: Options, references: [String: PlannedArtifact]) throws -> PlannedOutput {
        let n = model.numLayers
        if model.isQuantized {
            throw passError("the model is int8-quantized", fix: "prune before quantizing (put prune-layers before quantize-int8)")
        }
        let kept: Int
        if o.strategy == .keepList {
            let l = o.layers ?? []
            if let bad = l.first(where: { $0 >= n }) {
                throw passError("layer \(bad) does not exist: the model has \(n) layers (0…\(n - 1))", fix: "list layers in 0…\(n - 1)")
            }
            kept = l.count
        } else {
            kept = o.keep ?? n
            if kept > n { throw passError("keep is \(kept) but the model has only \(n) layers", fix: "keep at most \(n) layers") }
        }
        var out = model
        out.config.numLayers = kept
        return PlannedOutput(checkpoint: out)
    }

    public func apply(_ context: PassContext, options o: Options) throws -> PassResult {
        let ck = try context.loadInput()
        _ = try check(ModelSummary(ck), options: o, references: [:])
        let n = ck.config.numLayers
        var metrics: [String: JSONValue] = ["strategy": .string(o.strategy.rawValue), "layers_before": .int(n)]
        let keep: [Int]
        switch o.strategy {
        case .keepFirst:
            keep = Array(0..<(o.keep ?? n))
        case .keepList:
            keep = (o.layers ?? []).sorted()
        case .blockInfluence, .angular:
            let dataDir = context.resolve(o.data ?? "")
            let seqs = try CalibrationData.sequences(directory: dataDir, users: o.users, maxLength: ck.config.ellmrec.maxSeqLen,
                                                     numItems: ck.config.ellmrec.numItems)
            context.log("calibration: \(seqs.count) sequences from \(dataDir.path)")
            let model = try ELLMRecModel(checkpoint: ck)
            if o.strategy == .blockInfluence {
                let bi = try LayerScores.blockInfluence(model: model, sequences: seqs, batchSize: o.batchSize,
                                                        progress: context.progress("block influence", total: seqs.count, unit: "seq"))
                keep = LayerScores.keepHighest(bi, count: o.keep ?? n)
                metrics["block_influence"] = .numbers(bi)
            } else {
                let drop = n - (o.keep ?? n)
                let dist = try LayerScores.angularDistances(model: model, sequences: seqs, block: drop, batchSize: o.batchSize,
                                                            progress: context.progress("angular distance", total: seqs.count, unit: "seq"))
                let start = LayerScores.argmin(dist)
                keep = (0..<n).filter { drop == 0 || $0 < start || $0 >= start + drop }
                metrics["angular_distance"] = .numbers(dist)
                metrics["dropped_block_start"] = .int(start)
            }
            metrics["calibration_sequences"] = .int(seqs.count)
        }
        context.log("keeping layers \(keep) of \(n)")
        metrics["kept_layers"] = .ints(keep)
        metrics["dropped_layers"] = .ints((0..<n).filter { !keep.contains($0) })
        metrics["layers_after"] = .int(keep.count)
        let out = LayerRenumbering.keep(keep, of: ck)
        metrics["parameters_before"] = .int(ck.parameterCount)
        metrics["parameters_after"] = .int(out.parameterCount)
        return PassResult(checkpoint: out, metrics: metrics)
    }
}
