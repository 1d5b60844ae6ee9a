import XCTest
import Foundation
import Common
import Tokenizer
import TestKit
@testable import GGUF

/// Tokenizers read from GGUF metadata by our reader (`tokenizer.ggml.*`) give Hugging Face's ids
/// (Tests/TokenizerTests/Fixtures/NAME-expected.json) and llama.cpp's own (.inp/.out), for the
/// real SmolLM2 file and llama.cpp's vocabulary-only GGUFs (LLaMa-2 SentencePiece, Llama-3,
/// GPT-2), when `scripts/fetch-smollm2` / `scripts/fetch-test-vocabs` have fetched them.
final class GGUFTokenizerTests: XCTestCase {
    static let expectedDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("TokenizerTests/Fixtures")


    /// (text, ids without specials, ids with the tokenizer's specials) from NAME-expected.json.
    func expected(_ name: String) throws -> [(String, [Int], [Int])] {
        let v = try JSONValue.parse(try Data(contentsOf: Self.expectedDir.appendingPathComponent("\(name)-expected.json")))
        let strings = try XCTUnwrap(v["strings"]?.arrayValue).compactMap(\.stringValue)
        let cases = try XCTUnwrap(v["cases"]?.arrayValue)
        XCTAssertEqual(strings.count, cases.count)
        return zip(strings, cases).map { s, c in
            (s, c["ids"]?.arrayValue?.compactMap(\.intValue) ?? [], c["ids_with_special"]?.arrayValue?.compactMap(\.intValue) ?? [])
        }
    }

    func check(_ gguf: URL, _ name: String, llamaCpp: Bool) throws {
        guard FetchedFiles.present(gguf) != nil else { throw XCTSkip(FetchedFiles.missing(gguf)) }
        let tok = try GGUFFile.open(gguf).tokenizer()
        let cases = try expected(name)
        XCTAssertGreaterThan(cases.count, 50)
        for (text, ids, withSpecial) in cases {
            XCTAssertEqual(tok.encode(text, addBos: false), ids, "\(name): \(text.debugDescription)")
            XCTAssertEqual(tok.encode(text), withSpecial, "\(name) with BOS as the file says: \(text.debugDescription)")
        }
        guard llamaCpp else { return }
        // llama.cpp's reference: NAME.gguf.inp holds texts separated by "\n__ggml_vocab_test__\n",
        // NAME.gguf.out one line of space-separated ids per text.
        let inp = try String(contentsOf: URL(fileURLWithPath: gguf.path + ".inp"), encoding: .utf8)
        let out = try String(contentsOf: URL(fileURLWithPath: gguf.path + ".out"), encoding: .utf8)
        var texts = inp.components(separatedBy: "\n__ggml_vocab_test__\n")
        if texts.last?.isEmpty == true || texts.last == "\n" { texts.removeLast() }
        var lines = out.split(separator: "\n", omittingEmptySubsequences: false).map { $0.split(separator: " ").compactMap { Int($0) } }
        if out.hasSuffix("\n") { lines.removeLast() }
        XCTAssertGreaterThan(texts.count, 40)
        XCTAssertEqual(texts.count, lines.count, "\(name): one line of ids per reference text")
        for (t, ids) in zip(texts, lines) { XCTAssertEqual(tok.encode(t, addBos: false), ids, "\(name) llama.cpp: \(t.debugDescription)") }
    }

    func testSmolLM2FromItsGGUF() throws {
        let tok = FetchedFiles.smollm2
        try check(tok, "smollm2", llamaCpp: false)
        // The prompt SLMRec puts before the items: 15 tokens, no BOS (add_bos_token is false).
        let t = try GGUFFile.open(tok).tokenizer()
        XCTAssertEqual(t.encode("Given the user's purchase history, predict next possible item to be purchased."),
                       [15423, 260, 2914, 506, 7131, 1463, 28, 3142, 1867, 1636, 5033, 288, 325, 10610, 30])
        XCTAssertEqual(t.encode("\n### Response:\n"), [198, 3757, 14212, 42, 198])
    }

    func testLlamaCppVocabularies() throws {
        var ran = 0
        for name in ["llama-spm", "llama-bpe", "gpt-2"] {
            let g = FetchedFiles.vocabulary(name)
            do { try check(g, name, llamaCpp: true); ran += 1 } catch is XCTSkip { continue }
        }
        if ran == 0 { throw XCTSkip("no llama.cpp vocabulary is cached: run scripts/fetch-test-vocabs") }
    }
}
