import Foundation
import Common
import ModelFormat

extension LlamaGGUF {
    /// What `slmrec import-gguf` writes: a Hugging Face LLaMa directory
    /// (`LlamaForCausalLM.from_pretrained` loads it), the tokenizer's files and a provenance record.
    public static let outputKind = OutputKind(name: "Hugging Face LLaMa directory",
                                              files: [Checkpoint.configFile, TensorStore.singleFile, importRecordFile,
                                                      "tokenizer.json", "tokenizer_config.json"],
                                              required: [Checkpoint.configFile, TensorStore.singleFile, importRecordFile])
    public static let importRecordFile = "gguf-import.json"

    /// Writes the directory atomically (a temporary directory renamed onto `directory`):
    /// config.json, model.safetensors in `dtype` (dequantized; q/k in Hugging Face order; no
    /// lm_head when the embeddings are tied, as save_pretrained writes it), `extraFiles` (the
    /// tokenizer's) and gguf-import.json (source file, size, GGUF version, tensor types).
    public func writeHuggingFace(to directory: URL, dtype: DType, extraFiles: [(name: String, data: Data)]) throws {
        guard dtype.isFloat, let torchName = dtype.torchName else {
            throw ModelFormatError(file: directory.path, problem: "cannot write \(dtype.rawValue) weights", fix: "choose f32, bf16 or f16")
        }
        var cfg = config
        cfg["torch_dtype"] = .string(torchName)
        let tensors = try huggingFaceTensors(dtype: dtype)
        var record: [String: JSONValue] = [
            "source": .string(file.url.lastPathComponent), "source_bytes": .int(file.fileSize),
            "gguf_version": .int(Int(file.version)), "tensors": .int(file.tensors.count), "parameters": .int(parameterCount),
            "tensor_types": .object(typeCounts.mapValues { .int($0) }), "dtype": .string(dtype.rawValue),
            "qk_rows": .string("un-permuted from llama.cpp's RoPE layout to Hugging Face's"),
        ]
        if let n = file.metadata["general.name"]?.stringValue { record["general.name"] = .string(n) }
        let finalRecord = record, finalCfg = cfg
        try AtomicFile.writeDirectory(directory) { tmp in
            try Safetensors.write(tensors, to: tmp.appendingPathComponent(TensorStore.singleFile))
            try JSONText.write(.object(finalCfg), to: tmp.appendingPathComponent(Checkpoint.configFile))
            for f in extraFiles { try AtomicFile.write(f.data, to: tmp.appendingPathComponent(f.name)) }
            try JSONText.write(.object(finalRecord), to: tmp.appendingPathComponent(LlamaGGUF.importRecordFile))
        }
    }
}
