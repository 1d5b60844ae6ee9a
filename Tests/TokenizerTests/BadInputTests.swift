import Foundation
import XCTest
import Common
@testable import Tokenizer

/// Files and vocabularies we refuse, each with an error that names the file, the field and the fix.
final class BadInputTests: XCTestCase {
    /// A small valid byte-level vocabulary: the 256 byte characters, "he", "hel"… and merges.
    func byteLevelVocabulary(pre: String? = "gpt-2", merges: [String] = ["h e", "he l"]) -> TokenizerVocabulary {
        TokenizerVocabulary(model: .gpt2, pre: pre, tokens: ByteLevelAlphabet.characters.map { String($0) } + ["he", "hel"], merges: merges)
    }

    func write(_ json: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokenizer-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent("tokenizer.json")
        try Data(json.utf8).write(to: url)
        return url
    }

    /// A tokenizer.json with `model` and the pipeline fields given (GPT-2 ByteLevel by default).
    func tokenizerJSON(model: String, pre: String = #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"#,
                       normalizer: String = "null", decoder: String = #"{"type": "ByteLevel"}"#) -> String {
        #"{"version": "1.0", "added_tokens": [], "normalizer": \#(normalizer), "pre_tokenizer": \#(pre), "post_processor": null, "decoder": \#(decoder), "model": \#(model)}"#
    }

    func testValidVocabularyWorks() throws {
        let tok = try Tokenizer(byteLevelVocabulary(), source: "small.gguf")
        XCTAssertEqual(tok.encode("hel"), [257])
        XCTAssertEqual(tok.encode("hel").map(tok.piece), ["hel"])
        XCTAssertEqual(tok.encode("help").map(tok.piece), ["hel", "p"])
        XCTAssertEqual(tok.encode(" hel").map(tok.piece), ["Ġ", "hel"])
    }

    func testUnknownPreIsRefusedWithTheSupportedNames() {
        assertTokenizerError({ _ = try Tokenizer(self.byteLevelVocabulary(pre: "qwen2"), source: "qwen.gguf") },
                             contains: ["qwen.gguf", "tokenizer.ggml.pre", "\"qwen2\"", "smollm", "llama-bpe", "gpt-2", "default"])
        assertTokenizerError({
            _ = try Tokenizer(TokenizerVocabulary(model: .llama, pre: "smollm", tokens: ["a"], scores: [0]), source: "spm.gguf")
        }, contains: ["spm.gguf", "tokenizer.ggml.pre", "SentencePiece"])
    }

    func testMergeWithUnknownTokensIsRefused() {
        assertTokenizerError({ _ = try Tokenizer(self.byteLevelVocabulary(merges: ["h e", "he zz"]), source: "m.gguf") },
                             contains: ["m.gguf", "tokenizer.ggml.merges[1]", "\"zz\"", "not in tokenizer.ggml.tokens"])
        assertTokenizerError({ _ = try Tokenizer(self.byteLevelVocabulary(merges: ["h e", "l l"]), source: "m.gguf") },
                             contains: ["tokenizer.ggml.merges[1]", "makes \"ll\"", "not in tokenizer.ggml.tokens"])
        assertTokenizerError({ _ = try Tokenizer(self.byteLevelVocabulary(merges: ["h e l"]), source: "m.gguf") },
                             contains: ["tokenizer.ggml.merges[0]", "not two tokens"])
    }

    func testInconsistentVocabulariesAreRefused() {
        assertTokenizerError({ _ = try Tokenizer(TokenizerVocabulary(model: .gpt2, tokens: []), source: "e.gguf") },
                             contains: ["e.gguf", "tokenizer.ggml.tokens is empty"])
        assertTokenizerError({ _ = try Tokenizer(TokenizerVocabulary(model: .llama, tokens: ["a", "b"], scores: [0], addBos: false), source: "s.gguf") },
                             contains: ["tokenizer.ggml.scores has 1 values for 2 tokens"])
        assertTokenizerError({ _ = try Tokenizer(TokenizerVocabulary(model: .llama, tokens: ["a", "b"], addBos: false), source: "s.gguf") },
                             contains: ["neither tokenizer.ggml.merges nor tokenizer.ggml.scores"])
        assertTokenizerError({ _ = try Tokenizer(TokenizerVocabulary(model: .gpt2, tokens: ["a"], bosId: 5), source: "b.gguf") },
                             contains: ["bos token id 5 is outside the vocabulary"])
        assertTokenizerError({ _ = try Tokenizer(TokenizerVocabulary(model: .gpt2, tokens: ["a"], addBos: true), source: "b.gguf") },
                             contains: ["add_bos_token is true but there is no bos token id"])
    }

    func testUnsupportedModelTypeIsRefused() throws {
        let url = try write(tokenizerJSON(model: #"{"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0]]}"#))
        assertTokenizerError({ _ = try Tokenizer.load(tokenizerJSON: url) },
                             contains: [url.path, "model.type is \"Unigram\"", "only BPE", "SmolLM2"])
        let wordPiece = try write(tokenizerJSON(model: #"{"type": "WordPiece", "vocab": {"a": 0}}"#))
        assertTokenizerError({ _ = try Tokenizer.load(tokenizerJSON: wordPiece) }, contains: ["model.type is \"WordPiece\""])
    }

    func testTokenizerJSONMergeWithUnknownTokensIsRefused() throws {
        let url = try write(tokenizerJSON(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b", ["ab", "q"]]}"#))
        assertTokenizerError({ _ = try Tokenizer.load(tokenizerJSON: url) },
                             contains: [url.path, "model.merges[1]", "\"q\"", "not in model.vocab"])
    }

    func testUnsupportedPipelinesAreRefused() throws {
        let bert = try write(tokenizerJSON(model: #"{"type": "BPE", "vocab": {"a": 0}, "merges": []}"#, pre: #"{"type": "BertPreTokenizer"}"#))
        assertTokenizerError({ _ = try Tokenizer.load(tokenizerJSON: bert) },
                             contains: [bert.path, "pre_tokenizer of type \"BertPreTokenizer\"", "Digits"])
        let regex = try write(tokenizerJSON(model: #"{"type": "BPE", "vocab": {"a": 0}, "merges": []}"#,
                                            pre: #"{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]}"#))
        assertTokenizerError({ _ = try Tokenizer.load(tokenizerJSON: regex) }, contains: ["pre_tokenizer Split regex \"\\w+\""])
        let nfkc = try write(tokenizerJSON(model: #"{"type": "BPE", "vocab": {"a": 0}, "merges": []}"#, pre: "null",
                                           normalizer: #"{"type": "NFKC"}"#))
        assertTokenizerError({ _ = try Tokenizer.load(tokenizerJSON: nfkc) }, contains: ["normalizer of type \"NFKC\""])
        let prefixSpace = try write(tokenizerJSON(model: #"{"type": "BPE", "vocab": {"a": 0}, "merges": []}"#,
                                                  pre: #"{"type": "ByteLevel", "add_prefix_space": true}"#))
        assertTokenizerError({ _ = try Tokenizer.load(tokenizerJSON: prefixSpace) }, contains: ["pre_tokenizer of type \"ByteLevel\""])
        let holes = try write(tokenizerJSON(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 2}, "merges": []}"#))
        assertTokenizerError({ _ = try Tokenizer.load(tokenizerJSON: holes) }, contains: ["no token has id 1"])
        let notJSON = try write("{\"model\": ")
        assertTokenizerError({ _ = try Tokenizer.load(tokenizerJSON: notJSON) }, contains: [notJSON.path, "not valid JSON"])
        assertTokenizerError({ _ = try Tokenizer.load(tokenizerJSON: URL(fileURLWithPath: "/nonexistent/tokenizer.json")) },
                             contains: ["/nonexistent/tokenizer.json", "cannot be read"])
    }

    /// A tokenizer_config.json next to the file names eos/pad and may turn the bos token off, as
    /// in transformers; add_eos_token true is refused rather than ignored.
    func testTokenizerConfigNextToTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokenizer-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("tokenizer.json")
        try FileManager.default.copyItem(at: fixturesDir.appendingPathComponent("spm-legacy/tokenizer.json"), to: url)
        let config = dir.appendingPathComponent("tokenizer_config.json")
        try Data(#"{"add_bos_token": false, "bos_token": {"content": "<s>"}, "eos_token": "</s>", "pad_token": null}"#.utf8).write(to: config)
        let tok = try Tokenizer.load(tokenizerJSON: url)
        XCTAssertFalse(tok.vocabulary.addBos)
        XCTAssertEqual(tok.vocabulary.bosId, 1)
        XCTAssertEqual(tok.vocabulary.eosId, 2)
        XCTAssertNil(tok.vocabulary.padId)
        XCTAssertEqual(tok.encode("Hello").first, tok.encode("Hello", addBos: false).first)

        try Data(#"{"add_eos_token": true}"#.utf8).write(to: config)
        assertTokenizerError({ _ = try Tokenizer.load(tokenizerJSON: url) }, contains: [config.path, "add_eos_token is true"])
        try Data(#"{"eos_token": "<nope>"}"#.utf8).write(to: config)
        assertTokenizerError({ _ = try Tokenizer.load(tokenizerJSON: url) }, contains: [config.path, "eos_token \"<nope>\" is not in"])
    }

}
