"""`make bench` for training and evaluation on CPU: qa-model's training step (burn flex) next
to PyTorch + transformers BertForQuestionAnswering doing the same step (forward, QA loss,
backward, clip_grad_norm_, AdamW) on the same batch shapes, and the forward pass alone
(evaluation; PyTorch under no_grad), on the same CPU, in the same run. Each side runs in its own
process, alternating, REPEATS times; the table keeps each side's fastest run, the cores it kept
busy (CPU time / wall time over the timed steps) and its peak RSS.
Writes the table into docs/benchmarks.md (between the bench:train markers).

Usage: python bench_train.py --sweep SWEEP_BIN
       python bench_train.py --torch-case PRESET WARM TIMED   (one PyTorch run, JSON out)
"""
import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time

import bench_data
from doc_sections import replace_section

PRESETS = {"tiny": (2, 128, 2), "mini": (4, 256, 4)}
CASES = [("tiny", 3, 24), ("mini", 2, 8)]
VOCAB, BATCH, SEQ = 21128, 16, 128
REPEATS = 2


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(warm, n, f):
    for _ in range(warm):
        f()
    t0, c0 = time.perf_counter(), cpu_seconds()
    for _ in range(n):
        f()
    wall = time.perf_counter() - t0
    return wall, (cpu_seconds() - c0) / wall


def torch_case(preset, warm, n):
    import torch
    from transformers import BertConfig, BertForQuestionAnswering
    torch.set_num_threads(os.cpu_count() or 1)
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
    mask = torch.ones_like(ids)

    def step():
        out = model(input_ids=ids, token_type_ids=types, attention_mask=mask,
                    start_positions=starts, end_positions=ends)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    secs, cores = timed(warm, n, step)
    model.eval()

    def forward():
        with torch.no_grad():
            model(input_ids=ids, token_type_ids=types, attention_mask=mask)

    eval_secs, eval_cores = timed(warm, n, forward)
    return {"ms_per_step": 1000 * secs / n, "examples_per_second": BATCH * n / secs, "cores_used": cores,
            "eval_ms_per_batch": 1000 * eval_secs / n, "eval_cores_used": eval_cores,
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def measured(cmd):
    """Runs cmd; its JSON output with the child's peak RSS (MiB) added."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed with exit code {proc.returncode}")
    r = json.loads(out.strip().splitlines()[-1])
    r["peak_rss_mib"] = usage.ru_maxrss / 1024
    return r


def torch_run(preset, warm, n):
    return measured([sys.executable, os.path.abspath(__file__), "--torch-case", preset, str(warm), str(n)])


def rust(bin_path, preset, warm, n):
    return measured([bin_path, "bench-train", "--preset", preset, "--vocab-size", str(VOCAB),
                     "--batch", str(BATCH), "--seq", str(SEQ), "--warmup", str(warm), "--steps", str(n)])


def best(runs, key):
    return min(runs, key=lambda r: r[key])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep")
    ap.add_argument("--torch-case", nargs=3, metavar=("PRESET", "WARM", "TIMED"))
    ap.add_argument("--doc", default=os.path.join(bench_data.HERE, "..", "docs", "benchmarks.md"))
    args = ap.parse_args()
    if args.torch_case:
        preset, warm, n = args.torch_case
        print(json.dumps(torch_case(preset, int(warm), int(n))))
        return
    if not args.sweep:
        ap.error("--sweep is required")
    rows = []
    for preset, warm, n in CASES:
        ours, theirs = [], []
        for _ in range(REPEATS):
            ours.append(rust(args.sweep, preset, warm, n))
            theirs.append(torch_run(preset, warm, n))
        rows.append((preset, ours, theirs))
        print(preset, json.dumps({"sweep": ours, "torch": theirs}), flush=True)
    layers = {k: f"{v[0]} layers, hidden {v[1]}" for k, v in PRESETS.items()}
    peer = rows[0][2][0]
    lines = [
        "<!-- bench:train:start -->",
        f"## Training step and evaluation forward on CPU (batch {BATCH}, sequence {SEQ}, vocab {VOCAB})",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {bench_data.cpu_name()}, {os.cpu_count()} cores",
        "- command: `make bench` (tools/bench_train.py → `sweep bench-train`, crates/qa-model/src/bench.rs)",
        f"- peer: PyTorch {peer['torch']} eager ({peer['threads']} threads), transformers "
        "BertForQuestionAnswering, AdamW, clip_grad_norm_; evaluation under `torch.no_grad()`; same shapes, "
        "random ids, dropout 0.1 on both sides in training",
        f"- each side in its own process, alternating, {REPEATS} runs each; the fastest run of each side is shown; "
        "cores = CPU time / wall time over the timed steps; RSS = the process's peak",
        "",
        "| preset | sweep train ms/step | PyTorch train ms/step | sweep / PyTorch | sweep cores | PyTorch cores "
        "| sweep eval ms/batch | PyTorch eval ms/batch | sweep / PyTorch (eval) | sweep peak RSS | PyTorch peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for preset, ours, theirs in rows:
        f, p = best(ours, "ms_per_step"), best(theirs, "ms_per_step")
        fe, pe = best(ours, "eval_ms_per_batch"), best(theirs, "eval_ms_per_batch")
        lines.append(
            f"| {preset} ({layers[preset]}) | {f['ms_per_step']:.0f} | {p['ms_per_step']:.0f} | "
            f"{f['ms_per_step'] / p['ms_per_step']:.2f}× | {f.get('cores_used') or float('nan'):.2f} | "
            f"{p['cores_used']:.2f} | {fe['eval_ms_per_batch']:.1f} | {pe['eval_ms_per_batch']:.1f} | "
            f"{fe['eval_ms_per_batch'] / pe['eval_ms_per_batch']:.2f}× | "
            f"{max(r['peak_rss_mib'] for r in ours):.0f} MiB | {max(r['peak_rss_mib'] for r in theirs):.0f} MiB |")
    lines += ["", "A ratio below 1× means sweep takes less time than PyTorch.", "<!-- bench:train:end -->"]
    section = "\n".join(lines)
    replace_section(args.doc, "<!-- bench:train:start -->", "<!-- bench:train:end -->", section)
    print(section)


if __name__ == "__main__":
    main()
