#!/usr/bin/env python3
"""Optional tooling: check that a checkpoint (and adapter) written by slmrec loads in
PyTorch / Hugging Face / PEFT and gives the same user vectors and scores as `slmrec embed`.

    pip install torch transformers peft safetensors
    slmrec embed --checkpoint CKPT [--adapter AD] --sequences BATCH.json --output OUT.safetensors
    python3 scripts/verify-with-pytorch.py CKPT BATCH.json OUT.safetensors [--adapter AD]

The E-LLMRec forward follows ../shared/spec/ellmrec-checkpoint.md: left-padded
[pad…, prompt…, items…, suffix…], attention_mask 0 on padding, position_ids =
max(cumsum(mask) − 1, 0), LlamaModel(inputs_embeds=…).last_hidden_state[:, −1] → output_proj.
Exits non-zero when a difference exceeds 1e-4 + 1e-4·|ref|.
"""
import argparse, json, os, sys

import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaModel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("batch")
    ap.add_argument("embed_output")
    ap.add_argument("--adapter")
    a = ap.parse_args()

    cfg_json = json.load(open(os.path.join(a.checkpoint, "config.json")))
    ell = cfg_json["ellmrec"]
    config = LlamaConfig.from_pretrained(a.checkpoint)
    tensors = load_file(os.path.join(a.checkpoint, "model.safetensors"))
    llama = LlamaModel.from_pretrained(a.checkpoint, config=config, torch_dtype=torch.float32)
    llama.eval()
    model = llama
    if a.adapter:
        # The contract's adapter names are base_model.model.model.layers.… : PEFT wrapping an
        # E-LLMRec module whose LLaMa trunk is its `.model` (as E4SRec's model is).
        from peft import PeftModel

        class ELLMRec(torch.nn.Module):
            def __init__(self, trunk):
                super().__init__()
                self.model = trunk

        peft = PeftModel.from_pretrained(ELLMRec(llama), a.adapter)
        peft.eval()
        model = peft.base_model.model.model
        n = sum(1 for k, _ in peft.named_parameters() if "lora_" in k)
        print(f"PEFT loaded {a.adapter}: r={peft.peft_config['default'].r}, targets={sorted(peft.peft_config['default'].target_modules)}, {n} LoRA tensors")

    f32 = lambda n: tensors[n].float() if n in tensors else None
    E, Win, bin_ = f32("ellmrec.item_embedding.weight"), f32("ellmrec.input_proj.weight"), f32("ellmrec.input_proj.bias")
    Wout, bout = f32("ellmrec.output_proj.weight"), f32("ellmrec.output_proj.bias")
    prompt, suffix = f32("ellmrec.prompt_embeddings"), f32("ellmrec.prompt_suffix_embeddings")

    seqs = [s[-ell.get("max_seq_len", 50):] for s in json.load(open(a.batch))["sequences"]]
    B, T = len(seqs), max(len(s) for s in seqs)
    P = 0 if prompt is None else prompt.shape[0]
    S = 0 if suffix is None else suffix.shape[0]
    L = P + T + S
    d1 = config.hidden_size
    x = torch.zeros(B, L, d1)
    mask = torch.zeros(B, L, dtype=torch.long)
    for b, s in enumerate(seqs):
        n = len(s)
        start = L - (P + n + S)
        items = torch.tensor(s)
        rows = E[items] @ Win.T + (bin_ if bin_ is not None else 0)
        parts = ([prompt] if P else []) + [rows] + ([suffix] if S else [])
        x[b, start:] = torch.cat(parts, 0)
        mask[b, start:] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        h = model(inputs_embeds=x, attention_mask=mask, position_ids=pos).last_hidden_state[:, -1]
        user = h @ Wout.T + (bout if bout is not None else 0)
        scores = user @ E.T

    ours = load_file(a.embed_output)
    ok = True
    for name, ref in [("last_hidden", h), ("user", user), ("scores", scores)]:
        mine = ours[name].float()
        diff = (mine - ref).abs()
        bound = 1e-4 + 1e-4 * ref.abs()
        good = bool((diff <= bound).all())
        ok &= good
        print(f"{name:12s} shape {tuple(ref.shape)}  max|slmrec − PyTorch| = {diff.max().item():.3e}  {'ok' if good else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
