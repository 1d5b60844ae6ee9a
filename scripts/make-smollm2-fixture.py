#!/usr/bin/env python3
"""Optional tooling: writes Tests/EngineTests/Fixtures/smollm2-slice, a parity fixture on the
real shape of the pretrained SmolLM2-135M-Instruct trunk, with PyTorch only.

    scripts/fetch-smollm2                       # the GGUF, into ~/.cache/slmrec/smollm2
    python3 scripts/make-smollm2-fixture.py [GGUF] [--output DIR]

The model: an E-LLMRec (../shared/spec/ellmrec-checkpoint.md) over the FIRST 2 decoder layers
of SmolLM2 and its final norm (model.norm), with the weights transformers' GGUF loader
dequantizes from the GGUF (Q4_1 linears, F32 norms; q/k un-permuted), and a deterministic
head: 30 items, item dim 16, input/output projections with biases, the prompt = the token
embeddings (the GGUF's Q8_0 token_embd, dequantized) of SLMRec's instruction tokenized by
SmolLM2's tokenizer (no BOS: add_bos_token is false), the suffix = those of "\\n### Response:\\n".
The trunk's weights are NOT stored (2 layers are 28 MB of fp32): the Swift test reads them from
the GGUF with its own importer, so the fixture checks that importer too.

Files (all fp32):
- head.safetensors: the ellmrec.* tensors.
- adapter/: a PEFT adapter (adapter_config.json + adapter_model.safetensors, saved by PEFT),
  r 4, lora_alpha 4 (scaling 1), gate_proj/up_proj/down_proj, lora_dropout 0, with NON-zero
  lora_B (seeded) so that every LoRA gradient is non-zero.
- batch.json: {"sequences", "targets"}: 5 sequences of 1–7 items (left-padded to 7 in the model).
- golden.safetensors: without the adapter hidden.0..2, last_hidden, user, scores, loss; with it
  lora.user, lora.scores, lora.loss, lora.grad.<PEFT name> (every LoRA tensor) and
  grad.ellmrec.* (d lora.loss / d each head tensor: the head trains with the adapter).
- golden.json: versions, the GGUF's sha256, the token ids of prompt and suffix, conventions,
  tolerances, the float64 noise floor they are set from, and checks run while making it.

Conventions are the shared fixtures' (../shared/fixtures/tiny-suffix/golden.json): layout
[pad…, prompt…, items…, suffix…], attention_mask 0 on padding, position_ids
max(cumsum(mask)−1, 0); hidden.k = residual stream at the last position (k = 0: inputs_embeds,
the last suffix slot) BEFORE the final norm; scores = user · item_embedding over all N+1 rows
(column 0 is the pad item, computed, unused); loss = mean over the batch of
CE(scores[:, 1:], targets − 1). Eager attention (checked against sdpa).

Environment: re-runs itself in scripts/bench-pytorch.py's venv plus gguf (see verify-gguf.py).
"""
import argparse, hashlib, importlib.util, json, math, os, platform, shutil, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_GGUF = os.path.join(os.environ.get("SLMREC_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "slmrec"), "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"   # scripts/fetch-smollm2's pin
OUT = os.path.join(ROOT, "Tests", "EngineTests", "Fixtures", "smollm2-slice")

INSTRUCTION = "Given the user's purchase history, predict next possible item to be purchased."   # SLMRec's
SUFFIX = "\n### Response:\n"
LAYERS, NUM_ITEMS, ITEM_DIM = 2, 30, 16
LORA_R, LORA_ALPHA, LORA_TARGETS = 4, 4, ["gate_proj", "up_proj", "down_proj"]
SEED = 7
# Left-padded to T = 7 in the model; lengths 7, 3, 5, 1, 6 (one full row, one single item).
LENGTHS = [7, 3, 5, 1, 6]
TOL = {"value": [1e-4, 1e-4], "loss": [1e-5, 1e-5], "grad": [1e-6, 1e-3]}   # [atol, rtol], as the shared fixtures


def verify_module():
    spec = importlib.util.spec_from_file_location("verify_gguf", os.path.join(HERE, "verify-gguf.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def log(s):
    print(s, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- model

def build_trunk(ref, dtype, attn="eager"):
    """LlamaModel with the first LAYERS layers and model.norm of the loaded SmolLM2."""
    import torch
    from transformers import LlamaConfig, LlamaModel
    rc = ref.config
    rope = (getattr(rc, "rope_parameters", None) or {}).get("rope_theta", getattr(rc, "rope_theta", None))
    cfg = LlamaConfig(hidden_size=rc.hidden_size, intermediate_size=rc.intermediate_size, num_hidden_layers=LAYERS,
                      num_attention_heads=rc.num_attention_heads, num_key_value_heads=rc.num_key_value_heads,
                      head_dim=rc.head_dim, rms_norm_eps=rc.rms_norm_eps, rope_theta=rope,
                      max_position_embeddings=rc.max_position_embeddings, vocab_size=1, hidden_act=rc.hidden_act,
                      attention_bias=False, mlp_bias=False, use_cache=False, tie_word_embeddings=False,
                      bos_token_id=None, eos_token_id=None, pad_token_id=None)
    cfg._attn_implementation = attn
    m = LlamaModel(cfg)
    src = ref.model.state_dict()
    sd = {k: src[k] for k in m.state_dict() if k != "embed_tokens.weight"}
    sd["embed_tokens.weight"] = m.embed_tokens.weight.detach().clone()
    m.load_state_dict(sd, strict=True)
    m.embed_tokens.weight.requires_grad_(False)
    for p in m.parameters():
        p.requires_grad_(False)
    return m.to(dtype).eval()


class ELLMRec:
    """The E-LLMRec forward of the spec around a LlamaModel `trunk` (its `.model`, as E4SRec's)."""

    def __init__(self, trunk, head):
        import torch
        self.model = trunk
        self.head = head

    def forward(self, seqs):
        import torch
        h = self.head
        dtype = h["ellmrec.item_embedding.weight"].dtype
        E = h["ellmrec.item_embedding.weight"]
        prompt, suffix = h["ellmrec.prompt_embeddings"], h["ellmrec.prompt_suffix_embeddings"]
        P, S, C = prompt.shape[0], suffix.shape[0], prompt.shape[1]
        B, T = len(seqs), max(len(s) for s in seqs)
        L = P + T + S
        rows, mask = [], torch.zeros(B, L, dtype=torch.long)
        for b, s in enumerate(seqs):
            items = E[torch.tensor(s)] @ h["ellmrec.input_proj.weight"].T + h["ellmrec.input_proj.bias"]
            pad = torch.zeros(L - (P + len(s) + S), C, dtype=dtype)
            rows.append(torch.cat([pad, prompt, items, suffix], 0))
            mask[b, L - (P + len(s) + S):] = 1
        x = torch.stack(rows)                                         # (B, P+T+S, C)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        outs = []
        hooks = [layer.register_forward_hook(lambda mod, inp, out: outs.append(out if torch.is_tensor(out) else out[0]))
                 for layer in self.model.layers]
        try:
            last = self.model(inputs_embeds=x, attention_mask=mask, position_ids=pos).last_hidden_state[:, -1]
        finally:
            for hk in hooks:
                hk.remove()
        user = last @ h["ellmrec.output_proj.weight"].T + h["ellmrec.output_proj.bias"]
        scores = user @ E.T
        return {"hidden": [x[:, -1]] + [o[:, -1] for o in outs], "last_hidden": last, "user": user, "scores": scores,
                "mask": mask, "pos": pos}


def ce_loss(scores, targets):
    import torch
    import torch.nn.functional as F
    return F.cross_entropy(scores[:, 1:], torch.tensor(targets) - 1)


def make_head(ref_embed, prompt_ids, suffix_ids, C):
    """Deterministic head (seeded); scales chosen so the item rows look like token rows to the trunk."""
    import torch
    g = torch.Generator().manual_seed(SEED)
    tok_rms = ref_embed[prompt_ids + suffix_ids].pow(2).mean().sqrt().item()
    E = torch.randn(NUM_ITEMS + 1, ITEM_DIM, generator=g)
    E[0] = 0                                                           # row 0 = the pad item
    head = {
        "ellmrec.item_embedding.weight": E,
        # item rows after input_proj have about the RMS of the prompt's token embeddings
        "ellmrec.input_proj.weight": torch.randn(C, ITEM_DIM, generator=g) * (tok_rms / math.sqrt(ITEM_DIM)),
        "ellmrec.input_proj.bias": torch.randn(C, generator=g) * (0.1 * tok_rms),
        "ellmrec.output_proj.weight": torch.randn(ITEM_DIM, C, generator=g) * (OUT_SCALE / math.sqrt(C)),
        "ellmrec.output_proj.bias": torch.randn(ITEM_DIM, generator=g) * 0.1,
        "ellmrec.prompt_embeddings": ref_embed[prompt_ids].clone(),
        "ellmrec.prompt_suffix_embeddings": ref_embed[suffix_ids].clone(),
    }
    return {k: v.float().contiguous() for k, v in head.items()}, tok_rms


# output_proj std = OUT_SCALE / sqrt(C): SmolLM2's final norm leaves rows of RMS ~ 3-4 (layer 2),
# so scores (16-dim dot products with N(0,1) item rows) have std ~ 1: the softmax is not saturated.
OUT_SCALE = 0.3


def batch(seed):
    import torch
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(1, NUM_ITEMS + 1, (n,), generator=g).tolist() for n in LENGTHS]
    targets = torch.randint(1, NUM_ITEMS + 1, (len(LENGTHS),), generator=g).tolist()
    return seqs, targets


def peft_wrap(trunk, dtype):
    """PEFT LoRA on the trunk inside a module whose trunk is `.model` (adapter names base_model.model.model.layers.…)."""
    import torch
    from peft import LoraConfig, get_peft_model

    class Wrapper(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.model = m

    cfg = LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules=LORA_TARGETS, bias="none")
    return get_peft_model(Wrapper(trunk), cfg)


def init_lora(peft_model):
    """lora_A ~ N(0, 1/sqrt(in)), lora_B ~ N(0, 0.1/sqrt(r)): NON-zero B (PEFT's default is B = 0)."""
    import torch
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for name, p in sorted(peft_model.named_parameters()):
            if ".lora_A." in name:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
            elif ".lora_B." in name:
                p.copy_(torch.randn(p.shape, generator=g) * (0.1 / math.sqrt(LORA_R)))


def lora_grads(peft_model, model_head, seqs, targets):
    """lora.* outputs and d lora.loss / d (LoRA tensors, head tensors)."""
    import torch
    head = {k: v.clone().requires_grad_(True) for k, v in model_head.items()}
    lora_params = {n: p for n, p in peft_model.named_parameters() if "lora_" in n}
    for p in lora_params.values():
        p.grad = None
        p.requires_grad_(True)
    out = ELLMRec(peft_model.base_model.model.model, head).forward(seqs)
    loss = ce_loss(out["scores"], targets)
    loss.backward()
    g = {}
    for n, p in lora_params.items():
        g["lora.grad." + n.replace(".default", "")] = p.grad.detach().clone()   # PEFT's saved names
    for k, v in head.items():
        g["grad." + k] = v.grad.detach().clone()
    res = {"lora.user": out["user"].detach(), "lora.scores": out["scores"].detach(), "lora.loss": loss.detach().reshape(())}
    res.update(g)
    return res


def goldens(trunk, peft_model, head, seqs, targets):
    import torch
    with torch.no_grad():
        out = ELLMRec(trunk, head).forward(seqs)
    g = {f"hidden.{k}": h for k, h in enumerate(out["hidden"])}
    g.update({"last_hidden": out["last_hidden"], "user": out["user"], "scores": out["scores"],
              "loss": ce_loss(out["scores"], targets).reshape(())})
    g.update(lora_grads(peft_model, head, seqs, targets))
    return {k: v.detach() for k, v in g.items()}, out


def main():
    ap = argparse.ArgumentParser(description="Write the smollm2-slice parity fixture from the SmolLM2 GGUF (PyTorch only).")
    ap.add_argument("gguf", nargs="?", default=DEFAULT_GGUF)
    ap.add_argument("--output", default=OUT)
    a = ap.parse_args()
    if not os.path.isfile(a.gguf):
        ap.exit(2, f"make-smollm2-fixture: {a.gguf} is not there; run scripts/fetch-smollm2\n")
    verify_module().reexec_in_venv(__file__)

    import numpy as np, torch, transformers, peft, safetensors
    from safetensors.torch import save_file, load_file
    torch.manual_seed(0)

    digest = sha256(a.gguf)
    if digest != GGUF_SHA256:
        sys.exit(f"make-smollm2-fixture: {a.gguf} has sha256 {digest}, not scripts/fetch-smollm2's {GGUF_SHA256}")

    vg = verify_module()
    ref, tok = vg.load_reference(a.gguf)
    prompt_ids = tok(INSTRUCTION, add_special_tokens=False).input_ids
    suffix_ids = tok(SUFFIX, add_special_tokens=False).input_ids
    assert tok(INSTRUCTION).input_ids == prompt_ids, "SmolLM2 adds no BOS (add_bos_token false)"
    embed = ref.model.embed_tokens.weight.detach()
    C = ref.config.hidden_size
    head, tok_rms = make_head(embed, prompt_ids, suffix_ids, C)
    seqs, targets = batch(SEED + 2)

    trunk = build_trunk(ref, torch.float32)
    peft_model = peft_wrap(build_trunk(ref, torch.float32), torch.float32)
    init_lora(peft_model)
    peft_model.eval()   # dropout 0 anyway
    gold, out = goldens(trunk, peft_model, head, seqs, targets)

    # ---- float64 recomputation: the noise floor the tolerances are checked against
    # (sdpa: transformers' eager attention takes its softmax in fp32, where float64's finfo.min
    # padding mask becomes -inf and fully masked padding rows NaN.)
    trunk64 = build_trunk(ref, torch.float64, attn="sdpa")
    peft64 = peft_wrap(build_trunk(ref, torch.float64, attn="sdpa"), torch.float64)
    with torch.no_grad():
        src = dict(peft_model.named_parameters())
        for n, p in peft64.named_parameters():
            if "lora_" in n:
                p.copy_(src[n].double())
    head64 = {k: v.double() for k, v in head.items()}
    gold64, _ = goldens(trunk64, peft64, head64, seqs, targets)
    floor = {}
    for k, v in gold.items():
        d = (v.double() - gold64[k]).abs().max().item()
        floor[k] = {"max_abs": d, "rel": d / max(gold64[k].abs().max().item(), 1e-30)}

    # ---- sdpa agrees with eager
    trunk_sdpa = build_trunk(ref, torch.float32, attn="sdpa")
    with torch.no_grad():
        s_sdpa = ELLMRec(trunk_sdpa, head).forward(seqs)["scores"]
    sdpa_diff = (s_sdpa - gold["scores"]).abs().max().item()

    # ---- every LoRA gradient is non-zero
    zero = [k for k, v in gold.items() if k.startswith(("lora.grad.", "grad.")) and v.abs().max().item() == 0]
    if zero:
        sys.exit(f"make-smollm2-fixture: all-zero gradients {zero}")

    # ---- write
    out_dir = a.output
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(os.path.join(out_dir, "adapter"))
    save_file(head, os.path.join(out_dir, "head.safetensors"), metadata={"format": "pt"})
    peft_model.save_pretrained(os.path.join(out_dir, "adapter"), safe_serialization=True)
    for extra in os.listdir(os.path.join(out_dir, "adapter")):
        if extra not in ("adapter_config.json", "adapter_model.safetensors"):
            os.remove(os.path.join(out_dir, "adapter", extra))   # PEFT's README.md
    # PEFT's config as it saved it, made reproducible: target_modules is a set (its order
    # changes with Python's hash seed) and auto_mapping names this script's Wrapper in __main__.
    acfg_path = os.path.join(out_dir, "adapter", "adapter_config.json")
    acfg = json.load(open(acfg_path))
    acfg["target_modules"] = sorted(acfg["target_modules"])
    acfg.pop("auto_mapping", None)
    with open(acfg_path, "w") as f:
        json.dump(acfg, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(out_dir, "batch.json"), "w") as f:
        f.write('{"sequences": [\n' + ",\n".join("  " + json.dumps(s) for s in seqs) + "\n ],\n \"targets\": " + json.dumps(targets) + "}\n")
    gold_f32 = {k: v.float().contiguous() for k, v in gold.items()}
    save_file(gold_f32, os.path.join(out_dir, "golden.safetensors"), metadata={"format": "pt"})

    # ---- round trips: the adapter PEFT saved gives the same lora outputs; the stored head is the head
    from peft import set_peft_model_state_dict
    fresh = peft_wrap(build_trunk(ref, torch.float32), torch.float32)
    set_peft_model_state_dict(fresh, load_file(os.path.join(out_dir, "adapter", "adapter_model.safetensors")))
    fresh.eval()
    rt = lora_grads(fresh, load_file(os.path.join(out_dir, "head.safetensors")), seqs, targets)
    rt_diff = max((rt[k] - gold[k]).abs().max().item() for k in rt)
    cfg_saved = json.load(open(os.path.join(out_dir, "adapter", "adapter_config.json")))

    # ---- tolerances against the noise floor
    def group(k):
        return "loss" if k.endswith("loss") else "grad" if k.startswith(("grad.", "lora.grad.")) else "value"
    margins = {}
    for k in floor:
        atol, rtol = TOL[group(k)]
        r64, diff = gold64[k], (gold[k].double() - gold64[k]).abs()
        if diff.max().item() == 0:
            margins[k] = None    # fp32 and fp64 agree exactly (hidden.0: a copied embedding row)
        elif group(k) == "grad":   # max|a-b| <= atol + rtol*max|ref|
            margins[k] = (atol + rtol * r64.abs().max().item()) / max(diff.max().item(), 1e-30)
        else:                    # elementwise |a-b| <= atol + rtol*|ref|
            margins[k] = ((atol + rtol * r64.abs()) / diff.clamp(min=1e-30)).min().item()
    worst = min((k for k in margins if margins[k] is not None), key=margins.get)

    tensors = {k: {"shape": list(v.shape), "dtype": "float32"} for k, v in gold_f32.items()}
    rc = ref.config
    meta = {
        "fixture": "smollm2-slice",
        "generator": "scripts/make-smollm2-fixture.py",
        "seed": SEED,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
                     "peft": peft.__version__, "safetensors": safetensors.__version__, "numpy": np.__version__,
                     "gguf": vg.EXTRA_PINS["gguf"]},
        "base": {
            "gguf": os.path.basename(a.gguf), "gguf_sha256": digest, "fetched_by": "scripts/fetch-smollm2",
            "loaded_by": "transformers LlamaForCausalLM.from_pretrained(dir, gguf_file=…, dtype=float32): gguf-py dequantizes "
                         "Q4_1 / Q8_0 to fp32 and reverses llama.cpp's q/k row permutation",
            "layers_used": f"model.layers.0..{LAYERS - 1} and model.norm (of {rc.num_hidden_layers})",
            "not_stored": "the trunk's weights (2 layers: 28 MB fp32): the Swift test reads them from the GGUF",
        },
        "config": {"hidden_size": C, "intermediate_size": rc.intermediate_size, "num_hidden_layers": LAYERS,
                   "num_attention_heads": rc.num_attention_heads, "num_key_value_heads": rc.num_key_value_heads,
                   "head_dim": rc.head_dim, "rms_norm_eps": rc.rms_norm_eps,
                   "rope_theta": (rc.rope_parameters or {}).get("rope_theta"), "num_items": NUM_ITEMS, "item_dim": ITEM_DIM,
                   "prompt_length": len(prompt_ids), "suffix_length": len(suffix_ids), "input_proj_bias": True,
                   "output_proj_bias": True, "T": max(LENGTHS), "attn_implementation": "eager"},
        "prompt": {"text": INSTRUCTION, "token_ids": prompt_ids,
                   "tokens": tok.convert_ids_to_tokens(prompt_ids)},
        "suffix": {"text": SUFFIX, "token_ids": suffix_ids, "tokens": tok.convert_ids_to_tokens(suffix_ids)},
        "tokenizer": "AutoTokenizer.from_pretrained(dir, gguf_file=…), add_special_tokens=False (the same ids: add_bos_token is false)",
        "lora": {"r": LORA_R, "lora_alpha": LORA_ALPHA, "scaling": LORA_ALPHA / LORA_R, "lora_dropout": 0.0,
                 "target_modules": sorted(cfg_saved["target_modules"])},
        "batch": {"sequences": seqs, "targets": targets, "true_lengths": LENGTHS,
                  "layout": [" ".join(["PAD"] * (max(LENGTHS) - n) + [f"P0..P{len(prompt_ids) - 1}"] + [str(i) for i in s]
                                      + [f"S0..S{len(suffix_ids) - 1}"]) for s, n in zip(seqs, LENGTHS)],
                  "attention_mask": out["mask"].tolist(), "position_ids": out["pos"].tolist()},
        "definitions": {
            "head.safetensors": "the ellmrec.* tensors of the checkpoint (fp32); the trunk comes from the GGUF",
            "hidden.{k}": "fp32 [B,d1], residual stream at the last position; k=0: inputs_embeds (the last suffix slot, "
                          "prompt_suffix_embeddings[-1]: the same for every row), k=1..2: after decoder layer k, BEFORE the final norm",
            "last_hidden": "fp32 [B,d1], model.norm(hidden.2) = HF last_hidden_state[:, -1]",
            "user": "fp32 [B,d0], output_proj(last_hidden) (with bias)",
            "scores": "fp32 [B,num_items+1], user @ item_embedding.T; column 0 = pad item (computed, not used)",
            "loss": "fp32 scalar (shape []), mean over batch of CE(scores[:,1:], targets-1)",
            "lora.user / lora.scores / lora.loss": "the same with the adapter attached (W + lora_alpha/r * B A on gate/up/down)",
            "lora.grad.<adapter name>": "fp32, d lora.loss / d lora_A / lora_B",
            "grad.ellmrec.<name>": "fp32, d lora.loss / d <name>: the head's gradients in LoRA training (adapter attached, "
                                   "trunk frozen); NOT full fine-tuning gradients, which this fixture does not store",
        },
        "init": {
            "ellmrec.item_embedding.weight": "normal(0, 1), row 0 = 0 (pad)",
            "ellmrec.input_proj.weight": f"normal(0, rms/sqrt(d0)), rms = {tok_rms:.6g} = RMS of the prompt+suffix token embeddings "
                                         "(item rows look like token rows to the trunk)",
            "ellmrec.input_proj.bias": "normal(0, 0.1 rms)",
            "ellmrec.output_proj.weight": f"normal(0, {OUT_SCALE}/sqrt(d1)) (scores of std ~1: the softmax is not saturated)",
            "ellmrec.output_proj.bias": "normal(0, 0.1)",
            "ellmrec.prompt_embeddings / prompt_suffix_embeddings": "rows of the dequantized token_embd (Q8_0) at the token ids",
            "lora_A [r,in]": "normal(0, 1/sqrt(in))",
            "lora_B [out,r]": "normal(0, 0.1/sqrt(r)) (non-zero, unlike PEFT's default B=0)",
            "generator": f"torch.Generator().manual_seed({SEED}) for the head, {SEED + 1} for LoRA (sorted names), {SEED + 2} for the batch",
        },
        "tolerances": {
            "groups": TOL,
            "doc": "as the shared fixtures: value |a-b| <= atol + rtol*|ref| elementwise; loss the same; grad "
                   "max|a-b| <= atol + rtol*max|ref| per tensor (relative to the tensor's largest gradient)",
            "worst_margin_over_fp64_noise": {"tensor": worst, "tolerance / (fp32 golden - fp64 recomputation)": margins[worst]},
        },
        "reference_noise_floor": {"what": "max |fp32 golden - the same computation in float64 (torch sdpa attention, same weights)|",
                                  "max_abs": {k: v["max_abs"] for k, v in floor.items()},
                                  "rel": {k: v["rel"] for k, v in floor.items()},
                                  "tolerance_over_noise": margins},
        "checks": {
            "sdpa_vs_eager_scores_max_abs": sdpa_diff,
            "adapter_and_head_roundtrip_max_abs": rt_diff,
            "no_zero_gradient": True,
            "scores_std": gold["scores"][:, 1:].std().item(),
            "lora_changes_scores_max_abs": (gold["lora.scores"] - gold["scores"]).abs().max().item(),
        },
        "files": {n: sha256(os.path.join(out_dir, n)) for n in
                  ["head.safetensors", "batch.json", "golden.safetensors", "adapter/adapter_config.json", "adapter/adapter_model.safetensors"]},
        "tensors": tensors,
    }
    with open(os.path.join(out_dir, "golden.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(out_dir) for n in ns)
    print(f"wrote {out_dir}: {size / 1e6:.2f} MB")
    print(f"prompt {len(prompt_ids)} tokens {prompt_ids}; suffix {len(suffix_ids)} tokens {suffix_ids}")
    print(f"loss {gold['loss'].item():.6f}, lora.loss {gold['lora.loss'].item():.6f}; scores std {meta['checks']['scores_std']:.3f}")
    print(f"sdpa vs eager {sdpa_diff:.3g}; round trip {rt_diff:.3g}; worst tolerance margin over fp64 noise: "
          f"{margins[worst]:.1f}x ({worst})")
    for k in gold:
        print(f"  {k:<72} {str(list(gold[k].shape)):>12}  fp64 noise {floor[k]['max_abs']:.3g} (rel {floor[k]['rel']:.2g})  margin {'exact' if margins[k] is None else f'{margins[k]:.0f}x'}")


if __name__ == "__main__":
    main()
