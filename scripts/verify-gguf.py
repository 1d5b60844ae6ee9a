#!/usr/bin/env python3
"""Optional tooling: check the Hugging Face directory that `slmrec import-gguf` writes against
what transformers' own GGUF loader builds from the same file.

    slmrec import-gguf GGUF --output HF_DIR
    python3 scripts/verify-gguf.py GGUF HF_DIR [--json] [--all] [--exact]
    python3 scripts/verify-gguf.py GGUF --write-reference DIR   # DIR from transformers' loader
                                                                # (save_pretrained), to test this script

What it checks, each against transformers' `LlamaForCausalLM.from_pretrained(dir, gguf_file=…)`
and `AutoTokenizer.from_pretrained(dir, gguf_file=…)` (gguf-py dequantizes to fp32 and reverses
llama.cpp's q/k row permutation):

- HF_DIR has config.json, model.safetensors, tokenizer.json and tokenizer_config.json; the config
  matches the architecture numbers (hidden, intermediate, layers, heads, kv heads, head_dim,
  rms_norm_eps as fp32, rope_theta, vocab, tie_word_embeddings: true); model.safetensors holds
  exactly HF's tensor names minus lm_head.weight (tied embeddings), nothing missing or extra.
- HF_DIR loads as LlamaForCausalLM with no missing, unexpected or mis-shaped tensors, and its
  lm_head is the token embedding.
- max |diff| per tensor (from the file, upcast to fp32, and again after loading) and over all
  tensors. The weights are dequantized Q4_1 / Q8_0 blocks, so they should be bit-identical;
  the check fails past fp32 tolerance (max|diff| > 1e-6·max|ref|), --exact fails on any bit.
- the logits on a paragraph of English (max |diff|, fails past 1e-4 + 1e-4·max|ref|) and the
  paragraph's perplexity under both (fails past a relative 1e-4).
- the tokenizer loaded from HF_DIR gives the same ids as the one transformers builds from the
  GGUF for 30 varied strings (with and without special tokens), decodes them the same way and
  has the same special tokens.

The permutation note: llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel.permute)
reorders the rows of attn_q / attn_k per head, from HF's rotate-half RoPE layout to its
interleaved one; a loader must reverse it. This script always prints a third perplexity: the
reference model with llama.cpp's permutation applied again to every q_proj / k_proj (what a
loader that skips the reversal gets), so the docs can quote both numbers. When HF_DIR's q/k
differ from the reference but equal that permuted layout, the report says so.

Environment: re-runs itself in the venv of scripts/bench-pytorch.py (~/.cache/slmrec/bench-venv;
SLMREC_BENCH_VENV overrides), adding the pinned gguf package that transformers' GGUF loader
needs. Exit status: 0 all checks pass, 1 a check failed, 2 usage or missing files, 3 the
package registry cannot be reached to set up the venv.
"""
import argparse, importlib.util, json, math, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXTRA_PINS = {"gguf": "0.19.0"}   # transformers' GGUF loader dequantizes with gguf-py

PARAGRAPH = (
    "The history of the bicycle begins in the early nineteenth century, when inventors in "
    "Germany and France built wooden machines that riders pushed along with their feet. Pedals "
    "attached to the front wheel arrived in the 1860s, and within twenty years the tall "
    "high-wheeler had become a fashionable but dangerous toy for young men. The safety bicycle, "
    "with two wheels of equal size and a chain driving the rear one, changed everything: it was "
    "easy to mount, stable at low speed and cheap enough for workers to buy. By the end of the "
    "century millions of people rode to work, to school and into the countryside, and the "
    "demand for smooth roads helped to prepare the way for the motor car."
)

TOKENIZER_STRINGS = [
    "Hello, world!",
    "Given the user's purchase history, predict next possible item to be purchased.",
    "\n### Response:\n",
    "### Instruction:\nRecommend a book.\n### Response:\n",
    "",
    " ",
    "   leading and trailing spaces   ",
    "tabs\tand\nnewlines\r\nmixed",
    "The quick brown fox jumps over the lazy dog.",
    "It's, we're, they'll, I'd, don't, can't.",
    "1234567890 3.14159 -42 1e-5 0x1F",
    "Prices: $19.99, €5, £3.50, ¥1000",
    "def add(a, b):\n    return a + b  # a comment",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct?x=1&y=2",
    "user@example.com",
    "naïve café résumé Ångström façade",
    "Привет, мир! Как дела?",
    "你好，世界。今天天气很好。",
    "こんにちは世界",
    "مرحبا بالعالم",
    "emoji: 😀🎉👍🏽 and 🇫🇷",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "ALL CAPS SHOUTING AND MiXeD cAsE",
    "a" * 64,
    "hyphen-ated, under_scored, camelCaseWord, snake_case_name",
    "Item 17 -> Item 42 -> Item 3; next: ?",
    "Multiple\n\n\nblank lines\n\n",
    "Zero\u200bwidth\u00a0nbsp and combining e\u0301",
]


# ---------------------------------------------------------------- environment

def bench_module():
    spec = importlib.util.spec_from_file_location("bench_pytorch", os.path.join(HERE, "bench-pytorch.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def reexec_in_venv(script):
    """Runs `script` again in bench-pytorch.py's venv (its pins plus EXTRA_PINS), installing what is missing."""
    b = bench_module()
    b.PINS = {**b.PINS, **EXTRA_PINS}
    if os.path.realpath(sys.prefix) != os.path.realpath(b.VENV):
        b.ensure_venv()
        os.execv(b.venv_python(), [b.venv_python(), os.path.abspath(script)] + sys.argv[1:])
    return b


def log(s):
    print(s, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- llama.cpp's q/k permutation

def llama_cpp_permute(w, n_head, n_head_kv=None):
    """convert_hf_to_gguf.py, LlamaModel.permute: HF rotate-half rows -> llama.cpp interleaved rows."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def permute_qk_in_place(model):
    """Applies llama.cpp's permutation to every q_proj / k_proj: the weights a loader that does not reverse it uses."""
    import torch
    c = model.config
    with torch.no_grad():
        for layer in model.model.layers:
            a = layer.self_attn
            a.q_proj.weight.copy_(llama_cpp_permute(a.q_proj.weight, c.num_attention_heads, c.num_attention_heads))
            a.k_proj.weight.copy_(llama_cpp_permute(a.k_proj.weight, c.num_attention_heads, c.num_key_value_heads))


# ---------------------------------------------------------------- loading

def load_reference(gguf):
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM
    d, f = os.path.dirname(os.path.abspath(gguf)), os.path.basename(gguf)
    log(f"loading {gguf} with transformers' GGUF loader (dequantizes every tensor; ~40 s)")
    model = LlamaForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model.eval()
    return model, tok


def write_reference(gguf, out):
    """HF_DIR as transformers would save its own GGUF loader's model: the script's self-test input.
    save_pretrained refuses a model loaded from GGUF ("quantized with gguf"), although its tensors
    are plain fp32, so the directory is written as save_pretrained lays it out: config.json without
    quantization_config, model.safetensors without the tied lm_head, the tokenizer's files."""
    from safetensors.torch import save_file
    model, tok = load_reference(gguf)
    os.makedirs(out, exist_ok=True)
    cfg = model.config.to_dict()
    for k in ("quantization_config", "_name_or_path"):
        cfg.pop(k, None)
    cfg["architectures"] = ["LlamaForCausalLM"]
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    sd = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    tok.save_pretrained(out)
    log(f"wrote {out}: " + ", ".join(sorted(os.listdir(out))))


# ---------------------------------------------------------------- checks

class Report:
    def __init__(self):
        self.failures, self.notes, self.data = [], [], {}

    def fail(self, s):
        self.failures.append(s)
        log("FAIL: " + s)

    def note(self, s):
        self.notes.append(s)
        log("note: " + s)


def check_files(hf_dir, r):
    need = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    missing = [n for n in need if not os.path.isfile(os.path.join(hf_dir, n))]
    r.data["files"] = sorted(os.listdir(hf_dir))
    if missing:
        r.fail(f"{hf_dir} lacks {', '.join(missing)}")
    return missing


def check_config(hf_dir, ref, r):
    import numpy as np
    cfg = json.load(open(os.path.join(hf_dir, "config.json")))
    rc = ref.config

    def rope_theta(c):
        rp = c.get("rope_parameters") or {}
        return rp.get("rope_theta", c.get("rope_theta"))

    ref_rope = (getattr(rc, "rope_parameters", None) or {}).get("rope_theta", getattr(rc, "rope_theta", None))
    rows = []
    for key, want in [("model_type", "llama"), ("hidden_size", rc.hidden_size), ("intermediate_size", rc.intermediate_size),
                      ("num_hidden_layers", rc.num_hidden_layers), ("num_attention_heads", rc.num_attention_heads),
                      ("num_key_value_heads", rc.num_key_value_heads), ("head_dim", rc.head_dim),
                      ("vocab_size", rc.vocab_size), ("hidden_act", rc.hidden_act), ("tie_word_embeddings", True),
                      ("rms_norm_eps", rc.rms_norm_eps), ("rope_theta", ref_rope),
                      ("max_position_embeddings", rc.max_position_embeddings),
                      ("bos_token_id", rc.bos_token_id), ("eos_token_id", rc.eos_token_id)]:
        got = rope_theta(cfg) if key == "rope_theta" else cfg.get(key)
        if key == "head_dim" and got is None:
            got = cfg.get("hidden_size", 0) // max(cfg.get("num_attention_heads", 1), 1)
        if key in ("rms_norm_eps", "rope_theta"):
            # The model computes with them in fp32: 1e-5 and GGUF's 9.999999747378752e-06 are one value.
            same = got is not None and np.float32(got) == np.float32(want)
        else:
            same = got == want
        rows.append({"key": key, "hf_dir": got, "reference": want, "same": bool(same)})
        if not same:
            (r.fail if key in ("model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                              "num_key_value_heads", "head_dim", "vocab_size", "hidden_act", "tie_word_embeddings",
                              "rms_norm_eps", "rope_theta") else r.note)(f"config.json {key} = {got!r}, the GGUF gives {want!r}")
    archs = cfg.get("architectures")
    if archs is not None and "LlamaForCausalLM" not in archs:
        r.note(f"config.json architectures = {archs} (loaded as LlamaForCausalLM regardless)")
    if "quantization_config" in cfg:
        r.fail("config.json has a quantization_config: the tensors are dequantized fp32, transformers would try to quantize them")
    r.data["config"] = rows
    return cfg


def max_abs(a, b):
    import torch
    if a.shape != b.shape:
        return float("inf")
    return (a.float() - b.float()).abs().max().item() if a.numel() else 0.0


def check_tensors(hf_dir, ref, ours, exact, r):
    import torch
    from safetensors import safe_open
    ref_sd = {k: v for k, v in ref.state_dict().items()}
    want = set(ref_sd) - {"lm_head.weight"}
    with safe_open(os.path.join(hf_dir, "model.safetensors"), framework="pt") as f:
        names = set(f.keys())
        missing, extra = sorted(want - names), sorted(names - want)
        if missing:
            r.fail(f"model.safetensors lacks {len(missing)} tensors: {missing[:5]}{' …' if len(missing) > 5 else ''}")
        if "lm_head.weight" in extra:
            r.fail("model.safetensors has lm_head.weight: with tie_word_embeddings the head is the token embedding and is not stored")
        if extra:
            r.fail(f"model.safetensors has {len(extra)} tensors transformers' loader does not: {extra[:5]}")
        per = []
        dtypes = {}
        for name in sorted(want & names):
            t = f.get_tensor(name)
            dtypes[str(t.dtype)] = dtypes.get(str(t.dtype), 0) + 1
            ref_t = ref_sd[name]
            d = max_abs(t, ref_t)
            mx = ref_t.abs().max().item()
            per.append({"name": name, "shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""),
                        "max_abs_diff": d, "max_abs_ref": mx, "bit_identical": bool(t.dtype == torch.float32 and torch.equal(t, ref_t))})
    loaded = ours.state_dict()
    for p in per:
        p["max_abs_diff_loaded"] = max_abs(loaded[p["name"]], ref_sd[p["name"]])
    r.data["tensor_dtypes"] = dtypes
    r.data["tensors"] = per
    overall = max([p["max_abs_diff"] for p in per] + [0.0])
    r.data["weights_max_abs_diff"] = overall
    r.data["weights_bit_identical"] = all(p["bit_identical"] for p in per) and not missing
    bad = [p for p in per if (p["max_abs_diff"] > 0 if exact else p["max_abs_diff"] > 1e-6 * p["max_abs_ref"])]
    for p in bad[:10]:
        r.fail(f"{p['name']} {p['shape']} {p['dtype']}: max|diff| {p['max_abs_diff']:.3g} (max|ref| {p['max_abs_ref']:.3g})")
    if len(bad) > 10:
        r.fail(f"… and {len(bad) - 10} more tensors differ")
    # Is a q/k difference llama.cpp's permutation left in place?
    c = ref.config
    for p in bad:
        kind = "q" if p["name"].endswith("q_proj.weight") else "k" if p["name"].endswith("k_proj.weight") else None
        if kind:
            perm = llama_cpp_permute(ref_sd[p["name"]], c.num_attention_heads,
                                     c.num_attention_heads if kind == "q" else c.num_key_value_heads)
            if max_abs(loaded[p["name"]], perm) <= 1e-6 * p["max_abs_ref"]:
                r.fail(f"{p['name']} equals llama.cpp's permuted layout: the importer does not reverse the q/k permutation")
                break
    # Tied embeddings after loading.
    if ours.lm_head.weight.data_ptr() != ours.model.embed_tokens.weight.data_ptr():
        d = max_abs(ours.lm_head.weight, ours.model.embed_tokens.weight)
        r.fail(f"loaded lm_head is not tied to embed_tokens (max|diff| {d:.3g})")
    return per


def perplexity(model, ids):
    import torch
    with torch.no_grad():
        out = model(input_ids=ids, labels=ids)
    return out.logits, math.exp(out.loss.item())


def check_logits(ref, ours, ref_tok, r):
    import copy, torch
    ids = torch.tensor([ref_tok(PARAGRAPH).input_ids])
    lr, ppl_ref = perplexity(ref, ids)
    lo, ppl_ours = perplexity(ours, ids)
    d = max_abs(lo, lr)
    mx = lr.abs().max().item()
    permuted = copy.deepcopy(ref)
    permute_qk_in_place(permuted)
    _, ppl_perm = perplexity(permuted, ids)
    del permuted
    r.data["logits"] = {"tokens": ids.shape[1], "max_abs_diff": d, "max_abs_ref": mx,
                        "perplexity_reference": ppl_ref, "perplexity_hf_dir": ppl_ours,
                        "perplexity_qk_permutation_not_reversed": ppl_perm}
    if not d <= 1e-4 + 1e-4 * mx:
        r.fail(f"logits on the paragraph: max|diff| {d:.3g} (max|ref| {mx:.3g}) exceeds 1e-4 + 1e-4·max|ref|")
    if not abs(ppl_ours - ppl_ref) <= 1e-4 * ppl_ref:
        r.fail(f"perplexity {ppl_ours:.4f} (HF_DIR) vs {ppl_ref:.4f} (transformers' GGUF loader)")


def check_tokenizer(hf_dir, ref_tok, r):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(hf_dir)
    rows, n_bad = [], 0
    for s in TOKENIZER_STRINGS:
        row = {"text": s}
        for special in (True, False):
            a, b = tok(s, add_special_tokens=special).input_ids, ref_tok(s, add_special_tokens=special).input_ids
            row["ids" if special else "ids_no_special"] = b
            row["same" if special else "same_no_special"] = a == b
            if a != b:
                n_bad += 1
                r.fail(f"tokenizer ids differ for {s!r} (add_special_tokens={special}): HF_DIR {a[:12]} vs GGUF {b[:12]}")
        ids = row["ids_no_special"]
        da, db = tok.decode(ids), ref_tok.decode(ids)
        row["decode_same"] = da == db
        if da != db:
            n_bad += 1
            r.fail(f"decode differs for {s!r}: {da!r} vs {db!r}")
        rows.append(row)
    specials = {}
    for attr in ("bos_token", "eos_token", "pad_token", "unk_token"):
        a, b = getattr(tok, attr, None), getattr(ref_tok, attr, None)
        specials[attr] = {"hf_dir": str(a), "gguf": str(b)}
        if str(a) != str(b):
            r.fail(f"tokenizer {attr}: HF_DIR {a!r}, GGUF {b!r}")
    if len(tok) != len(ref_tok):
        r.fail(f"tokenizer size: HF_DIR {len(tok)}, GGUF {len(ref_tok)}")
    ab, bb = getattr(tok, "add_bos_token", None), getattr(ref_tok, "add_bos_token", None)
    if ab != bb:
        r.fail(f"add_bos_token: HF_DIR {ab}, GGUF {bb}")
    msgs = [{"role": "user", "content": "Recommend a book."}]
    try:
        ca = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    except Exception as e:  # no template in HF_DIR
        ca = f"<error: {type(e).__name__}>"
    cb = ref_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    if ca != cb:
        r.note(f"chat template differs (not needed by E-LLMRec): HF_DIR {ca[:60]!r} vs GGUF {cb[:60]!r}")
    r.data["tokenizer"] = {"strings": len(TOKENIZER_STRINGS), "mismatches": n_bad, "size": len(tok),
                           "add_bos_token": ab, "special_tokens": specials, "chat_template_same": ca == cb, "cases": rows}


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description="Check slmrec import-gguf's Hugging Face directory against transformers' GGUF loader.")
    ap.add_argument("gguf")
    ap.add_argument("hf_dir", nargs="?")
    ap.add_argument("--write-reference", metavar="DIR", help="instead: write DIR from transformers' GGUF loader (save_pretrained)")
    ap.add_argument("--exact", action="store_true", help="fail on any weight that is not bit-identical (default: fp32 tolerance)")
    ap.add_argument("--all", action="store_true", help="print every tensor's max |diff|, not one line per kind")
    ap.add_argument("--json", metavar="FILE", help="also write everything measured to FILE as JSON")
    a = ap.parse_args()
    if not os.path.isfile(a.gguf):
        ap.exit(2, f"verify-gguf: {a.gguf} is not a file (scripts/fetch-smollm2 fetches SmolLM2's)\n")
    if bool(a.hf_dir) == bool(a.write_reference):
        ap.exit(2, "verify-gguf: give HF_DIR to check, or --write-reference DIR (not both)\n")
    if a.hf_dir and not os.path.isdir(a.hf_dir):
        ap.exit(2, f"verify-gguf: {a.hf_dir} is not a directory (slmrec import-gguf GGUF --output {a.hf_dir})\n")
    reexec_in_venv(__file__)

    import platform, torch, transformers, gguf as gguf_py
    torch.manual_seed(0)
    if a.write_reference:
        write_reference(a.gguf, a.write_reference)
        return 0

    r = Report()
    ref, ref_tok = load_reference(a.gguf)
    missing = check_files(a.hf_dir, r)
    if "config.json" in missing or "model.safetensors" in missing:
        return finish(a, r)
    check_config(a.hf_dir, ref, r)
    from transformers import LlamaForCausalLM
    ours, info = LlamaForCausalLM.from_pretrained(a.hf_dir, dtype=torch.float32, output_loading_info=True)
    ours.eval()
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        v = list(info.get(k) or [])
        if v:
            r.fail(f"LlamaForCausalLM.from_pretrained({a.hf_dir}): {k} {v[:5]}")
    r.data["loaded_as"] = type(ours).__name__
    per = check_tensors(a.hf_dir, ref, ours, a.exact, r)
    check_logits(ref, ours, ref_tok, r)
    if "tokenizer.json" in missing:
        r.data["tokenizer"] = None   # reported by check_files; nothing to compare
    else:
        check_tokenizer(a.hf_dir, ref_tok, r)
    r.data["versions"] = {"python": platform.python_version(), "torch": torch.__version__,
                          "transformers": transformers.__version__, "gguf": gguf_py.__version__ if hasattr(gguf_py, "__version__") else EXTRA_PINS["gguf"]}

    # ---- print
    print(f"verify-gguf {a.gguf} against {a.hf_dir}")
    print(f"transformers {transformers.__version__} GGUF loader (gguf-py), torch {torch.__version__}")
    print(f"files: {', '.join(r.data['files'])}")
    print(f"config: {sum(x['same'] for x in r.data['config'])}/{len(r.data['config'])} keys match"
          + "".join(f"; {x['key']} {x['hf_dir']!r} vs {x['reference']!r}" for x in r.data["config"] if not x["same"]))
    print(f"loads as {r.data['loaded_as']}; tensors: {len(per)} in model.safetensors ({r.data['tensor_dtypes']}), "
          f"lm_head tied to embed_tokens")
    if a.all:
        rows = [(p["name"], p) for p in per]
    else:
        groups = {}
        for p in per:
            key = ".".join("*" if part.isdigit() else part for part in p["name"].split("."))
            g = groups.setdefault(key, {"n": 0, "max_abs_diff": 0.0, "max_abs_diff_loaded": 0.0, "bit_identical": True, "shape": p["shape"], "dtype": p["dtype"]})
            g["n"] += 1
            g["max_abs_diff"] = max(g["max_abs_diff"], p["max_abs_diff"])
            g["max_abs_diff_loaded"] = max(g["max_abs_diff_loaded"], p["max_abs_diff_loaded"])
            g["bit_identical"] &= p["bit_identical"]
        rows = [(f"{k} (x{g['n']})" if g["n"] > 1 else k, g) for k, g in groups.items()]
    w = max(len(n) for n, _ in rows)
    print(f"  {'tensor':<{w}}  {'shape':>12}  {'dtype':>8}  {'max|diff| file':>14}  {'loaded':>10}  bit-identical")
    for n, p in rows:
        print(f"  {n:<{w}}  {'x'.join(map(str, p['shape'])):>12}  {p['dtype']:>8}  {p['max_abs_diff']:>14.3g}  "
              f"{p['max_abs_diff_loaded']:>10.3g}  {'yes' if p['bit_identical'] else 'NO'}")
    print(f"all {len(per)} tensors: max|diff| {r.data['weights_max_abs_diff']:.3g}; "
          f"bit-identical: {'yes' if r.data['weights_bit_identical'] else 'no'}")
    lg = r.data["logits"]
    print(f"logits on a {lg['tokens']}-token paragraph: max|diff| {lg['max_abs_diff']:.3g} (max|logit| {lg['max_abs_ref']:.1f})")
    print(f"perplexity: HF_DIR {lg['perplexity_hf_dir']:.4f}, transformers' GGUF loader {lg['perplexity_reference']:.4f}; "
          f"with llama.cpp's q/k permutation NOT reversed: {lg['perplexity_qk_permutation_not_reversed']:.4f}")
    tk = r.data["tokenizer"]
    if tk is None:
        print("tokenizer: HF_DIR has no tokenizer.json; not compared")
        return finish(a, r)
    print(f"tokenizer: {tk['strings']} strings, {tk['mismatches']} mismatches (ids with/without special tokens, decode); "
          f"vocab {tk['size']}, add_bos_token {tk['add_bos_token']}, chat template {'same' if tk['chat_template_same'] else 'differs'}")
    return finish(a, r)


def finish(a, r):
    r.data["failures"], r.data["notes"] = r.failures, r.notes
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r.data, f, indent=1, sort_keys=True, default=str)
    if r.failures:
        print(f"FAILED: {len(r.failures)} check(s)")
        for s in r.failures:
            print("  " + s)
        return 1
    print("OK: HF_DIR matches transformers' GGUF loader")
    return 0


if __name__ == "__main__":
    sys.exit(main())
