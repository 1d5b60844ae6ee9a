#!/usr/bin/env python3
"""Optional tooling: the PyTorch side of `slmrec bench`, for `make bench-compare`.

    python3 scripts/bench-pytorch.py --config small|medium|smollm2-8 [--int8 | --io] [--json] [--seconds 4] [--threads N]
    python3 scripts/bench-pytorch.py --setup     # only install the venv (make bench-compare does this first)

The same rows as `slmrec bench` on the same shapes, timed the same way, so that a ratio of
the two is the ratio of two programs on one machine in one run (a ratio against a figure
from another machine is not: an AVX-512 VNNI machine's PyTorch figures read 0.68x on an
AVX2 machine where the same-run ratio is 1.15x).

What is mirrored from Sources/Engine (BenchConfig.named, EngineBenchmark.run/runInt8/runIO):
- shapes: small = hidden 256, intermediate 688, 8 layers, 4 heads (no GQA), 3,000 items, item
  dim 64, prompt 4 (no suffix), 50 items per sequence, batch 64, 512 inference users; medium
  = hidden 512, intermediate 1376, 8 heads, 10,000 items; tiny as in BenchConfig. RMSNorm eps
  1e-6, RoPE theta 10000, SiLU MLP, no attention/MLP biases, input/output projection biases.
  smollm2-8 = 8 layers of SmolLM2-135M's shape: hidden 576, intermediate 1536, 9 heads, 3 KV
  heads (grouped-query attention), head_dim 64, RMSNorm eps 1e-5, RoPE theta 1e5; 18,357 items,
  item dim 64, SLMRec's prompt (15 tokens) before the items and "\n### Response:\n" (5 tokens)
  after them, batch 64, 512 inference users.
- the model: the E-LLMRec head of scripts/verify-with-pytorch.py around Hugging Face's
  LlamaModel: item_embedding -> input_proj -> [prompt, items] -> LlamaModel(inputs_embeds)
  -> last hidden state (after model.norm) -> output_proj -> user · item_embedding over all
  N+1 rows (row 0 is the padding item, as ours). Every sequence has exactly 50 items, so the
  left-padded batch has no padding: attention_mask all ones (passed as None, which is the
  same causal mask) and position_ids 0…P+T−1, what max(cumsum(mask)−1, 0) gives.
- full fine-tuning step: zero grads, forward, mean cross-entropy over all N+1 scores,
  backward, torch.optim.AdamW(lr 1e-5, weight_decay 0.01, betas (0.9, 0.999), eps 1e-8) on
  every parameter (the unused LlamaModel.embed_tokens excluded).
- LoRA step: PEFT LoraConfig with the config's adapter (BenchConfig.lora): r=8, lora_alpha=16,
  lora_dropout=0, target_modules q_proj, v_proj for tiny/small/medium; r=16, lora_alpha=16,
  lora_dropout=0.05, gate_proj, up_proj, down_proj for smollm2-8 (SLMRec's); input_proj,
  output_proj (weights and biases) and the prompt trainable, the item table, the suffix and the
  decoder frozen; AdamW as above on the trainable tensors.
- inference: the 512 users in one batch under torch.inference_mode, users/s.
- int8: torch.ao.quantization.quantize_dynamic({nn.Linear}, qint8) on the decoder
  (LlamaModel: q, k, v, o, gate, up, down — the linears ours quantizes; input_proj and
  output_proj stay float in both) against the same fp32 model; default qconfig (per-tensor
  weight scale; ours is per-output-channel). Top-10 overlap with fp32, as ours.
- io: safetensors.torch save_file / safe_open + clone of one 50 MiB f32 tensor (ours writes via a
  temporary file and a rename, theirs in place; both read a file from the page cache).
- weights initialised as ELLMRecModel.random: linears normal(0, 0.5/sqrt(fan_in)), item
  table normal(0, 0.1), prompt normal(0, 0.02), norms 1, biases 0 (the values differ, the
  distributions do not; it matters for the top-10 overlap, not for the time).
- rows: all three, or those named in --rows / $SLMREC_BENCH_ROWS (ids, comma-separated), as
  `slmrec bench` reads SLMREC_BENCH_ROWS: a LoRA-only run's peak RSS is the LoRA step's.
- timing: one warm-up call, then the median of at least 3 calls and --seconds of wall time
  (at most 50 calls), as EngineBenchmark.time.
- threads: torch.set_num_threads(N) with N as OpenBLAS picks it for `slmrec bench`
  (OPENBLAS_NUM_THREADS, else OMP_NUM_THREADS, else the CPUs this process may run on);
  `make bench-compare` checks that both sides report the same number.

Environment: this script makes its own virtual environment (default
~/.cache/slmrec/bench-venv, outside the repository; SLMREC_BENCH_VENV overrides) with the
pinned versions below from the package registry pip is configured for, and re-runs itself
there. The only Linux x86_64 torch wheel on PyPI is the CUDA build: installed with
`--no-deps`, `import torch` fails (libtorch_global_deps.so needs libcudart.so.13 and torch
preloads cuBLAS, cuDNN, NCCL…), so it is installed with all its dependencies (about 5.6 GB
in the venv, once; a 3.7-minute install here). Nothing here touches CUDA: every tensor is on the CPU and no GPU is
needed. When the registry cannot be reached the script says so and exits with status 3.
"""
import argparse, contextlib, json, os, subprocess, sys, tempfile, warnings

PINS = {"torch": "2.15.0", "transformers": "5.23.0", "peft": "0.21.2"}
VENV = os.path.expanduser(os.environ.get("SLMREC_BENCH_VENV", "~/.cache/slmrec/bench-venv"))

LORA_QV = {"r": 8, "alpha": 16, "targets": ["q_proj", "v_proj"], "dropout": 0.0}


def config(hidden, intermediate, layers, heads, items, item_dim, prompt, seq_len, batch, users, kv_heads=None,
           head_dim=None, eps=1e-6, rope_theta=10000.0, suffix=0, lora=LORA_QV):
    return {"hidden": hidden, "intermediate": intermediate, "layers": layers, "heads": heads, "items": items,
            "item_dim": item_dim, "prompt": prompt, "seq_len": seq_len, "batch": batch, "users": users,
            "kv_heads": kv_heads or heads, "head_dim": head_dim or hidden // heads, "eps": eps, "rope_theta": rope_theta,
            "suffix": suffix, "lora": lora}


CONFIGS = {   # BenchConfig.named
    "small": config(256, 688, 8, 4, 3000, 64, 4, 50, 64, 512),
    "medium": config(512, 1376, 8, 8, 10000, 64, 4, 50, 64, 512),
    "tiny": config(64, 172, 2, 4, 500, 16, 4, 20, 16, 64),
    # SmolLM2-135M's shape, 8 of its 30 layers; prompt 15 and suffix 5 = the token counts of SLMRec's
    # instruction and "\n### Response:\n" under SmolLM2's tokenizer (Benchmark.swift says how).
    "smollm2-8": config(576, 1536, 8, 9, 18357, 64, 15, 50, 64, 512, kv_heads=3, head_dim=64, eps=1e-5,
                        rope_theta=100000.0, suffix=5,
                        lora={"r": 16, "alpha": 16, "targets": ["gate_proj", "up_proj", "down_proj"], "dropout": 0.05}),
}
ROWS = ["full_step", "lora_step", "inference"]


def lora_row_name(lora):
    """BenchLoRA.rowName: "LoRA step (r=8, q,v)"."""
    mods = ",".join(t.replace("_proj", "") for t in lora["targets"])
    return f"LoRA step (r={lora['r']}, {mods}" + (f", dropout {lora['dropout']}" if lora["dropout"] > 0 else "") + ")"


# ---------------------------------------------------------------- environment

def venv_python():
    return os.path.join(VENV, "bin", "python")


def installed_versions(python):
    code = ("import importlib.metadata as m, json; v = {}\n"
            "for n in %r:\n"
            "    try: v[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: v[n] = None\n"
            "print(json.dumps(v))" % (list(PINS),))
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout
        return json.loads(out)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return {}


def ensure_venv():
    """Creates the venv and installs the pins when they are not there yet."""
    if installed_versions(venv_python()) == PINS:
        return
    log(f"setting up {VENV} with " + ", ".join(f"{k}=={v}" for k, v in PINS.items()) + " (once; about 5.6 GB)")
    if not os.path.exists(venv_python()):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    pip = [venv_python(), "-m", "pip"]
    # A small pinned wheel first, with one short retry: tells "the registry cannot be reached"
    # apart from a failed install, in seconds rather than after pip's long default retries.
    with tempfile.TemporaryDirectory() as d:
        probe = subprocess.run(pip + ["download", "--no-deps", "--retries", "1", "--timeout", "20", "-q", "-d", d,
                                      f"peft=={PINS['peft']}"], capture_output=True, text=True)
    if probe.returncode != 0:
        sys.stderr.write(probe.stderr[-2000:])
        log(f"error: the package registry cannot be reached (pip could not download peft=={PINS['peft']}); "
            "bench-pytorch needs it once to install torch, transformers and peft into " + VENV)
        sys.exit(3)
    r = subprocess.run(pip + ["install", "-q"] + [f"{k}=={v}" for k, v in PINS.items()])
    if r.returncode != 0 or installed_versions(venv_python()) != PINS:
        log(f"error: installing the pinned packages into {VENV} failed (pip's output above); "
            f"remove {VENV} and run again, or set SLMREC_BENCH_VENV to another directory")
        sys.exit(3)


def log(s):
    print(s, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- machine

def machine_info():
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and model == "unknown" and value:
                    model = value
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    avx2, avx512f, vnni = "avx2" in flags, "avx512f" in flags, "avx512_vnni" in flags
    isa = "AVX-512 VNNI" if vnni else "AVX-512" if avx512f else "AVX2" if avx2 else ("unknown" if model == "unknown" else "no AVX2")
    return {"cpu_model": model, "isa": isa, "avx2": avx2, "avx512f": avx512f, "avx512_vnni": vnni,
            "logical_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}


def default_threads():
    # OpenBLAS's own rule, so that without --threads both sides use the same number.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "")
        if v.isdigit() and int(v) > 0:
            return int(v)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def peak_rss_bytes():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


# ---------------------------------------------------------------- model

def forward_flops(c, seq_lens, scored):
    """Benchmark.swift's forwardFLOPs: the model's full computation, 2 FLOPs per multiply-add."""
    C, I, L, NH, N, D0, P = c["hidden"], c["intermediate"], c["layers"], c["heads"], c["items"], c["item_dim"], c["prompt"]
    hd = c["head_dim"]
    q, kv = NH * hd, c["kv_heads"] * hd
    f = 0.0
    for n0 in seq_lens:
        n = n0 + P + c["suffix"]
        per_tok = 2 * C * (q + 2 * kv) + 2 * q * C + 3 * 2 * C * I
        f += L * (n * per_tok + 2 * 2 * NH * n * n * hd)
        f += n0 * 2 * D0 * C
    return f + scored * (2 * C * D0 + 2 * D0 * (N + 1))


def build_model(c, seed):
    import torch
    from torch import nn
    from transformers import LlamaConfig, LlamaModel

    torch.manual_seed(seed)
    config = LlamaConfig(hidden_size=c["hidden"], intermediate_size=c["intermediate"], num_hidden_layers=c["layers"],
                         num_attention_heads=c["heads"], num_key_value_heads=c["kv_heads"], head_dim=c["head_dim"],
                         rms_norm_eps=c["eps"], rope_theta=c["rope_theta"], max_position_embeddings=2048, vocab_size=1, hidden_act="silu",
                         attention_bias=False, mlp_bias=False, use_cache=False, tie_word_embeddings=False,
                         bos_token_id=None, eos_token_id=None, pad_token_id=None)
    config._attn_implementation = "sdpa"

    class ELLMRec(nn.Module):
        def __init__(self):
            super().__init__()
            self.item_embedding = nn.Embedding(c["items"] + 1, c["item_dim"])
            self.input_proj = nn.Linear(c["item_dim"], c["hidden"])
            self.prompt = nn.Parameter(torch.zeros(c["prompt"], c["hidden"]))
            self.suffix = nn.Parameter(torch.zeros(c["suffix"], c["hidden"])) if c["suffix"] else None
            self.model = LlamaModel(config)
            self.output_proj = nn.Linear(c["hidden"], c["item_dim"])

        def forward(self, seqs):
            B = seqs.shape[0]
            x = self.input_proj(self.item_embedding(seqs))                        # (B, T, C)
            parts = [self.prompt.unsqueeze(0).expand(B, -1, -1), x]
            if self.suffix is not None:
                parts.append(self.suffix.unsqueeze(0).expand(B, -1, -1))
            x = torch.cat(parts, 1)                                              # (B, P+T+S, C)
            h = self.model(inputs_embeds=x).last_hidden_state[:, -1]             # (B, C), after model.norm
            return self.output_proj(h) @ self.item_embedding.weight.T            # (B, N+1)

    m = ELLMRec()
    m.model.embed_tokens.weight.requires_grad_(False)  # unused with inputs_embeds
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("layernorm.weight") or name == "model.norm.weight":
                p.fill_(1)
            elif name.endswith(".bias"):
                p.zero_()
            elif name == "item_embedding.weight":
                p.normal_(0, 0.1)
            elif name in ("prompt", "suffix"):
                p.normal_(0, 0.02)
            elif p.dim() == 2 and name != "model.embed_tokens.weight":
                p.normal_(0, 0.5 / p.shape[1] ** 0.5)
    return m, config


def sequences(c, n, seed):
    import torch
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(1, c["items"] + 1, (n, c["seq_len"]), generator=g),
            torch.randint(1, c["items"] + 1, (n,), generator=g))


def timed(seconds, body):
    """EngineBenchmark.time: one warm-up, then the median of >= 3 calls over `seconds` (<= 50 calls)."""
    import time
    body()
    samples, start = [], time.perf_counter()
    while len(samples) < 3 or (time.perf_counter() - start < seconds and len(samples) < 50):
        t0 = time.perf_counter()
        body()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return samples[len(samples) // 2]


def row(id_, name, unit, count, t, flops=None):
    r = {"id": id_, "name": name, "unit": unit, "rate": count / t, "ms": t * 1000}
    if flops is not None:
        r["gflops"] = flops / t / 1e9
    return r


# ---------------------------------------------------------------- rows

def run_main(c, seconds, selected=tuple(ROWS)):
    import torch
    import torch.nn.functional as F
    from peft import LoraConfig, get_peft_model

    def train_step(model, opt, seqs, targets):
        """One training step as the rows time it: zero the gradients, CE over all items, backward, AdamW."""
        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(seqs), targets).backward()
            opt.step()
        return step

    rows = []
    seqs, targets = sequences(c, c["batch"], seed=2)
    fwd = forward_flops(c, [c["seq_len"]] * c["batch"], c["batch"])

    # (a) full fine-tuning step
    if "full_step" in selected:
        model, _ = build_model(c, seed=1)
        model.train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, weight_decay=0.01)
        t = timed(seconds, train_step(model, opt, seqs, targets))
        rows.append(row("full_step", "full fine-tuning step", "seq/s", c["batch"], t, 3 * fwd))
        log(f"full step: {t * 1000:.1f} ms")
        del model, opt

    # (b) LoRA step: PEFT on the E-LLMRec module (the decoder is its `.model`, as E4SRec's)
    if "lora_step" in selected:
        lc = c["lora"]
        model, _ = build_model(c, seed=1)
        peft_model = get_peft_model(model, LoraConfig(r=lc["r"], lora_alpha=lc["alpha"], lora_dropout=lc["dropout"],
                                                      target_modules=lc["targets"], bias="none"))
        for p in [model.input_proj.weight, model.input_proj.bias, model.output_proj.weight, model.output_proj.bias, model.prompt]:
            p.requires_grad_(True)
        peft_model.train()
        trainable = [p for p in peft_model.parameters() if p.requires_grad]
        lora_opt = torch.optim.AdamW(trainable, lr=1e-5, weight_decay=0.01)
        n_lora = sum(1 for n, p in peft_model.named_parameters() if p.requires_grad and "lora_" in n)
        t = timed(seconds, train_step(peft_model, lora_opt, seqs, targets))
        rows.append(row("lora_step", lora_row_name(lc), "seq/s", c["batch"], t, 2 * fwd))
        log(f"LoRA step: {t * 1000:.1f} ms ({n_lora} LoRA tensors, {len(trainable)} trainable tensors)")
        del model, peft_model, lora_opt

    if "inference" not in selected:
        return rows, {}
    # (c) inference: all users in one batch, full-ranking scores
    model, _ = build_model(c, seed=1)
    model.eval()
    iseqs, _ = sequences(c, c["users"], seed=4)

    def infer():
        with torch.inference_mode():
            model(iseqs)

    t = timed(seconds, infer)
    rows.append(row("inference", f"inference ({c['users']} users, full scores)", "users/s", c["users"], t,
                    forward_flops(c, [c["seq_len"]] * c["users"], c["users"])))
    log(f"inference: {t * 1000:.1f} ms")
    return rows, {}


def run_int8(c, seconds):
    import copy
    import torch
    from torch import nn

    model, _ = build_model(c, seed=1)
    model.eval()
    q = copy.deepcopy(model)
    # torch 2.15 marks torch.ao.quantization deprecated (in favour of torchao) and says so at
    # length on every call; it is still what the int8 baseline is, so the notice is silenced.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(sys.stderr):
            q.model = torch.ao.quantization.quantize_dynamic(q.model, {nn.Linear}, dtype=torch.qint8)
    iseqs, _ = sequences(c, c["users"], seed=4)
    flops = forward_flops(c, [c["seq_len"]] * c["users"], c["users"])

    def infer(m):
        with torch.inference_mode():
            return m(iseqs)

    tf = timed(seconds, lambda: infer(model))
    log(f"fp32 inference: {tf * 1000:.1f} ms")
    t8 = timed(seconds, lambda: infer(q))
    log(f"int8 inference: {t8 * 1000:.1f} ms")
    s32, s8 = infer(model)[:, 1:], infer(q)[:, 1:]   # column 0 is the padding item, as ours skips
    a, b = s32.topk(10, dim=1).indices.tolist(), s8.topk(10, dim=1).indices.tolist()
    overlap = sum(len(set(x) & set(y)) / 10 for x, y in zip(a, b)) / len(a)
    rows = [row("inference_fp32", "inference fp32", "users/s", c["users"], tf, flops),
            row("inference_int8", "inference int8 (quantize_dynamic qint8)", "users/s", c["users"], t8, flops)]
    return rows, {"int8_vs_fp32": tf / t8, "top10_overlap": overlap,
                  "quantized_engine": torch.backends.quantized.engine}


def run_io(seconds):
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    mib = 50
    n = mib * 1024 * 1024 // 4
    t = (torch.arange(n, dtype=torch.float32) % 1000 * 0.001).reshape(n // 1024, 1024)
    mb = n * 4 / 1e6
    with tempfile.TemporaryDirectory(prefix="bench-pytorch-io-") as d:
        path = os.path.join(d, "bench-io.safetensors")
        tw = timed(seconds, lambda: save_file({"w": t}, path, metadata={"format": "pt"}))
        got = {}

        def read():
            # get_tensor may map the file without reading it; clone() copies the floats out
            # into owned memory, which is what ours measures.
            with safe_open(path, framework="pt") as f:
                got["w"] = f.get_tensor("w").clone()

        tr = timed(seconds, read)
    if got["w"].numel() != n:
        raise SystemExit(f"safetensors read back {got['w'].numel()} of {n} floats")
    label = f"{mib} MiB f32 tensor"
    return [{"id": "safetensors_write", "name": f"safetensors write ({label})", "unit": "MB/s", "rate": mb / tw, "ms": tw * 1000},
            {"id": "safetensors_read", "name": f"safetensors read ({label})", "unit": "MB/s", "rate": mb / tr, "ms": tr * 1000}], {}


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description="PyTorch side of `slmrec bench` (same shapes, rows and timing).")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="small")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--int8", action="store_true", help="fp32 vs quantize_dynamic qint8 inference instead")
    mode.add_argument("--io", action="store_true", help="safetensors write/read of a 50 MiB tensor instead")
    ap.add_argument("--seconds", type=float, default=4.0, help="seconds of timing per row (median of repeated runs)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: as OpenBLAS picks)")
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--setup", action="store_true", help="only make sure the venv has the pinned packages, then exit")
    ap.add_argument("--rows", default=os.environ.get("SLMREC_BENCH_ROWS") or ",".join(ROWS),
                    help="row ids to time, comma-separated (default: $SLMREC_BENCH_ROWS, else all: " + ",".join(ROWS) + ")")
    a = ap.parse_args()
    if a.seconds <= 0:
        ap.error("--seconds must be positive")
    if a.threads is not None and a.threads < 1:
        ap.error("--threads must be at least 1")
    selected = [r.strip() for r in a.rows.split(",") if r.strip()]
    if any(r not in ROWS for r in selected):
        ap.error(f"--rows: {', '.join(r for r in selected if r not in ROWS)} is not a row ({', '.join(ROWS)})")

    if os.path.realpath(sys.prefix) != os.path.realpath(VENV):
        ensure_venv()
        os.execv(venv_python(), [venv_python(), os.path.abspath(__file__)] + sys.argv[1:])

    import platform
    import torch
    import transformers, peft

    if a.setup:
        log(f"{VENV}: torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")
        return

    threads = a.threads or default_threads()
    torch.set_num_threads(threads)
    c = CONFIGS[a.config]
    machine = machine_info()
    if a.io:
        rows, extra = run_io(a.seconds)
    elif a.int8:
        rows, extra = run_int8(c, a.seconds)
    else:
        rows, extra = run_main(c, a.seconds, selected)
    out = {
        "tool": "pytorch", "config": None if a.io else a.config, "seconds_per_row": a.seconds, "machine": machine,
        "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "peft": peft.__version__},
        "attn_implementation": "sdpa", "rows": rows, "peak_rss_bytes": peak_rss_bytes(), **extra,
    }
    if a.json:
        print(json.dumps(out, indent=2, sort_keys=True))
        return
    v = out["versions"]
    print(f"bench-pytorch --config {a.config}{' --int8' if a.int8 else ''}{' --io' if a.io else ''}")
    print(f"machine: {machine['cpu_model']}, {machine['isa']}, {machine['logical_cpus']} logical CPUs; "
          f"{out['threads']} torch threads; torch {v['torch']} (CPU capability {out['cpu_capability']}), "
          f"transformers {v['transformers']}, peft {v['peft']}, Python {v['python']}")
    w = max(len(r["name"]) for r in rows)
    print(f"{'row':<{w}}  {'rate':>16}  {'ms/iter':>9}  {'model GFLOP/s':>13}")
    for r in rows:
        g = f"{r['gflops']:.1f}" if "gflops" in r else "-"
        print(f"{r['name']:<{w}}  {r['rate']:>10.1f} {r['unit']:>5}  {r['ms']:>9.1f}  {g:>13}")
    if a.int8:
        print(f"int8 vs fp32: {extra['int8_vs_fp32']:.2f}x; top-10 overlap int8 vs fp32: {extra['top10_overlap']:.3f} "
              f"(quantized engine {extra['quantized_engine']})")
    print(f"peak RSS {out['peak_rss_bytes'] / 1048576:.0f} MiB")


if __name__ == "__main__":
    main()
