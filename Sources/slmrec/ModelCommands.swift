import Foundation
import ModelEvaluation
import Common
import CommandKit
import ModelFormat
import Engine
import RecData

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a new E-LLMRec checkpoint (random weights, or wrapping a pretrained LLaMa).",
        discussion: """
        Random: give the architecture by flags or take it from --config (a config.json). \
        Pretrained: --base is a Hugging Face LLaMa directory or a llama .gguf file; its first --keep-layers \
        layers and final norm become the trunk, and the prompt blocks are the token embeddings of \
        --prompt-text / --suffix-text (tokenized with the trunk's tokenizer; docs/pretrained-trunks.md) \
        or of --prompt-token-ids / --suffix-token-ids. Item embeddings come from --item-embeddings \
        (a safetensors file with one [items+1, item_dim] tensor, row 0 = padding, as `slmrec sasrec` writes) or are random.
        """)

    @Option(help: "Output checkpoint directory.") var output: String
    @Option(help: "Take the architecture from this config.json.") var config: String?
    @Option(help: "A pretrained LLaMa to wrap: a Hugging Face directory or a .gguf file.") var base: String?
    @Option(help: "With --base: keep the first N decoder layers (default: all).") var keepLayers: Int?
    @Option(help: "With --base: token ids whose embeddings form the prompt prefix.") var promptTokenIds: [Int] = []
    @Option(help: "With --base: token ids whose embeddings form the prompt suffix.") var suffixTokenIds: [Int] = []
    @Option(help: "With --base: the prompt prefix as text (E4SRec/SLMRec's instruction), tokenized with the trunk's tokenizer.") var promptText: String?
    @Option(help: "With --base: the prompt suffix as text (e.g. $'\\n### Response:\\n').") var suffixText: String?
    @Option(help: "Item table to use (safetensors, [items+1, item_dim]).") var itemEmbeddings: String?
    // Architecture flags are optional so that one given where it cannot apply (with --config
    // or --base) is an error instead of being silently ignored; defaults in the help text.
    @Option(help: "Decoder layers (default 4).") var layers: Int?
    @Option(help: "Hidden size d1 (default 256).") var hidden: Int?
    @Option(help: "MLP intermediate size (default 688).") var intermediate: Int?
    @Option(help: "Attention heads (default 4).") var heads: Int?
    @Option(help: "Key/value heads (default: --heads).") var kvHeads: Int?
    @Option(help: "Number of items N (ids 1…N).") var items: Int?
    @Option(help: "Take the number of items from this prepared dataset directory.") var data: String?
    @Option(help: "Item embedding size d0 (default 64; from --item-embeddings when given).") var itemDim: Int?
    @Option(help: "Prompt prefix length, random prompt (default 4).") var promptLength: Int?
    @Option(help: "Prompt suffix length, random suffix (default 0).") var suffixLength: Int?
    @Option(help: "Most recent items fed to the model (default 50).") var maxSeqLen: Int?
    @Option(help: "Random seed.") var seed: UInt64 = 42
    @Flag(help: "Replace an existing checkpoint at --output (nothing else is ever replaced; docs/outputs.md).") var force = false

    mutating func validate() throws {
        if base == nil && config == nil && items == nil && itemEmbeddings == nil && data == nil {
            throw ValidationError("--items is required for a random checkpoint (or pass --item-embeddings, --data, --config or --base)")
        }
        if base != nil && config != nil { throw ValidationError("give --base or --config, not both") }
        let architecture: [(String, Int?)] = [("--layers", layers), ("--hidden", hidden), ("--intermediate", intermediate),
                                              ("--heads", heads), ("--kv-heads", kvHeads), ("--prompt-length", promptLength),
                                              ("--suffix-length", suffixLength)]
        let source = base != nil ? "--base (the prompt comes from --prompt-text/--suffix-text or --prompt-token-ids/--suffix-token-ids)" : config != nil ? "--config" : nil
        if let source, let given = architecture.first(where: { $0.1 != nil }) {
            throw ValidationError("\(given.0) does not apply with \(source): the architecture comes from there")
        }
        if config != nil, let given = [("--item-dim", itemDim), ("--max-seq-len", maxSeqLen)].first(where: { $0.1 != nil }) {
            throw ValidationError("\(given.0) does not apply with --config: it comes from the config's ellmrec object")
        }
        for (name, v) in architecture + [("--item-dim", itemDim), ("--max-seq-len", maxSeqLen)] {
            if let v, v < (name.contains("length") ? 0 : 1) { throw ValidationError("\(name) must be \(name.contains("length") ? "non-negative" : "positive") (got \(v))") }
        }
        let h = hidden ?? 256, nh = heads ?? 4
        if h % nh != 0 { throw ValidationError("--hidden \(h) is not divisible by --heads \(nh)") }
        if let kv = kvHeads, nh % kv != 0 { throw ValidationError("--kv-heads \(kv) must divide --heads \(nh)") }
        if let k = keepLayers {
            if base == nil { throw ValidationError("--keep-layers applies with --base (the layers of a pretrained trunk to keep)") }
            if k < 1 { throw ValidationError("--keep-layers must be at least 1 (got \(k))") }
        }
        if base == nil && (!promptTokenIds.isEmpty || !suffixTokenIds.isEmpty || promptText != nil || suffixText != nil) {
            throw ValidationError("--prompt-text/--suffix-text and --prompt-token-ids/--suffix-token-ids need --base (the token embeddings come from it)")
        }
    }

    func run() throws {
        let inputs: [(String, URL)] = [("--config", config), ("--base", base), ("--item-embeddings", itemEmbeddings), ("--data", data)]
            .compactMap { label, path in path.map { (label, fileURL($0)) } }
        try writingOutput(fileURL(output), kind: Checkpoint.outputKind, force: force, inputs: inputs) { try create() }
    }

    func create() throws {
        var items = self.items
        if let data {
            let n = try PreparedDataset.load(directory: fileURL(data)).numItems
            if let items, items != n { throw ValidationError("--items \(items) disagrees with \(data) (\(n) items)") }
            items = n
        }
        var itemTable: Tensor?
        if let path = itemEmbeddings {
            let f = try SafetensorsFile(url: fileURL(path))
            let name = f.names.first { $0.hasSuffix("item_embedding.weight") } ?? (f.names.count == 1 ? f.names[0] : nil)
            guard let name, let t = try? f.tensor(name), t.shape.count == 2, t.shape[0] >= 2 else {
                throw ModelFormatError(file: path, problem: "expected one [items+1, item_dim] tensor (e.g. \"item_embedding.weight\"), found \(f.names)",
                                 fix: "pass the item_embeddings.safetensors that slmrec sasrec writes")
            }
            itemTable = t
            if let itemDim, itemDim != t.shape[1] {
                throw ValidationError("--item-dim \(itemDim) disagrees with \(path) (\(t.shape[1]) columns); drop --item-dim")
            }
        }
        let ck: Checkpoint
        if let base {
            guard let n = itemTable.map({ $0.shape[0] - 1 }) ?? items else {
                throw ValidationError("--items (or --item-embeddings) is required with --base")
            }
            var trunk = TrunkImport(numItems: n)
            trunk.keepLayers = keepLayers
            trunk.itemDim = itemDim ?? 64
            trunk.itemTable = itemTable
            trunk.promptTokenIds = promptTokenIds
            trunk.suffixTokenIds = suffixTokenIds
            trunk.promptText = promptText
            trunk.suffixText = suffixText
            trunk.maxSeqLen = maxSeqLen ?? 50
            trunk.seed = seed
            ck = try trunk.wrap(base: fileURL(base))
        } else {
            var d: ModelDims
            if let config {
                let c = try ModelConfig.load(from: fileURL(config))
                d = ModelDims(config: c, inputProjBias: true, outputProjBias: true)
            } else {
                d = ModelDims(hidden: hidden ?? 256, intermediate: intermediate ?? 688, layers: layers ?? 4, heads: heads ?? 4,
                              kvHeads: kvHeads, numItems: items ?? 0, itemDim: itemDim ?? 64, promptLength: promptLength ?? 4,
                              suffixLength: suffixLength ?? 0, maxSeqLen: maxSeqLen ?? 50)
            }
            if let t = itemTable { d.numItems = t.shape[0] - 1; d.itemDim = t.shape[1] }
            if let items, items != d.numItems { throw ValidationError("--items \(items) disagrees with the item table (\(d.numItems) items)") }
            let model = ELLMRecModel.random(dims: d, seed: seed)
            if let t = itemTable { model.params.set(ParamName.itemEmbedding, try t.floats()) }
            ck = model.checkpoint()
        }
        try ck.save(to: fileURL(output))
        emit("wrote \(output): \(ck.config.numLayers) layers, hidden \(ck.config.hiddenSize), \(ck.config.ellmrec.numItems) items, \(ck.parameterCount) parameters")
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a checkpoint: config, parameter counts per group, bytes, dtypes, adapter and quantization state.")

    @Argument(help: "Checkpoint directory.") var checkpoint: String
    @Flag(help: "Print JSON instead of text.") var json = false

    func run() throws {
        let dir = fileURL(checkpoint)
        let ck = try Checkpoint.load(directory: dir)
        let c = ck.config
        let info = try CheckpointSummary(ck, directory: dir)
        if json { emit(JSONText.prettyString(try JSONValue.encoding(info))); return }
        let total = info.parameters, groups = info.parametersByGroup, bytes = info.bytesOnDisk, dtypes = info.dtypes
        emit("checkpoint   \(dir.path)")
        emit("architecture \(c.numLayers) layers, hidden \(c.hiddenSize), intermediate \(c.intermediateSize), heads \(c.numHeads)/\(c.numKVHeads) kv, head_dim \(c.headDim)")
        emit("ellmrec      \(c.ellmrec.numItems) items × \(c.ellmrec.itemDim), prompt \(c.ellmrec.promptLength), suffix \(c.ellmrec.suffixLength), max_seq_len \(c.ellmrec.maxSeqLen)")
        if let t = info.trunk { emit("trunk        pretrained layers from \(t)") }
        if let p = c.ellmrec.prompt { emit("prompt text  \(jsonQuoted(p.text)) (\(p.tokenIds.count) tokens: \(p.tokenIds.map(String.init).joined(separator: " ")); the embeddings were initialised from them)") }
        if let p = c.ellmrec.suffix { emit("suffix text  \(jsonQuoted(p.text)) (\(p.tokenIds.count) tokens: \(p.tokenIds.map(String.init).joined(separator: " ")))") }
        emit("parameters   \(fmtCount(total)) total, \(fmtCount(total - (groups["item table"] ?? 0))) non-embedding")
        emit(textTable([["  group", "parameters"]] + groups.sorted(by: { $0.value > $1.value }).map { ["  " + $0.key, fmtCount($0.value)] }))
        emit("on disk      \(fmtBytes(bytes)), dtypes \(dtypes.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " "))")
        emit("quantization \(info.quantization)")
        if info.adapterInDirectory { emit("warning      an adapter_config.json sits inside the checkpoint; Hugging Face would auto-attach it. Keep adapters in their own directory.") }
    }
}

/// A string as a JSON literal (escapes newlines, so a "\n### Response:\n" suffix reads on one line).
func jsonQuoted(_ s: String) -> String { JSONText.compact(.string(s)) }

func fmtCount(_ n: Int) -> String {
    n >= 1_000_000 ? String(format: "%.2fM", Double(n) / 1e6) : n >= 1000 ? String(format: "%.1fk", Double(n) / 1e3) : "\(n)"
}

func fmtBytes(_ n: Int) -> String {
    n >= 1 << 20 ? String(format: "%.2f MiB", Double(n) / 1048576) : n >= 1024 ? String(format: "%.1f KiB", Double(n) / 1024) : "\(n) B"
}

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "User vectors and scores for a batch of item sequences (export to a vector index).",
        discussion: "BATCH.json is {\"sequences\": [[item ids, oldest first], …]}. OUT holds user [B, d0], scores [B, items+1], last_hidden [B, d1] and, with --hidden-states, hidden.0 … hidden.L [B, d1] (residual stream at the last position, before the final norm).")

    @OptionGroup var model: ModelOptions
    @Option(help: "The batch file (JSON).") var sequences: String
    @Option(help: "Output safetensors file.") var output: String
    @Flag(help: "Also write hidden.0 … hidden.L.") var hiddenStates = false
    @Flag(help: "Replace an existing --output that slmrec embed wrote (nothing else is ever replaced).") var force = false

    /// What this command writes, for the output guard: a safetensors file with these tensors.
    static let outputKind = safetensorsOutput("embeddings file (slmrec embed)", tensors: ["user", "scores", "last_hidden"])

    func run() throws {
        let inputs = model.inputs + [("--sequences", fileURL(sequences))]
        try writingOutput(fileURL(output), kind: Self.outputKind, force: force, inputs: inputs) { try embed() }
    }

    func embed() throws {
        let model = try self.model.load()   // float or int8
        let d = model.dims
        let batch = try BatchFile.load(fileURL(sequences), shownAs: sequences).packed(dims: d, withTargets: false)
        let a = model.infer(batch)
        let b = batch.count
        var out: [String: Tensor] = [
            "user": Tensor(floats: a.user.array, shape: [b, d.itemDim]),
            "scores": Tensor(floats: a.scores.array, shape: [b, d.numItems + 1]),
            "last_hidden": Tensor(floats: a.lastHidden.array, shape: [b, d.hidden]),
        ]
        if hiddenStates { for k in 0...d.layers { out["hidden.\(k)"] = Tensor(floats: a.hiddenState(k, dims: d), shape: [b, d.hidden]) } }
        try Safetensors.write(out, to: fileURL(output))
        emit("wrote \(output): \(b) users, \(out.count) tensors")
    }
}

struct Grads: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mean cross-entropy loss and the gradient of every trainable tensor (verify the engine against PyTorch).",
        discussion: "Without --adapter every model tensor is trainable (grad.<name>); with it, the LoRA tensors (grad.<PEFT name>, e.g. grad.base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight). BATCH.json needs \"targets\".")

    @OptionGroup var model: ModelOptions
    @Option(help: "The batch file (JSON) with sequences and targets.") var batch: String
    @Option(help: "Output safetensors file.") var output: String
    @Flag(help: "Replace an existing --output that slmrec grads wrote (nothing else is ever replaced).") var force = false

    static let outputKind = safetensorsOutput("gradients file (slmrec grads)", tensors: ["loss"])

    func run() throws {
        let inputs = model.inputs + [("--batch", fileURL(batch))]
        try writingOutput(fileURL(output), kind: Self.outputKind, force: force, inputs: inputs) { try grads() }
    }

    func grads() throws {
        let model = try self.model.load(requireFloat: true)
        let pb = try BatchFile.load(fileURL(batch), shownAs: batch).packed(dims: model.dims, withTargets: true)
        let out = model.lossGradients(pb)
        try Safetensors.write(out, to: fileURL(output))
        let loss = (try? out["loss"]?.floats().first) ?? nil
        emit(String(format: "loss %.6f; wrote %d gradients to %@", Double(loss ?? .nan), out.count - 1, output))
    }
}

/// A safetensors file output recognised by the tensors it holds.
func safetensorsOutput(_ name: String, tensors: [String]) -> OutputKind {
    OutputKind(file: name) { url in
        guard let f = try? SafetensorsFile(url: url) else { return false }
        return Set(tensors).isSubset(of: Set(f.names))
    }
}

enum DTypeChoice: String, CaseIterable, ExpressibleByArgument {
    case f32, f16, bf16
    var dtype: DType { switch self { case .f32: .f32; case .f16: .f16; case .bf16: .bf16 } }
}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rewrite a checkpoint (e.g. sharded → single file) in another float dtype.",
        discussion: "int8-quantized weights and their scales are kept as they are.")

    @Option(help: "Input checkpoint directory.") var input: String
    @Option(help: "Output checkpoint directory.") var output: String
    @Option(help: "Float dtype of the output.") var dtype: DTypeChoice = .f32
    @Flag(help: "Replace an existing checkpoint at --output (nothing else is ever replaced; docs/outputs.md).") var force = false

    func run() throws {
        try writingOutput(fileURL(output), kind: Checkpoint.outputKind, force: force, inputs: [("--input", fileURL(input))]) {
            let ck = try Checkpoint.load(directory: fileURL(input))
            try ck.save(to: fileURL(output), dtype: dtype.dtype)
        }
        let bytes = try TensorStore.open(directory: fileURL(output)).bytesOnDisk
        emit("wrote \(output) (\(dtype.rawValue), \(fmtBytes(bytes)))")
    }
}
