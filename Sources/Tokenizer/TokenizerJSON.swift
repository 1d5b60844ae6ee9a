// Reading a Hugging Face `tokenizer.json` (the `tokenizers` library's serialization): a BPE model
// with the normalizer, pre-tokenizer, post-processor and decoder that SmolLM2, Llama-3, GPT-2
// and LLaMa-2/TinyLlama ship (and transformers writes for them). Anything else is refused by
// name, with what is supported, rather than tokenized differently from Hugging Face.
import Common
import Foundation
import ModelFormat

extension Tokenizer {
    /// The shapes `load(tokenizerJSON:)` reads, for messages.
    static let supportedShapes = """
        byte-level BPE with pre_tokenizer ByteLevel (GPT-2), Sequence[Digits(individual_digits), ByteLevel] (SmolLM2) \
        or Sequence[Split(GPT-2 or Llama-3 regex), ByteLevel(use_regex false)] (Llama-3), decoder ByteLevel; \
        or SentencePiece-style BPE with normalizer Sequence[Prepend("▁"), Replace(" ", "▁")] (LLaMa-2, TinyLlama) \
        or pre_tokenizer Metaspace, decoder Sequence[Replace("▁", " "), ByteFallback, Fuse, Strip] or Metaspace
        """

    /// Loads a Hugging Face `tokenizer.json`. A `tokenizer_config.json` next to it, when present,
    /// supplies the eos/pad token names and `add_bos_token` (which transformers lets override the
    /// post-processor); without it, the bos token comes from the post-processor's template.
    public static func load(tokenizerJSON url: URL) throws -> Tokenizer {
        let file = url.path
        func fail(_ problem: String, _ fix: String) -> ModelFormatError { ModelFormatError(file: file, problem: problem, fix: fix) }
        let root = try readJSONFile(url, as: OrderedJSON.self, readFix: "check the path; a tokenizer.json comes with the model's Hugging Face files",
                                    syntaxFix: "re-download or re-save it with tokenizers' Tokenizer.save")
        guard root.objectPairs != nil, let model = root["model"], model.objectPairs != nil else {
            throw fail("has no \"model\" object", "give a tokenizers-library tokenizer.json (not a vocab.json or tokenizer_config.json)")
        }

        // model: a BPE with its flags.
        let type = model["type"]?.stringValue
        guard type == nil || type == "BPE" else {
            throw fail("model.type is \"\(type ?? "")\"; only BPE models are read", "use a BPE tokenizer: \(supportedShapes)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key], !v.isNull, v.stringValue != "" {
                throw fail("model.\(key) is set; the supported BPE models have none", "use a tokenizer.json of the form \(supportedShapes)")
            }
        }
        if let d = model["dropout"], !d.isNull, d.doubleValue != 0 {
            throw fail("model.dropout is \(d.doubleValue ?? .nan); dropout makes tokenization random", "set model.dropout to null for inference")
        }
        let byteFallback = model["byte_fallback"]?.boolValue ?? false
        let fuseUnk = model["fuse_unk"]?.boolValue ?? false
        let ignoreMerges = model["ignore_merges"]?.boolValue ?? false

        // model.vocab, then added_tokens past its end (Llama-3's specials): the token of every id.
        guard let vocab = model["vocab"]?.objectPairs else { throw fail("model.vocab is not an object", "give the BPE vocabulary as {\"token\": id}") }
        var byId: [Int: String] = [:]
        for (token, value) in vocab {
            guard let id = value.intValue, id >= 0 else { throw fail("model.vocab[\"\(token)\"] is not a non-negative integer id", "give every token an integer id") }
            if let other = byId[id] { throw fail("model.vocab gives id \(id) to both \"\(other)\" and \"\(token)\"", "give every token its own id") }
            byId[id] = token
        }
        var added: [AddedToken] = []
        var addedOnly = Set<Int>()
        for (k, entry) in (root["added_tokens"]?.arrayValue ?? []).enumerated() {
            guard let id = entry["id"]?.intValue, id >= 0, let content = entry["content"]?.stringValue else {
                throw fail("added_tokens[\(k)] has no integer id and string content", "give each added token its id and content")
            }
            if let existing = byId[id] {
                guard Array(existing.utf8) == Array(content.utf8) else {
                    throw fail("added_tokens[\(k)] \"\(content)\" has id \(id), which model.vocab gives to \"\(existing)\"", "give the added token an id of its own")
                }
            } else {
                byId[id] = content
                addedOnly.insert(id)
            }
            added.append(AddedToken(id: id, special: entry["special"]?.boolValue ?? false))
        }
        let count = (byId.keys.max() ?? -1) + 1
        guard count > 0 else { throw fail("model.vocab is empty", "give the tokenizer its vocabulary") }
        guard byId.count == count else {
            let hole = (0..<count).first { byId[$0] == nil } ?? 0
            throw fail("no token has id \(hole), below the largest id \(count - 1)", "ids must run 0…N-1 without gaps, as in the model's embedding table")
        }
        let tokens = (0..<count).map { byId[$0] ?? "" }
        var idOf: [[UInt8]: Int] = [:]
        for (id, t) in tokens.enumerated() where !addedOnly.contains(id) { idOf[Array(t.utf8)] = id }

        // model.merges: "a b" strings (older files) or ["a", "b"] pairs (tokenizers ≥ 0.20).
        var merges: [String] = []
        for (k, m) in (model["merges"]?.arrayValue ?? []).enumerated() {
            if let s = m.stringValue {
                merges.append(s)
            } else if let pair = m.arrayValue, pair.count == 2, let a = pair[0].stringValue, let b = pair[1].stringValue {
                guard !a.unicodeScalars.contains(" "), !b.unicodeScalars.contains(" ") else {
                    throw fail("model.merges[\(k)] [\"\(a)\", \"\(b)\"] has a token with a space, which the GGUF form \"a b\" cannot hold",
                               "use a vocabulary whose tokens spell spaces as Ġ or ▁")
                }
                merges.append("\(a) \(b)")
            } else {
                throw fail("model.merges[\(k)] is neither \"a b\" nor [\"a\", \"b\"]", "write merges as tokenizers does")
            }
        }

        // The text pipeline.
        var pipeline = try readPipeline(root, file: file)
        pipeline.byteFallback = byteFallback
        pipeline.fuseUnk = fuseUnk
        pipeline.ignoreMerges = ignoreMerges
        if pipeline.split == nil && byteFallback && (0..<256).contains(where: { idOf[Array(String(format: "<0x%02X>", $0).utf8)] == nil }) {
            throw fail("model.byte_fallback is true but some of the 256 byte tokens <0x00>…<0xFF> are missing from model.vocab",
                       "use the vocabulary the model was trained with (LLaMa-2 has all 256)")
        }

        // Special tokens: unk from the model, bos from the template; tokenizer_config.json may add more.
        var unkId: Int? = nil
        if let unk = model["unk_token"]?.stringValue {
            guard let id = idOf[Array(unk.utf8)] ?? tokens.firstIndex(where: { Array($0.utf8) == Array(unk.utf8) }) else {
                throw fail("model.unk_token \"\(unk)\" is not in model.vocab", "name a token of the vocabulary, or null")
            }
            unkId = id
        }
        var (addBos, bosId) = try readTemplate(root["post_processor"], tokens: tokens, file: file)
        var eosId: Int? = nil, padId: Int? = nil
        let configURL = url.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
        if FileManager.default.fileExists(atPath: configURL.path) {
            let config = try readJSONFile(configURL, syntaxFix: "re-save it with transformers' save_pretrained, or remove it")
            func id(of key: String) throws -> Int? {
                // A name ("</s>") or an AddedToken object ({"content": "</s>", …}); null: none.
                guard let v = config[key], !v.isNull else { return nil }
                guard let name = v.stringValue ?? v["content"]?.stringValue else {
                    throw ModelFormatError(file: configURL.path, problem: "\(key) is neither a token nor null", fix: "give the token's text")
                }
                guard let id = tokens.lastIndex(where: { Array($0.utf8) == Array(name.utf8) }) else {
                    throw ModelFormatError(file: configURL.path, problem: "\(key) \"\(name)\" is not in \(file)'s vocabulary", fix: "name a token of the vocabulary, or null")
                }
                return id
            }
            eosId = try id(of: "eos_token")
            padId = try id(of: "pad_token")
            let configBos = try id(of: "bos_token")
            if config["add_eos_token"]?.boolValue == true {
                throw ModelFormatError(file: configURL.path, problem: "add_eos_token is true; this tokenizer adds a bos token only",
                                     fix: "set add_eos_token false (SLMRec prompts end with their own suffix), or append the eos id yourself")
            }
            if let explicit = config["add_bos_token"]?.boolValue {
                // transformers rebuilds the post-processor from these two when add_bos_token is given.
                addBos = explicit && (configBos ?? bosId) != nil
                if explicit { bosId = configBos ?? bosId }
            }
            if bosId == nil { bosId = configBos }
        }

        // Token types, as a GGUF file would give them.
        var types = [Int32](repeating: TokenizerVocabulary.TokenType.normal.rawValue, count: count)
        if pipeline.split == nil {
            for b in 0..<256 { if let id = idOf[Array(String(format: "<0x%02X>", b).utf8)] { types[id] = TokenizerVocabulary.TokenType.byte.rawValue } }
        }
        for a in added {
            types[a.id] = a.special ? TokenizerVocabulary.TokenType.control.rawValue : TokenizerVocabulary.TokenType.userDefined.rawValue
        }
        if let unkId { types[unkId] = TokenizerVocabulary.TokenType.unknown.rawValue }

        let vocabulary = TokenizerVocabulary(
            model: pipeline.split == nil ? .llama : .gpt2, pre: pipeline.split?.rawValue, tokens: tokens, scores: nil,
            tokenTypes: types, merges: merges, bosId: bosId, eosId: eosId, unkId: unkId, padId: padId, addBos: addBos,
            addSpacePrefix: { if case .never = pipeline.spacePrefix { return false } else { return true } }())
        return try Tokenizer(vocabulary, pipeline: pipeline, added: added, addedOnly: addedOnly, source: file, fields: .tokenizerJSON)
    }

    /// normalizer + pre_tokenizer + decoder → a pipeline (model flags are set by the caller).
    private static func readPipeline(_ root: OrderedJSON, file: String) throws -> Pipeline {
        func fail(_ field: String, _ value: OrderedJSON?) -> ModelFormatError {
            ModelFormatError(file: file, problem: "\(field) \(describe(value)) is not a shape this tokenizer reads",
                           fix: "use a tokenizer.json of one of these shapes: \(supportedShapes)")
        }
        let marker = "\u{2581}"
        func isByteLevel(_ v: OrderedJSON, useRegex: Bool) -> Bool {
            v["type"]?.stringValue == "ByteLevel" && (v["add_prefix_space"]?.boolValue ?? true) == false
                && (v["use_regex"]?.boolValue ?? true) == useRegex
        }
        func isReplace(_ v: OrderedJSON, _ pattern: String, _ content: String) -> Bool {
            v["type"]?.stringValue == "Replace" && v["pattern"]?["String"]?.stringValue == pattern && v["content"]?.stringValue == content
        }

        // The pre-tokenizer: byte-level splits, or Metaspace, or none.
        var split: PreTokenizerSplit? = nil
        var metaspace: (scheme: String, split: Bool)? = nil
        let pre = root["pre_tokenizer"]
        if let pre, !pre.isNull {
            let steps = pre["type"]?.stringValue == "Sequence" ? (pre["pretokenizers"]?.arrayValue ?? []) : [pre]
            if steps.count == 1, isByteLevel(steps[0], useRegex: true) {
                split = .gpt2
            } else if steps.count == 2, steps[0]["type"]?.stringValue == "Digits", steps[0]["individual_digits"]?.boolValue == true,
                      isByteLevel(steps[1], useRegex: true) {
                split = .smollm
            } else if steps.count == 2, steps[0]["type"]?.stringValue == "Split", isByteLevel(steps[1], useRegex: false),
                      steps[0]["behavior"]?.stringValue == "Isolated", steps[0]["invert"]?.boolValue != true,
                      let regex = steps[0]["pattern"]?["Regex"]?.stringValue {
                switch regex {
                case PreTokenizerSplit.llama3Regex: split = .llama3
                case PreTokenizerSplit.gpt2Regex: split = .gpt2
                default: throw fail("pre_tokenizer Split regex", .string(regex))
                }
            } else if steps.count == 1, steps[0]["type"]?.stringValue == "Metaspace", steps[0]["replacement"]?.stringValue == marker {
                var scheme = steps[0]["prepend_scheme"]?.stringValue ?? "always"
                if steps[0]["add_prefix_space"]?.boolValue == false { scheme = "never" }   // the older field
                guard ["always", "first", "never"].contains(scheme) else { throw fail("pre_tokenizer Metaspace prepend_scheme", .string(scheme)) }
                metaspace = (scheme, steps[0]["split"]?.boolValue ?? true)
            } else {
                throw fail("pre_tokenizer", pre)
            }
        }

        // The normalizer: none, or LLaMa-2's Prepend("▁") + Replace(" ", "▁"), or the Replace alone.
        var prefix: Pipeline.SpacePrefix? = nil
        if let norm = root["normalizer"], !norm.isNull {
            let steps = norm["type"]?.stringValue == "Sequence" ? (norm["normalizers"]?.arrayValue ?? []) : [norm]
            if steps.count == 2, steps[0]["type"]?.stringValue == "Prepend", steps[0]["prepend"]?.stringValue == marker,
               isReplace(steps[1], " ", marker) {
                prefix = .always
            } else if steps.count == 1, isReplace(steps[0], " ", marker) {
                prefix = .never(metaspace: false)
            } else {
                throw fail("normalizer", norm)
            }
        }

        var pipeline = Pipeline(decoder: try readDecoder(root["decoder"], file: file))
        if let split {
            guard prefix == nil else { throw fail("normalizer (with a byte-level pre_tokenizer)", root["normalizer"]) }
            pipeline.split = split
        } else if let metaspace {
            guard prefix == nil else { throw fail("normalizer (with a Metaspace pre_tokenizer)", root["normalizer"]) }
            pipeline.spacePrefix = metaspace.scheme == "never" ? .never(metaspace: true) : .unlessPresent(scheme: metaspace.scheme)
            pipeline.splitAtSpaceMarker = metaspace.split
        } else if let prefix {
            pipeline.spacePrefix = prefix
        } else {
            throw fail("pre_tokenizer and normalizer", .null)
        }
        return pipeline
    }

    private static func readDecoder(_ decoder: OrderedJSON?, file: String) throws -> [DecodeStep] {
        func fail(_ v: OrderedJSON?) -> ModelFormatError {
            ModelFormatError(file: file, problem: "decoder \(describe(v)) is not a shape this tokenizer reads",
                           fix: "use a tokenizer.json of one of these shapes: \(supportedShapes)")
        }
        guard let decoder, !decoder.isNull else { throw fail(decoder) }
        let steps = decoder["type"]?.stringValue == "Sequence" ? (decoder["decoders"]?.arrayValue ?? []) : [decoder]
        return try steps.map { step -> DecodeStep in
            switch step["type"]?.stringValue {
            case "ByteLevel": return .byteLevel
            case "ByteFallback": return .byteFallback
            case "Fuse": return .fuse
            case "Replace":
                guard let p = step["pattern"]?["String"]?.stringValue, let c = step["content"]?.stringValue else { throw fail(step) }
                return .replace(pattern: p, content: c)
            case "Strip":
                guard let c = step["content"]?.stringValue, c.unicodeScalars.count == 1, let first = c.unicodeScalars.first,
                      let start = step["start"]?.intValue, let stop = step["stop"]?.intValue else { throw fail(step) }
                return .strip(content: first, start: start, stop: stop)
            case "Metaspace":
                guard let r = step["replacement"]?.stringValue, r.unicodeScalars.count == 1, let u = r.unicodeScalars.first else { throw fail(step) }
                var scheme = step["prepend_scheme"]?.stringValue ?? "always"
                if step["add_prefix_space"]?.boolValue == false { scheme = "never" }
                return .metaspace(replacement: u, dropInFirst: scheme != "never")
            default: throw fail(step)
            }
        }
    }

    /// post_processor → (add bos?, bos id). TemplateProcessing's single template may be `$A` or
    /// `<bos> $A`; a ByteLevel processor (offsets only) or none adds nothing.
    private static func readTemplate(_ post: OrderedJSON?, tokens: [String], file: String) throws -> (Bool, Int?) {
        guard let post, !post.isNull else { return (false, nil) }
        func fail() -> ModelFormatError {
            ModelFormatError(file: file, problem: "post_processor \(describe(post)) is not a shape this tokenizer reads",
                           fix: "use TemplateProcessing with single \"$A\" or \"<bos> $A\" (a ByteLevel processor may come first)")
        }
        let steps = post["type"]?.stringValue == "Sequence" ? (post["processors"]?.arrayValue ?? []) : [post]
        var result: (Bool, Int?) = (false, nil)
        for step in steps {
            switch step["type"]?.stringValue {
            case "ByteLevel": continue
            case "TemplateProcessing":
                guard let single = step["single"]?.arrayValue, let last = single.last, last["Sequence"]?["id"]?.stringValue == "A" else { throw fail() }
                if single.count == 1 { result = (false, nil); continue }
                guard single.count == 2, let name = single[0]["SpecialToken"]?["id"]?.stringValue else { throw fail() }
                let ids = step["special_tokens"]?[name]?["ids"]?.arrayValue?.compactMap(\.intValue) ?? []
                guard ids.count == 1, tokens.indices.contains(ids[0]) else { throw fail() }
                result = (true, ids[0])
            default: throw fail()
            }
        }
        return result
    }

    /// A short description of a JSON value for messages: its "type" and a prefix of its text.
    private static func describe(_ v: OrderedJSON?) -> String {
        guard let v else { return "(absent)" }
        if let t = v["type"]?.stringValue { return "of type \"\(t)\"" }
        if let s = v.stringValue { return "\"\(s.prefix(80))\"" }
        return v.isNull ? "null" : "(this value)"
    }
}
