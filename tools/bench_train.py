"""`make bench` for training: qa-model's training step (burn, CPU backends) next to PyTorch +
transformers BertForQuestionAnswering doing the same step (forward, QA loss, backward,
clip_grad_norm_, AdamW) on the same batch shapes, on the same CPU, in the same run.
Writes the table into docs/benchmarks.md (between the bench:train markers).

Usage: python bench_train.py --flex SWEEP_BIN --ndarray SWEEP_BIN   (sweep built with each CPU backend)
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import time

import torch
from transformers import BertConfig, BertForQuestionAnswering

import bench_data

PRESETS = {"tiny": (2, 128, 2), "mini": (4, 256, 4)}
CASES = [("tiny", 3, 24), ("mini", 2, 8)]
VOCAB, BATCH, SEQ = 21128, 16, 128


def torch_step_time(preset, warm, timed):
    layers, hidden, heads = PRESETS[preset]
    torch.manual_seed(1)
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=4 * hidden, max_position_embeddings=512, attn_implementation="eager")
    model = BertForQuestionAnswering(cfg)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, eps=1e-8, weight_decay=0.0)
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(1, VOCAB, (BATCH, SEQ), generator=g)
    types = (torch.arange(SEQ) >= SEQ // 4).long().expand(BATCH, SEQ)
    starts = torch.randint(0, SEQ, (BATCH,), generator=g)
    ends = (starts + 3).clamp(max=SEQ - 1)
    secs = 0.0
    for i in range(warm + timed):
        t0 = time.perf_counter()
        out = model(input_ids=ids, token_type_ids=types, attention_mask=torch.ones_like(ids),
                    start_positions=starts, end_positions=ends)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= warm:
            secs += time.perf_counter() - t0
    return {"ms_per_step": 1000 * secs / timed, "examples_per_second": BATCH * timed / secs}


def rust(bin_path, preset, warm, timed):
    out = subprocess.run([bin_path, "bench-train", "--preset", preset, "--vocab-size", str(VOCAB),
                          "--batch", str(BATCH), "--seq", str(SEQ), "--warmup", str(warm), "--steps", str(timed)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flex", required=True)
    ap.add_argument("--ndarray", required=True)
    ap.add_argument("--doc", default=os.path.join(bench_data.HERE, "..", "docs", "benchmarks.md"))
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    rows = []
    for preset, warm, timed in CASES:
        f = rust(args.flex, preset, warm, timed)
        n = rust(args.ndarray, preset, warm, timed)
        p = torch_step_time(preset, warm, timed)
        rows.append((preset, f, n, p))
    layers = {k: f"{v[0]} layers, hidden {v[1]}" for k, v in PRESETS.items()}
    lines = [
        "<!-- bench:train:start -->",
        f"## Training step on CPU (batch {BATCH}, sequence {SEQ}, vocab {VOCAB})",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {bench_data.cpu_name()}, {os.cpu_count()} cores",
        "- command: `make bench` (tools/bench_train.py → `sweep bench-train`, crates/qa-model/src/bench.rs)",
        f"- peer: PyTorch {torch.__version__} eager ({torch.get_num_threads()} threads), transformers "
        "BertForQuestionAnswering, AdamW, clip_grad_norm_; same shapes, random ids",
        "",
        "| preset | burn flex ms/step | burn ndarray ms/step | PyTorch ms/step | flex ex/s | PyTorch ex/s | PyTorch / flex time |",
        "|---|---|---|---|---|---|---|",
    ]
    for preset, f, n, p in rows:
        lines.append(f"| {preset} ({layers[preset]}) | {f['ms_per_step']:.0f} | {n['ms_per_step']:.0f} | "
                     f"{p['ms_per_step']:.0f} | {f['examples_per_second']:.1f} | {p['examples_per_second']:.1f} | "
                     f"{p['ms_per_step'] / f['ms_per_step']:.2f}× |")
    faster = all(f["ms_per_step"] <= n["ms_per_step"] for _, f, n, _ in rows)
    lines += ["", "A ratio below 1 means burn is slower than PyTorch. flex is the default CPU backend"
              + (" (faster than ndarray in every row)." if faster else "; ndarray was faster in some rows of this run."),
              "<!-- bench:train:end -->"]
    section = "\n".join(lines)
    text = open(args.doc, encoding="utf-8").read()
    start, end = "<!-- bench:train:start -->", "<!-- bench:train:end -->"
    if start in text and end in text:
        text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    open(args.doc, "w", encoding="utf-8").write(text)
    print(section)


if __name__ == "__main__":
    main()
