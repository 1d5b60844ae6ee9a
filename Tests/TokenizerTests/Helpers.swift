import Foundation
import XCTest
import Common
@testable import Tokenizer

/// Tests/TokenizerTests/Fixtures: the small trained tokenizers and the expected ids
/// (scripts/make-tokenizer-fixtures.py writes them).
let fixturesDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

/// The cache scripts/fetch-test-vocabs fills: ${SLMREC_CACHE:-${XDG_CACHE_HOME:-~/.cache}/slmrec}.
func cacheDir() -> URL {
    let env = ProcessInfo.processInfo.environment
    if let c = env["SLMREC_CACHE"], !c.isEmpty { return URL(fileURLWithPath: c) }
    let base = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
        ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
    return base.appendingPathComponent("slmrec")
}

/// One row of expected ids, as Hugging Face `tokenizers` gave them.
struct Expected {
    let text: String
    let ids: [Int]
    let idsWithSpecial: [Int]
    let decoded: String
}

func readJSON(_ url: URL) throws -> JSONValue { try JSONValue.parse(Data(contentsOf: url)) }

func rows(strings: JSONValue?, cases: JSONValue?, file: String) throws -> [Expected] {
    let texts = try XCTUnwrap(strings?.arrayValue?.compactMap(\.stringValue), "\(file): no strings")
    let table = try XCTUnwrap(cases?.arrayValue, "\(file): no cases")
    XCTAssertEqual(texts.count, table.count, "\(file): one case per string")
    return zip(texts, table).map { text, row in
        Expected(text: text,
                 ids: row["ids"]?.arrayValue?.compactMap(\.intValue) ?? [],
                 idsWithSpecial: row["ids_with_special"]?.arrayValue?.compactMap(\.intValue) ?? [],
                 decoded: row["decoded"]?.stringValue ?? "")
    }
}

/// The expectations for the trained fixture `name`.
func fixtureExpectations(_ name: String) throws -> [Expected] {
    let url = fixturesDir.appendingPathComponent("expected.json")
    let j = try readJSON(url)
    return try rows(strings: j["strings"], cases: j["tokenizers"]?[name], file: url.path)
}

/// Strings compared scalar by scalar: Swift's `==` would call "é" and "e\u{301}" equal.
func scalars(_ s: String) -> [UInt32] { s.unicodeScalars.map(\.value) }

/// Checks `tok` against Hugging Face's ids (without and with specials) and its decode for every row.
func assertMatches(_ tok: Tokenizer, _ expected: [Expected], _ label: String, decode: Bool = true,
                   file: StaticString = #filePath, line: UInt = #line) {
    var failures = 0
    for row in expected {
        let ids = tok.encode(row.text, addBos: false)
        if ids != row.ids {
            failures += 1
            XCTFail("\(label): \(row.text.debugDescription): ids \(ids), Hugging Face \(row.ids)", file: file, line: line)
        }
        let withSpecial = tok.encode(row.text)
        if withSpecial != row.idsWithSpecial {
            failures += 1
            XCTFail("\(label): \(row.text.debugDescription) with specials: \(withSpecial), Hugging Face \(row.idsWithSpecial)", file: file, line: line)
        }
        if decode {
            let text = tok.decode(row.ids)
            if scalars(text) != scalars(row.decoded) {
                failures += 1
                XCTFail("\(label): decode of \(row.text.debugDescription): \(text.debugDescription), Hugging Face \(row.decoded.debugDescription)",
                        file: file, line: line)
            }
        }
        if failures > 20 { XCTFail("\(label): stopping after 20 differences", file: file, line: line); return }
    }
}

/// Writes `tok.huggingFaceFiles()` into a new temporary folder (and, when SLMREC_TOKENIZER_EXPORT
/// names a folder, into DIR/name too, for scripts/make-tokenizer-fixtures.py check-export), then
/// loads the tokenizer.json back with our own reader.
func exportAndReload(_ tok: Tokenizer, name: String) throws -> Tokenizer {
    let files = try tok.huggingFaceFiles()
    XCTAssertEqual(files.map(\.name), ["tokenizer.json", "tokenizer_config.json"])
    var dirs = [FileManager.default.temporaryDirectory.appendingPathComponent("tokenizer-test-\(UUID().uuidString)")]
    if let export = ProcessInfo.processInfo.environment["SLMREC_TOKENIZER_EXPORT"], !export.isEmpty {
        dirs.append(URL(fileURLWithPath: export).appendingPathComponent(name))
    }
    for dir in dirs {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for f in files { try f.data.write(to: dir.appendingPathComponent(f.name)) }
    }
    defer { try? FileManager.default.removeItem(at: dirs[0]) }
    return try Tokenizer.load(tokenizerJSON: dirs[0].appendingPathComponent("tokenizer.json"))
}

/// A TokenizerVocabulary from the `tokenizer.ggml.*` keys that fetch-test-vocabs dumps as JSON,
/// with llama.cpp's defaults for absent keys (as a GGUF reader would fill it).
func vocabulary(ggufJSON url: URL) throws -> TokenizerVocabulary {
    let j = try readJSON(url)
    func key(_ k: String) -> JSONValue? { j["tokenizer.ggml.\(k)"] }
    let model = try XCTUnwrap(key("model")?.stringValue.flatMap(TokenizerVocabulary.Model.init(rawValue:)), "\(url.path): tokenizer.ggml.model")
    let pre = key("pre")?.stringValue
    return TokenizerVocabulary(
        model: model, pre: pre,
        tokens: key("tokens")?.arrayValue?.compactMap(\.stringValue) ?? [],
        scores: key("scores")?.arrayValue?.compactMap(\.doubleValue).map(Float.init),
        tokenTypes: key("token_type")?.arrayValue?.compactMap(\.intValue).map(Int32.init),
        merges: key("merges")?.arrayValue?.compactMap(\.stringValue) ?? [],
        bosId: key("bos_token_id")?.intValue, eosId: key("eos_token_id")?.intValue,
        unkId: key("unknown_token_id")?.intValue, padId: key("padding_token_id")?.intValue,
        addBos: key("add_bos_token")?.boolValue,
        addSpacePrefix: key("add_space_prefix")?.boolValue ?? true)
}

/// llama.cpp's reference strings and ids next to a vocab GGUF (models/ggml-vocab-*.gguf.inp/.out).
func llamaCppCases(gguf: URL) throws -> [(text: String, ids: [Int])] {
    let inp = try String(contentsOf: URL(fileURLWithPath: gguf.path + ".inp"), encoding: .utf8)
    let out = try String(contentsOf: URL(fileURLWithPath: gguf.path + ".out"), encoding: .utf8)
    // Each string ends with "\n__ggml_vocab_test__\n" (llama.cpp tests/test-tokenizer-0.cpp). Split
    // on scalars, not Characters: "\r\n" is one Character.
    let separator = Array("\n__ggml_vocab_test__\n".unicodeScalars)
    var texts: [String] = []
    var current = String.UnicodeScalarView()
    let u = Array(inp.unicodeScalars)
    var i = 0
    while i < u.count {
        if i + separator.count <= u.count, Array(u[i..<(i + separator.count)]) == separator {
            texts.append(String(current))
            current = String.UnicodeScalarView()
            i += separator.count
        } else {
            current.append(u[i])
            i += 1
        }
    }
    if !current.isEmpty { texts.append(String(current)) }
    let lines = out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    return texts.enumerated().map { k, t in (t, k < lines.count ? lines[k].split(separator: " ").compactMap { Int($0) } : [-1]) }
}

/// Asserts that `body` throws a TokenizerError whose text contains every needle.
func assertTokenizerError(_ body: () throws -> Void, contains needles: [String], file: StaticString = #filePath, line: UInt = #line) {
    do {
        try body()
        XCTFail("no error; expected one containing \(needles)", file: file, line: line)
    } catch let e as TokenizerError {
        for n in needles where !e.description.contains(n) {
            XCTFail("error \"\(e.description)\" does not contain \"\(n)\"", file: file, line: line)
        }
        XCTAssertFalse(e.fix.isEmpty, "the error names no fix", file: file, line: line)
    } catch {
        XCTFail("expected a TokenizerError, got \(error)", file: file, line: line)
    }
}

/// About `bytes` bytes of varied text in which few words repeat (so the word cache does not hide
/// the merge loop's cost): words of Latin letters with some accents, numbers, short CJK runs,
/// emoji, punctuation and line breaks, from a fixed linear congruential sequence.
func variedParagraph(bytes: Int) -> String {
    var state: UInt64 = 0x2545_F491_4F6C_DD1D
    func next(_ n: Int) -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int((state >> 33) % UInt64(n))
    }
    let letters = Array("abcdefghijklmnopqrstuvwxyzeeeaaiioonnrrsstt".unicodeScalars) + Array("éüñçøå".unicodeScalars)
    let separators = [" ", " ", " ", " ", ", ", ". ", "\n", "  ", "! ", "'s "]
    var out = ""
    while out.utf8.count < bytes {
        var word = String.UnicodeScalarView()
        switch next(24) {
        case 0: word.append(contentsOf: String(next(100_000)).unicodeScalars)
        case 1: for _ in 0..<(2 + next(3)) { word.append(Unicode.Scalar(0x4E00 + UInt32(next(3000))) ?? "?") }
        case 2: word.append(Unicode.Scalar(0x1F600 + UInt32(next(60))) ?? "?")
        default:
            let capital = next(6) == 0
            for k in 0..<(2 + next(9)) {
                let u = letters[next(letters.count)]
                word.append(capital && k == 0 ? Unicode.Scalar(u.value &- 32) ?? u : u)
            }
        }
        out += String(word) + separators[next(separators.count)]
    }
    return out
}
