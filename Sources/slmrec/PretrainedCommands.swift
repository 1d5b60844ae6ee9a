import Foundation
import CommandKit
import Common
import ModelFormat
import GGUF
import Engine
import Tokenizer

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
        // The tokenizer's Hugging Face files (tokenizer.json, tokenizer_config.json), when the
        // file carries a vocabulary.
        let tokenizerFiles = model.file.hasTokenizer ? try model.tokenizer().huggingFaceFiles() : []
        try writingOutput(out, kind: LlamaGGUF.outputKind, force: force, inputs: [("the GGUF file", src)]) {
            try model.writeHuggingFace(to: out, dtype: dtype.dtype, extraFiles: tokenizerFiles)
        }
        let types = model.typeCounts.sorted { $0.value > $1.value }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
        emit("wrote \(output): \(model.layers) layers, hidden \(model.hidden), \(model.heads) heads (\(model.kvHeads) KV), vocab \(model.vocabSize), "
             + "\(model.parameterCount) parameters as \(dtype.rawValue) (from \(types))")
    }
}

/// `slmrec tokenize`: what the trunk's tokenizer makes of a text (the ids `init --prompt-text` uses).
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the token ids and pieces of a text under a pretrained trunk's tokenizer.",
        discussion: """
        --base is a .gguf file (its tokenizer.ggml.* metadata), a Hugging Face directory with a tokenizer.json, \
        or a tokenizer.json itself. BOS is added only when the tokenizer adds one (--no-bos to leave it out).
        """)

    @Option(help: "A .gguf file, a Hugging Face directory or a tokenizer.json.") var base: String
    @Argument(help: "The text to tokenize.", valueName: "text") var text: String
    @Flag(help: "Never add the BOS token.") var noBos = false
    @Flag(help: "Print JSON instead of text.") var json = false

    func run() throws {
        let url = fileURL(base)
        let tok: Tokenizer
        if url.pathExtension == "json" {
            tok = try Tokenizer.load(tokenizerJSON: url)
        } else {
            guard let t = try PretrainedTrunk.open(url).tokenizer() else {
                throw ValidationError("\(base) has no tokenizer (no tokenizer.json, or no tokenizer.ggml.* metadata)")
            }
            tok = t
        }
        let ids = tok.encode(text, addBos: noBos ? false : nil)
        if json {
            emit(JSONText.prettyString(.object(["text": .string(text), "ids": .array(ids.map { .int($0) }),
                                                 "pieces": .array(ids.map { .string(tok.piece($0)) }), "tokenizer": .string(tok.source)])))
            return
        }
        emit("\(ids.count) tokens (\(tok.vocabulary.model.rawValue)\(tok.vocabulary.pre.map { ", pre \($0)" } ?? ""), \(tok.vocabulary.tokens.count) in the vocabulary)")
        emit("ids    " + ids.map(String.init).joined(separator: " "))
        emit(textTable([["  id", "piece"]] + ids.map { ["  \($0)", jsonQuoted(tok.piece($0))] }))
    }
}
