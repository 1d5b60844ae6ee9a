#!/usr/bin/env python3
"""Optional tooling: the Hugging Face references for the Swift Tokenizer tests.

Nothing in the build or the tests runs this; its outputs are committed (the small fixtures)
or cached (the real vocabularies). Run it with the bench venv's Python, which has
transformers 5.23 and tokenizers 0.23.3 (scripts/bench-pytorch.py makes it), plus `gguf`:

    PY=~/.cache/slmrec/bench-venv/bin/python; $PY -m pip install gguf

Three commands:

  $PY scripts/make-tokenizer-fixtures.py fixtures
      Trains five SMALL tokenizers with the `tokenizers` library on a few KB of varied text
      (below) and saves their tokenizer.json under Tests/TokenizerTests/Fixtures/NAME/:
        bytelevel-smollm   SmolLM2's shape: Sequence[Digits(individual), ByteLevel(regex)]
        bytelevel-llama3   Llama-3's shape: Split(Llama-3 regex) + ByteLevel(no regex),
                           ignore_merges, BOS added by TemplateProcessing, specials past the model vocab
        bytelevel-gpt2     GPT-2's shape: ByteLevel(regex)
        spm-legacy         LLaMa-2/TinyLlama's shape: BPE with byte_fallback and the 256 <0xNN>
                           tokens, normalizer Prepend("▁") + Replace(" ", "▁"), BOS
        spm-metaspace      the same vocabulary in transformers' newer shape: Metaspace
                           pre-tokenizer (prepend_scheme first, split false), no normalizer
      and writes Fixtures/expected.json: the test strings (STRINGS below) and, for each
      tokenizer and string, the ids HF gives without and with special tokens and HF's decode
      of the former. When the real vocabularies are cached (scripts/fetch-test-vocabs), it
      also writes Fixtures/NAME-expected.json for each (smollm2, llama-spm, llama-bpe, gpt-2)
      from the reference tokenizer.json in the cache.

  $PY scripts/make-tokenizer-fixtures.py convert-cache FILE.gguf OUTDIR
      (run by scripts/fetch-test-vocabs) Builds HF's tokenizer from a GGUF file with
      transformers' converter (AutoTokenizer.from_pretrained(dir, gguf_file=name)), corrects
      it where the converter departs from the model's published tokenizer and from llama.cpp,
      and writes OUTDIR/tokenizer.json + tokenizer_config.json (the reference) and
      OUTDIR/gguf-tokenizer.json (the file's tokenizer.ggml.* keys, as JSON). The corrections:
        - pre `smollm` (SmolLM2): transformers gives a plain GPT-2 ByteLevel; SmolLM2's own
          tokenizer.json and llama.cpp (LLAMA_VOCAB_PRE_TYPE_SMOLLM: "\\p{N}" then the GPT-2
          regex) split every digit first. They differ on "a  1" and "½ and ²".
        - pre `llama-bpe`: Meta's tokenizer.json and llama.cpp use ignore_merges; transformers'
          converter leaves it off. llama.cpp adds BOS for this pre type.
        - model `llama` (LLaMa-2 SPM): transformers writes Metaspace(prepend_scheme first),
          which does not prefix "▁" to text that starts with a space; LLaMa-2's tokenizer.json
          and llama.cpp always do (" Hello" is [29871, 15043], not [15043]). We write LLaMa-2's
          Prepend + Replace normalizer.
      When FILE.gguf.inp/.out (llama.cpp's reference tokenizations, made with each model's own
      HF tokenizer) sit next to the GGUF, the reference is checked against them and the command
      fails on any difference.

  $PY scripts/make-tokenizer-fixtures.py check-export DIR
      Checks the files our Swift `Tokenizer.huggingFaceFiles()` writes: run
          SLMREC_TOKENIZER_EXPORT=DIR swift test --filter TokenizerTests
      (the tests then write DIR/NAME/{tokenizer.json,tokenizer_config.json} for each fixture and
      each cached real vocabulary, NAME-gguf for the ones built from GGUF metadata), then this
      command loads each with `tokenizers` and with transformers' AutoTokenizer and compares
      the ids for every test string with the committed expected ids. Exit 1 on any difference.
"""
import json, os, sys, unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FIXTURES = os.path.join(REPO, "Tests", "TokenizerTests", "Fixtures")
CACHE = os.environ.get("SLMREC_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "slmrec")
# The cached real vocabularies: fixture name -> folder holding tokenizer.json (see fetch-test-vocabs).
REAL = {
    "smollm2": os.path.join(CACHE, "smollm2", "hf-tokenizer"),
    "llama-spm": os.path.join(CACHE, "vocabs", "llama-spm"),
    "llama-bpe": os.path.join(CACHE, "vocabs", "llama-bpe"),
    "gpt-2": os.path.join(CACHE, "vocabs", "gpt-2"),
}

# The test strings: whitespace of every kind, digits, punctuation and contractions, many
# scripts, emoji sequences, strings that are canonically equivalent but not equal (a Swift
# String compares those equal, a tokenizer must not), and SLMRec's prompt pieces.
STRINGS = [
    "",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\n\n\n",
    "\t\n",
    "Hello world",
    " Hello world",
    "Hello  world",
    "Hello   world  ",
    "   leading spaces",
    "trailing spaces   ",
    "  both ends  ",
    "tab\tseparated\tvalues\t",
    "line one\nline two\n\nline four\n",
    "windows\r\nline\r\n\r\nends",
    "  \n  mixed \t\n whitespace \n ",
    " \t a",
    "1234567890",
    "12345678901234567890",
    "3.14159 and 2,718",
    "Price: $1,234.56 (about 1234 EUR)",
    "a  1",
    "x 12 y 123 z 1234 w 12345",
    "year 2024, the 42nd item, 007",
    "Hello, world! How's it going?",
    "!!!???... ---",
    "(parentheses) [brackets] {braces} <angles>",
    "email@example.com, https://example.org/path?q=1&r=2",
    "snake_case, kebab-case, CamelCase, x+y=z",
    "don't",
    "I'M",
    "we'll they've she'd you're it's I'd",
    "O'Neil's 'quoted' words' end",
    "'S 'T 'RE 'Ve 'LL 'D 'ſ",
    "Café naïve résumé façade Ångström",
    "Cafe\u0301 and Caf\u00e9",
    "\u212b and \u00c5",
    "Ελληνικά γράμματα: \u03af \u1f77",
    "Привет, как дела?",
    "日本語のテキストです。",
    "中文字符测试，标点符号！",
    "한국어 텍스트",
    "مرحبا بالعالم",
    "emoji 😀 👍🏽 👨‍👩‍👧‍👦 🇺🇸🇫🇷 🏳️‍🌈",
    "½ and ² and ٣ and 〇",
    "a\u00a0b\u3000c\u2003d",
    "zero\u200bwidth\ufeffmarks",
    "bell\u0007 and \u0000 nul",
    "Given the user's purchase history, predict next possible item to be purchased.",
    "\n### Response:\n",
    "Below is an instruction.\n\n### Instruction:\nGiven the user's purchase history, predict next possible item to be purchased.\n\n### Response:\n",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "的" * 60,
    "The quick brown fox jumps over the lazy dog. " * 8,
]

# The training text for the small tokenizers: a few KB in which English dominates (so merges
# form) with some of every other kind of string above (so some characters are rare and fall
# back to bytes in the SentencePiece-style fixtures).
CORPUS = [
    "Given the user's purchase history, predict next possible item to be purchased.",
    "### Instruction:\nGiven the user's purchase history, predict next possible item to be purchased.\n### Response:\n",
    "The user bought a wireless mouse, a mechanical keyboard and a 27 inch monitor.",
    "She'll return the shoes; they're too small. We've ordered a larger size, I'm sure it'll fit.",
    "Item 1024 costs $19.99, item 2048 costs $5.49 and item 4096 is out of stock.",
    "In 2023 the store sold 1,234,567 items; in 2024 it sold 2,345,678.",
    "Hello world! Hello, world. hello world? HELLO WORLD.",
    "    indented code line\n\tdef predict(history):\n\t\treturn model(history)\n",
    "Customers who bought this item also bought: headphones, chargers, cables, cases.",
    "Café, naïve, résumé, façade, Ångström, München, São Paulo, Zürich, Kraków.",
    "Ελληνικά: καλημέρα κόσμε. Русский: привет, мир. Български: здравей.",
    "日本語: こんにちは世界。中文: 你好，世界。한국어: 안녕하세요.",
    "العربية: مرحبا بالعالم. עברית: שלום עולם.",
    "Emoji: 😀 😃 😄 👍 👍🏽 ❤️ 🇺🇸 🇯🇵",
    "email me at user@example.com or visit https://example.com/shop?item=42",
    "snake_case_name, kebab-case-name, CamelCaseName, SCREAMING_CASE",
    "don't, can't, won't, isn't, aren't, I'd, you'd, he's, she's, it's, we're, they've",
    "The quick brown fox jumps over the lazy dog. The five boxing wizards jump quickly.",
    "Recommendation systems rank items by the predicted probability of the next purchase.",
    "Sequential recommenders model the order of interactions in a user's history.",
]
SPECIALS_SMOLLM = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def corpus():
    # Repeated so that pairs occur often enough to be merged; varied by a counter so numbers differ.
    lines = []
    for k in range(12):
        for i, line in enumerate(CORPUS):
            lines.append(line if k % 3 else f"{line} ({k * 37 + i})")
    return lines


def save_json(path, value):
    """JSON with one line per list item at the second level (one line per string or case), so the
    committed expectations stay small and diff line by line."""
    def dump(v):
        return json.dumps(v, ensure_ascii=False, sort_keys=True)

    def block(v, pad):
        if isinstance(v, dict):
            items = [f'{pad}  {dump(k)}: {block(x, pad + "  ")}' for k, x in sorted(v.items())]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(v, list) and v:
            return "[\n" + ",\n".join(f"{pad}  {dump(x)}" for x in v) + "\n" + pad + "]"
        return dump(v)

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(block(value, "") + "\n")


def save_tokenizer(tok, name):
    path = os.path.join(FIXTURES, name, "tokenizer.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tok.save(path, pretty=True)
    size = os.path.getsize(path)
    assert size < 100_000, f"{path} is {size} bytes; keep fixtures well under 100 KB"
    print(f"wrote {path} ({size} bytes, vocab {tok.get_vocab_size()})")


# ---------------------------------------------------------------- training the fixtures

def train_byte_level(pre_tokenizer, vocab_size, specials, **bpe):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE(**bpe))
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    return tok


def spm_model_parts():
    """A LLaMa-2 style vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then BPE pieces learned
    on "▁"-escaped words; and its merges."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    t = Tokenizer(models.BPE(unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    # Trained on the Latin, Greek and Cyrillic letters of the corpus only, so CJK, Arabic, emoji…
    # take the byte fallback. (Not `limit_alphabet`: its choice among equally frequent
    # characters changes from run to run.)
    latin = ["".join(c for c in line if ord(c) < 0x500) for line in corpus()]
    t.train_from_iterator(latin, trainers.BpeTrainer(vocab_size=420, show_progress=False, special_tokens=["<unk>"]))
    model = json.loads(t.to_str())["model"]
    vocab = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    learned = sorted((i, s) for s, i in model["vocab"].items() if s != "<unk>")
    vocab += [s for _, s in learned]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return {s: i for i, s in enumerate(vocab)}, merges


def spm_tokenizer(vocab, merges, shape):
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    if shape == "legacy":    # LLaMa-2 / TinyLlama tokenizer.json
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
        tok.pre_tokenizer = None
    else:                    # transformers' LlamaTokenizer (legacy=False)
        tok.normalizer = None
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(content=" ", left=1, right=0)])
    tok.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in ["<unk>", "<s>", "</s>"]])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return tok


def train_fixtures():
    from tokenizers import AddedToken, Regex, pre_tokenizers, processors
    out = {}
    smollm = train_byte_level(pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]),
                              600, SPECIALS_SMOLLM)
    out["bytelevel-smollm"] = smollm

    llama3 = train_byte_level(pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
                                                        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
                              600, [], ignore_merges=True)
    # Like Llama-3: the specials come after the model's vocabulary, as added tokens only.
    llama3.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in ["<|begin_of_text|>", "<|end_of_text|>"]])
    bos = llama3.token_to_id("<|begin_of_text|>")
    llama3.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    out["bytelevel-llama3"] = llama3

    gpt2 = train_byte_level(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), 500, [])
    gpt2.add_special_tokens([AddedToken("<|endoftext|>", normalized=False, special=True)])
    out["bytelevel-gpt2"] = gpt2

    vocab, merges = spm_model_parts()
    out["spm-legacy"] = spm_tokenizer(vocab, merges, "legacy")
    out["spm-metaspace"] = spm_tokenizer(vocab, merges, "metaspace")
    return out


# ---------------------------------------------------------------- expected ids

def expectations(tok):
    """For every test string: HF's ids without and with special tokens, and HF's decode of the former."""
    rows = []
    for s in STRINGS:
        ids = tok.encode(s, add_special_tokens=False).ids
        rows.append({"ids": ids, "ids_with_special": tok.encode(s, add_special_tokens=True).ids,
                     "decoded": tok.decode(ids, skip_special_tokens=False)})
    return rows


def versions():
    import tokenizers, transformers
    return {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__}


def cmd_fixtures():
    from tokenizers import Tokenizer
    toks = train_fixtures()
    for name, tok in toks.items():
        save_tokenizer(tok, name)
    # Expectations from the saved files, as the Swift tests read them.
    table = {name: expectations(Tokenizer.from_file(os.path.join(FIXTURES, name, "tokenizer.json"))) for name in toks}
    save_json(os.path.join(FIXTURES, "expected.json"), {"strings": STRINGS, "versions": versions(), "tokenizers": table})
    print(f"wrote {os.path.join(FIXTURES, 'expected.json')} ({len(STRINGS)} strings x {len(table)} tokenizers)")
    round_trips = {n: sum(r["decoded"] == s for r, s in zip(rows, STRINGS)) for n, rows in table.items()}
    print("strings HF decodes back unchanged:", round_trips)
    for name, folder in REAL.items():
        path = os.path.join(folder, "tokenizer.json")
        if not os.path.exists(path):
            print(f"skipped {name}: {path} is absent (run scripts/fetch-test-vocabs)")
            continue
        rows = expectations(Tokenizer.from_file(path))
        save_json(os.path.join(FIXTURES, f"{name}-expected.json"),
                  {"strings": STRINGS, "versions": versions(), "reference": os.path.relpath(path, CACHE), "cases": rows})
        print(f"wrote {name}-expected.json from {path}")


# ---------------------------------------------------------------- references from GGUF files

GGUF_KEYS = ["model", "pre", "tokens", "scores", "token_type", "merges", "bos_token_id", "eos_token_id",
             "unknown_token_id", "padding_token_id", "add_bos_token", "add_eos_token", "add_space_prefix"]


def gguf_metadata(path):
    import gguf
    reader = gguf.GGUFReader(path)
    meta = {}
    for key in GGUF_KEYS:
        field = reader.fields.get(f"tokenizer.ggml.{key}")
        if field is not None:
            value = field.contents()
            if key == "scores":
                value = [float(v) for v in value]
            meta[f"tokenizer.ggml.{key}"] = value
    return meta


def read_llama_cpp_cases(gguf_path):
    """llama.cpp's reference pairs next to a vocab GGUF: (text, ids) or [] when absent."""
    inp, out = gguf_path + ".inp", gguf_path + ".out"
    if not (os.path.exists(inp) and os.path.exists(out)):
        return []
    sep = "\n__ggml_vocab_test__\n"      # each string ends with it (llama.cpp tests/test-tokenizer-0.cpp)
    raw = open(inp, encoding="utf-8", newline="").read()
    texts = raw.split(sep)
    if texts and texts[-1] == "":
        texts.pop()
    lines = open(out, encoding="utf-8", newline="").read().split("\n")
    assert len(lines) >= len(texts), (inp, len(texts), len(lines))
    cases = [(t, [int(x) for x in line.split()]) for t, line in zip(texts, lines)]
    return cases


def cmd_convert_cache(gguf_path, outdir):
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from transformers import AutoTokenizer
    meta = gguf_metadata(gguf_path)
    model, pre = meta["tokenizer.ggml.model"], meta.get("tokenizer.ggml.pre")
    hf = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(gguf_path)), gguf_file=os.path.basename(gguf_path))
    spec = json.loads(hf.backend_tokenizer.to_str())
    tokens = meta["tokenizer.ggml.tokens"]
    add_bos = meta.get("tokenizer.ggml.add_bos_token")
    if pre in ("llama-bpe", "llama3", "llama-v3"):
        spec["model"]["ignore_merges"] = True
    tok = Tokenizer.from_str(json.dumps(spec))
    if model == "llama":
        add_bos = True if add_bos is None else add_bos
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
        tok.pre_tokenizer = None
    elif pre == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    elif pre in ("llama-bpe", "llama3", "llama-v3"):
        add_bos = True if add_bos is None else add_bos
    bos_id = meta.get("tokenizer.ggml.bos_token_id")
    if add_bos and bos_id is not None:
        bos = tokens[bos_id]
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                           special_tokens=[(bos, bos_id)])
    else:
        tok.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B", special_tokens=[])
    os.makedirs(outdir, exist_ok=True)
    tok.save(os.path.join(outdir, "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": bool(add_bos), "add_eos_token": False,
              "clean_up_tokenization_spaces": False}
    for name, key in [("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"),
                      ("unk_token", "unknown_token_id"), ("pad_token", "padding_token_id")]:
        if f"tokenizer.ggml.{key}" in meta:
            config[name] = tokens[meta[f"tokenizer.ggml.{key}"]]
    save_json(os.path.join(outdir, "tokenizer_config.json"), config)
    with open(os.path.join(outdir, "gguf-tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False)
    print(f"convert-cache: wrote {outdir}/tokenizer.json, tokenizer_config.json, gguf-tokenizer.json "
          f"(model {model}, pre {pre}, {len(tokens)} tokens)")

    cases = read_llama_cpp_cases(gguf_path)
    bad = [(t, ids, tok.encode(t, add_special_tokens=False).ids) for t, ids in cases
           if tok.encode(t, add_special_tokens=False).ids != ids]
    if cases:
        print(f"convert-cache: {len(cases) - len(bad)}/{len(cases)} of llama.cpp's reference strings agree")
    for t, want, got in bad:
        print(f"  {t!r}: llama.cpp reference {want}, this tokenizer {got}")
    if bad:
        sys.exit(1)


# ---------------------------------------------------------------- checking our exported files

def cmd_check_export(root):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    expected = json.load(open(os.path.join(FIXTURES, "expected.json"), encoding="utf-8"))
    tables = dict(expected["tokenizers"])
    for name in REAL:
        path = os.path.join(FIXTURES, f"{name}-expected.json")
        if os.path.exists(path):
            tables[name] = json.load(open(path, encoding="utf-8"))["cases"]
    failures, checked = 0, 0
    for entry in sorted(os.listdir(root)):
        folder = os.path.join(root, entry)
        base = entry.removesuffix("-gguf")
        if base not in tables or not os.path.isdir(folder):
            print(f"check-export: skipping {folder}: no expected ids named {base}")
            continue
        backend = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        auto = AutoTokenizer.from_pretrained(folder)
        bad = 0
        for s, row in zip(STRINGS, tables[base]):
            for label, got in [("tokenizers", backend.encode(s, add_special_tokens=False).ids),
                               ("transformers", auto.encode(s, add_special_tokens=False))]:
                if got != row["ids"]:
                    bad += 1
                    print(f"  {entry} {label} {s!r}: expected {row['ids']}, got {got}")
            with_special = auto(s)["input_ids"]
            if with_special != row["ids_with_special"]:
                bad += 1
                print(f"  {entry} transformers with specials {s!r}: expected {row['ids_with_special']}, got {with_special}")
        checked += 1
        failures += bad
        print(f"check-export: {entry}: {len(STRINGS)} strings, {'all agree' if not bad else f'{bad} differences'}")
    if not checked:
        print(f"check-export: nothing to check in {root}")
        sys.exit(1)
    sys.exit(1 if failures else 0)


def main():
    args = sys.argv[1:]
    if args[:1] == ["fixtures"] and len(args) == 1:
        cmd_fixtures()
    elif args[:1] == ["convert-cache"] and len(args) == 3:
        cmd_convert_cache(args[1], args[2])
    elif args[:1] == ["check-export"] and len(args) == 2:
        cmd_check_export(args[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
