"""PyTorch peer of `sweep bench-train` on a GPU (scripts/gpu-check.sh): the same BERT QA
training step (forward, QA loss, backward, clip_grad_norm_, AdamW) at the same shape, one
JSON line per precision mode, each the like-for-like peer of a burn row:

  f32            f32 weights and math, TF32 matmuls allowed   (burn: --precision f32, TF32 by autotune)
  f32-strict     f32 weights and math, TF32 off: plain f32 FMA (the strict peer of burn's f32)
  bf16-autocast  torch.autocast(bf16): HF's --bf16             (burn: --precision bf16, mixed)
  f16-autocast   torch.autocast(f16) + GradScaler: HF's --fp16 (burn: --precision f16, mixed)
  pure-bf16      model.to(bfloat16): everything in bf16       (burn: --precision pure-bf16)

Needs only torch: the model is transformers' BertForQuestionAnswering when transformers is
installed, else a plain PyTorch BERT of the same shape and FLOPs (eager attention either way).
Reports ms/step, examples/s, peak memory, achieved TFLOP/s from the step's FLOPs and MFU
against the GPU's dense peak for that math.

Usage: python bench_gpu_torch.py PRESET BATCH SEQ WARMUP TIMED [MODE ...]
"""
import contextlib
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {"tiny": (2, 128, 2), "mini": (4, 256, 4), "small": (4, 512, 8), "base": (12, 768, 12)}
VOCAB = 21128
MODES = ("f32", "f32-strict", "bf16-autocast", "f16-autocast", "pure-bf16")
# Dense peaks (TFLOP/s) of the H100/H200 SXM: bf16/f16 tensor cores, TF32, plain f32.
PEAKS = {"H200": {"bf16": 989.4, "tf32": 494.7, "f32": 66.9}, "H100": {"bf16": 989.4, "tf32": 494.7, "f32": 66.9}}


def step_flops(layers, hidden, batch, seq):
    """Forward: per layer 24·b·s·h² (QKV, output, 4h FFN) + 4·b·s²·h (scores, context); a
    training step is 3× the forward (backward twice the forward)."""
    return 3 * layers * (24 * batch * seq * hidden * hidden + 4 * batch * seq * seq * hidden)


def peak(name, math_kind):
    for k, v in PEAKS.items():
        if k in name:
            return v[math_kind]
    return None


class PlainBert(nn.Module):
    """BERT for QA in plain PyTorch: post-LN layers, exact GELU, dropout 0.1."""

    def __init__(self, layers, hidden, heads):
        super().__init__()
        self.heads = heads
        self.word = nn.Embedding(VOCAB, hidden, padding_idx=0)
        self.pos = nn.Embedding(512, hidden)
        self.typ = nn.Embedding(2, hidden)
        self.ln = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList()
        for _ in range(layers):
            self.layers.append(nn.ModuleDict({
                "q": nn.Linear(hidden, hidden), "k": nn.Linear(hidden, hidden), "v": nn.Linear(hidden, hidden),
                "o": nn.Linear(hidden, hidden), "ln1": nn.LayerNorm(hidden, eps=1e-12),
                "ff1": nn.Linear(hidden, 4 * hidden), "ff2": nn.Linear(4 * hidden, hidden),
                "ln2": nn.LayerNorm(hidden, eps=1e-12)}))
        self.qa = nn.Linear(hidden, 2)
        self.drop = nn.Dropout(0.1)

    def forward(self, input_ids, token_type_ids, attention_mask, start_positions, end_positions):
        b, s = input_ids.shape
        x = self.word(input_ids) + self.pos(torch.arange(s, device=input_ids.device)) + self.typ(token_type_ids)
        x = self.drop(self.ln(x))
        mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        d = x.shape[-1] // self.heads
        for l in self.layers:
            split = lambda t: t.view(b, s, self.heads, d).transpose(1, 2)
            q, k, v = split(l["q"](x)), split(l["k"](x)), split(l["v"](x))
            p = self.drop(F.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + mask, dim=-1))
            c = (p @ v).transpose(1, 2).reshape(b, s, -1)
            x = l["ln1"](self.drop(l["o"](c)) + x)
            x = l["ln2"](self.drop(l["ff2"](F.gelu(l["ff1"](x)))) + x)
        start, end = self.qa(x).split(1, dim=-1)
        loss = (F.cross_entropy(start.squeeze(-1).float(), start_positions)
                + F.cross_entropy(end.squeeze(-1).float(), end_positions)) / 2
        return loss


def build(layers, hidden, heads):
    try:
        from transformers import BertConfig, BertForQuestionAnswering
        cfg = BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         intermediate_size=4 * hidden, max_position_embeddings=512, attn_implementation="eager")
        model = BertForQuestionAnswering(cfg)
        return model, "transformers", lambda **kw: model(**kw).loss
    except ImportError:
        model = PlainBert(layers, hidden, heads)
        return model, "plain-pytorch", lambda **kw: model(**kw)


def run(mode, preset, batch, seq, warm, timed):
    layers, hidden, heads = SHAPES[preset]
    torch.backends.cuda.matmul.allow_tf32 = mode != "f32-strict"
    torch.backends.cudnn.allow_tf32 = mode != "f32-strict"
    torch.manual_seed(1)
    model, impl, loss_of = build(layers, hidden, heads)
    model = model.cuda().train()
    if mode == "pure-bf16":
        model = model.to(torch.bfloat16)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, eps=1e-8, weight_decay=0.0)
    scaler = torch.amp.GradScaler("cuda") if mode == "f16-autocast" else None
    autocast = {"bf16-autocast": torch.bfloat16, "f16-autocast": torch.float16}.get(mode)
    ids = torch.randint(1, VOCAB, (batch, seq), device="cuda")
    types = (torch.arange(seq, device="cuda") >= seq // 4).long().expand(batch, seq).contiguous()
    starts = torch.randint(0, seq, (batch,), device="cuda")
    ends = (starts + 3).clamp(max=seq - 1)
    mask = torch.ones_like(ids)

    def step():
        ctx = torch.autocast("cuda", dtype=autocast) if autocast else contextlib.nullcontext()
        with ctx:
            loss = loss_of(input_ids=ids, token_type_ids=types, attention_mask=mask, start_positions=starts,
                           end_positions=ends)
        if scaler:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        else:
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)

    torch.cuda.synchronize()
    t0 = time.perf_counter()
    step()
    torch.cuda.synchronize()
    first = time.perf_counter() - t0
    for _ in range(max(warm - 1, 0)):
        step()
    torch.cuda.reset_peak_memory_stats()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(timed):
        step()
    end.record()
    torch.cuda.synchronize()
    ms = start.elapsed_time(end) / timed
    flops = step_flops(layers, hidden, batch, seq)
    name = torch.cuda.get_device_name()
    kind = {"f32": "tf32", "f32-strict": "f32"}.get(mode, "bf16")
    tflops = flops / (ms / 1000) / 1e12
    p = peak(name, kind)
    return {"impl": f"torch-{impl}", "torch": torch.__version__, "device_name": name, "precision": mode,
            "preset": preset, "batch": batch, "seq": seq, "ms_per_step": ms, "first_step_ms": 1000 * first,
            "examples_per_second": batch * 1000 / ms, "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
            "step_tflop": flops / 1e12, "tflops": tflops, "mfu": tflops / p if p else None,
            "mfu_peak": f"{kind} {p}" if p else None}


def main():
    preset, batch, seq, warm, timed = sys.argv[1], *map(int, sys.argv[2:6])
    modes = sys.argv[6:] or MODES
    for mode in modes:
        try:
            print(json.dumps(run(mode, preset, batch, seq, warm, timed)), flush=True)
        except Exception as e:  # one failed mode must not lose the others' rows
            print(json.dumps({"impl": "torch", "precision": mode, "preset": preset, "batch": batch, "seq": seq,
                              "error": f"{type(e).__name__}: {e}"}), flush=True)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
