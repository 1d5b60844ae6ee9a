import Foundation
import CommandKit
import Common
import ModelFormat
import GGUF

/// `slmrec import-gguf`: a llama GGUF (llama.cpp's format, e.g. the SmolLM2-135M that
/// scripts/fetch-smollm2 fetches) as a Hugging Face LLaMa directory.
struct ImportGGUF: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-gguf",
        abstract: "Convert a llama-architecture GGUF file into a Hugging Face LLaMa directory.",
        discussion: """
        Writes config.json, model.safetensors (every tensor dequantized; attn_q/attn_k rows put back in \
        Hugging Face order), the tokenizer's files and gguf-import.json. transformers loads the result as \
        LlamaForCausalLM; `slmrec init --base` takes it (or the .gguf itself). See docs/pretrained-trunks.md.
        """)

    @Argument(help: "The .gguf file (llama architecture).", valueName: "file.gguf") var file: String
    @Option(help: "Output directory.") var output: String
    @Option(help: "Float dtype of the written weights.") var dtype: DTypeChoice = .f32
    @Flag(help: "Replace an existing directory of this kind at --output (nothing else is ever replaced; docs/outputs.md).") var force = false

    func run() throws {
        let src = fileURL(file), out = fileURL(output)
        let model = try LlamaGGUF.open(src)
        try writingOutput(out, kind: LlamaGGUF.outputKind, force: force, inputs: [("the GGUF file", src)]) {
            try model.writeHuggingFace(to: out, dtype: dtype.dtype, extraFiles: [])
        }
        let types = model.typeCounts.sorted { $0.value > $1.value }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
        emit("wrote \(output): \(model.layers) layers, hidden \(model.hidden), \(model.heads) heads (\(model.kvHeads) KV), vocab \(model.vocabSize), "
             + "\(model.parameterCount) parameters as \(dtype.rawValue) (from \(types))")
    }
}
