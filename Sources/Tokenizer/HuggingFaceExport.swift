// Writing the tokenizer as Hugging Face files (`tokenizer.json` + `tokenizer_config.json`) that
// `tokenizers` and transformers load and that give the same ids as `encode`.
//
// The shape follows transformers' GGUF converter (integrations/gguf/gguf_tokenizer_mapping.py:
// GPT2Tokenizer for byte-level vocabularies, LlamaTokenizer for SentencePiece ones, control
// tokens as special added tokens, merges recovered from the scores with `generate_merges`),
// except where that converter gives other ids than the model's own tokenizer and llama.cpp:
//   - pre "smollm": SmolLM2's Sequence[Digits(individual_digits), ByteLevel], not a plain
//     ByteLevel (the converter's version differs on "a  1" and "½ and ²");
//   - Llama-3: `ignore_merges`, as Meta's tokenizer.json and llama.cpp have it;
//   - SentencePiece from GGUF: LLaMa-2's normalizer Prepend("▁") + Replace(" ", "▁"), not
//     Metaspace(prepend_scheme first), which drops the "▁" before text that starts with a space
//     (" Hello": [29871, 15043] in LLaMa-2 and llama.cpp, [15043] from the converter);
//   - tokens are written as the vocabulary spells them (the converter re-spells byte-level
//     tokens that hold characters outside GPT-2's alphabet, which BPE can then produce).
// A tokenizer read from a tokenizer.json is written back in the shape it was read in.
import Common
import Foundation

extension Tokenizer {
    /// `tokenizer.json` and `tokenizer_config.json`, to write next to a converted model.
    public func huggingFaceFiles() throws -> [(name: String, data: Data)] {
        let v = vocabulary
        let marker = "\u{2581}"
        func replace(_ pattern: String, _ content: String) -> JSONValue {
            .object(["type": .string("Replace"), "pattern": .object(["String": .string(pattern)]), "content": .string(content)])
        }
        func byteLevel(useRegex: Bool) -> JSONValue {
            .object(["type": .string("ByteLevel"), "add_prefix_space": .bool(false), "trim_offsets": .bool(true), "use_regex": .bool(useRegex)])
        }

        // normalizer and pre_tokenizer
        var normalizer = JSONValue.null, preTokenizer = JSONValue.null
        if let split = pipeline.split {
            switch split {
            case .gpt2:
                preTokenizer = byteLevel(useRegex: true)
            case .smollm:
                preTokenizer = .object(["type": .string("Sequence"), "pretokenizers": .array([
                    .object(["type": .string("Digits"), "individual_digits": .bool(true)]), byteLevel(useRegex: true)])])
            case .llama3:
                preTokenizer = .object(["type": .string("Sequence"), "pretokenizers": .array([
                    .object(["type": .string("Split"), "pattern": .object(["Regex": .string(PreTokenizerSplit.llama3Regex)]),
                             "behavior": .string("Isolated"), "invert": .bool(false)]),
                    byteLevel(useRegex: false)])])
            }
        } else {
            func metaspace(_ scheme: String) -> JSONValue {
                .object(["type": .string("Metaspace"), "replacement": .string(marker), "prepend_scheme": .string(scheme),
                         "split": .bool(pipeline.splitAtSpaceMarker)])
            }
            switch pipeline.spacePrefix {
            case .always:
                normalizer = .object(["type": .string("Sequence"), "normalizers": .array([
                    .object(["type": .string("Prepend"), "prepend": .string(marker)]), replace(" ", marker)])])
            case .never(metaspace: false):
                normalizer = replace(" ", marker)
            case .never(metaspace: true):
                preTokenizer = metaspace("never")
            case .unlessPresent(let scheme):
                preTokenizer = metaspace(scheme)
            }
        }

        // decoder
        let decoder = JSONValue.object(["type": .string("Sequence"), "decoders": .array(pipeline.decoder.map { step -> JSONValue in
            switch step {
            case .byteLevel:
                return .object(["type": .string("ByteLevel"), "add_prefix_space": .bool(true), "trim_offsets": .bool(true), "use_regex": .bool(true)])
            case .replace(let p, let c): return replace(p, c)
            case .byteFallback: return .object(["type": .string("ByteFallback")])
            case .fuse: return .object(["type": .string("Fuse")])
            case .strip(let c, let start, let stop):
                return .object(["type": .string("Strip"), "content": .string(String(c)), "start": .int(start), "stop": .int(stop)])
            case .metaspace(let r, let drop):
                return .object(["type": .string("Metaspace"), "replacement": .string(String(r)),
                                "prepend_scheme": .string(drop ? "always" : "never"), "split": .bool(true)])
            }
        })])

        // post_processor: transformers' update_post_processor template.
        var single: [JSONValue] = [], pair: [JSONValue] = []
        var specials: [String: JSONValue] = [:]
        if v.addBos, let bos = v.bosId {
            let name = v.tokens[bos]
            single = [.object(["SpecialToken": .object(["id": .string(name), "type_id": .int(0)])])]
            pair = single
            specials[name] = .object(["id": .string(name), "ids": .array([.int(bos)]), "tokens": .array([.string(name)])])
        }
        single.append(.object(["Sequence": .object(["id": .string("A"), "type_id": .int(0)])]))
        pair.append(.object(["Sequence": .object(["id": .string("A"), "type_id": .int(0)])]))
        if v.addBos, let bos = v.bosId {
            pair.append(.object(["SpecialToken": .object(["id": .string(v.tokens[bos]), "type_id": .int(1)])]))
        }
        pair.append(.object(["Sequence": .object(["id": .string("B"), "type_id": .int(1)])]))
        let postProcessor = JSONValue.object(["type": .string("TemplateProcessing"), "single": .array(single),
                                              "pair": .array(pair), "special_tokens": .object(specials)])

        let added = JSONValue.array(addedTokens.map { a in
            .object(["id": .int(a.id), "content": .string(v.tokens[a.id]), "single_word": .bool(false), "lstrip": .bool(false),
                     "rstrip": .bool(false), "normalized": .bool(false), "special": .bool(a.special)])
        })

        // model: the vocabulary in id order (the model's own tokens), the merges as pairs.
        let mergePairs: [(String, String)]
        if pipeline.mergeByScore {
            mergePairs = mergesFromScores(tokens: v.tokens, scores: v.scores ?? [])
        } else {
            mergePairs = v.merges.map { m in
                let parts = m.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
            }
        }
        let unk: JSONValue = pipeline.split == nil ? (v.unkId.map { .string(v.tokens[$0]) } ?? .null) : .null
        var s = "{\n"
        s += "  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n"
        s += "  \"added_tokens\": \(JSONText.compact(added)),\n"
        s += "  \"normalizer\": \(JSONText.compact(normalizer)),\n"
        s += "  \"pre_tokenizer\": \(JSONText.compact(preTokenizer)),\n"
        s += "  \"post_processor\": \(JSONText.compact(postProcessor)),\n"
        s += "  \"decoder\": \(JSONText.compact(decoder)),\n"
        s += "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": \(JSONText.compact(unk)),\n"
        s += "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
        s += "    \"fuse_unk\": \(pipeline.fuseUnk),\n    \"byte_fallback\": \(pipeline.byteFallback),\n"
        s += "    \"ignore_merges\": \(pipeline.ignoreMerges),\n    \"vocab\": {"
        // Written by hand, not as a JSONValue object: its String keys would merge tokens that are
        // canonically equivalent (see OrderedJSON).
        var first = true
        for (id, token) in v.tokens.enumerated() where !addedOnly.contains(id) {
            s += (first ? "\n      " : ",\n      ") + JSONText.quote(token) + ": " + String(id)
            first = false
        }
        s += "\n    },\n    \"merges\": ["
        for (k, m) in mergePairs.enumerated() {
            s += (k == 0 ? "\n      [" : ",\n      [") + JSONText.quote(m.0) + ", " + JSONText.quote(m.1) + "]"
        }
        s += mergePairs.isEmpty ? "]\n  }\n}\n" : "\n    ]\n  }\n}\n"

        var config: [String: JSONValue] = [
            "tokenizer_class": .string("PreTrainedTokenizerFast"),
            "add_bos_token": .bool(v.addBos),
            "add_eos_token": .bool(false),
            "clean_up_tokenization_spaces": .bool(false),
        ]
        for (key, id) in [("bos_token", v.bosId), ("eos_token", v.eosId), ("unk_token", v.unkId), ("pad_token", v.padId)] {
            config[key] = id.map { .string(v.tokens[$0]) } ?? .null
        }
        return [("tokenizer.json", Data(s.utf8)), ("tokenizer_config.json", JSONText.pretty(.object(config)))]
    }
}
