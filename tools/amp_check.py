"""`make amp-check`: mixed precision learns like f32. The tiny and mini presets trained on the
synthetic set in f32, bf16 and f16 (mixed precision, HF's --bf16/--fp16) with the same seeds,
through the release `sweep train`; per seed the F1 of each precision, and whether bf16/f16 stay
within 2 F1 points of f32 (per seed and on the mean). Writes the table into
docs/benchmarks.md (between the amp markers). Standard library only.

  python tools/amp_check.py --sweep target/release/sweep [--seeds 1 2 3] [--presets tiny mini]
                            [--work results/amp-check]
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess

from doc_sections import replace_section

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
START, END = "<!-- amp:start -->", "<!-- amp:end -->"
PRESETS = {
    "tiny": "max_steps: 300, warmup_steps: 30, learning_rate: 1.0e-3",
    "mini": "max_steps: 300, warmup_steps: 30, learning_rate: 5.0e-4",
}
PRECISIONS = ("f32", "bf16", "f16")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--work", default=os.path.join(ROOT, "results", "amp-check"))
    ap.add_argument("--docs", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args()
    w = args.work
    os.makedirs(w, exist_ok=True)
    train, dev, vocab = (os.path.join(w, f) for f in ("train.json", "dev.json", "vocab.txt"))
    subprocess.run([args.sweep, "data", "synth", "--out", train, "--questions", "2000", "--seed", "1"], check=True)
    subprocess.run([args.sweep, "data", "synth", "--out", dev, "--questions", "300", "--seed", "2"], check=True)
    subprocess.run([args.sweep, "data", "vocab", "--dataset", train, "--dataset", dev, "--out", vocab], check=True)
    results = {}
    for preset in args.presets:
        schedule = PRESETS[preset]
        for seed in args.seeds:
            for precision in PRECISIONS:
                d = os.path.join(w, f"{preset}-{precision}-seed{seed}")
                cfg = d + ".yaml"
                with open(cfg, "w") as f:
                    f.write(f"model: {{preset: {preset}, vocab: {vocab}}}\ndata: {{train: {train}, eval: {dev}}}\n"
                            f"train: {{seed: {seed}, batch_size: 16, eval_batch_size: 64, max_seq_length: 96, "
                            f"doc_stride: 32, logging_steps: 50, {schedule}, precision: {precision}}}\n")
                result = os.path.join(d, "result.json")
                if not os.path.isfile(result):
                    subprocess.run([args.sweep, "train", "--config", cfg, "--out", d], check=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                r = json.load(open(result))
                results[(preset, seed, precision)] = r
                print(f"{preset} seed {seed} {precision}: F1 {r['F1']:.2f} ({r['train_seconds']:.0f} s, "
                      f"{r.get('skipped_steps', 0)} skipped)", flush=True)
    lines = [START, "", "### Mixed precision against f32 on CPU (`make amp-check`)", "",
             f"Measured {datetime.date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} cores: "
             f"`python tools/amp_check.py --sweep target/release/sweep --presets {' '.join(args.presets)}`. The synthetic set (2000 training "
             "questions), 300 steps, batch 16, sequence 96, the same seed for each precision.", "",
             "| preset | seed | f32 F1 | bf16 F1 | f16 F1 | f16 skipped steps | f32 s | bf16 s | f16 s |",
             "|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    for preset in args.presets:
        for seed in args.seeds:
            r = {p: results[(preset, seed, p)] for p in PRECISIONS}
            lines.append(f"| {preset} | {seed} | {r['f32']['F1']:.2f} | {r['bf16']['F1']:.2f} | {r['f16']['F1']:.2f} | "
                         f"{r['f16'].get('skipped_steps', 0)} | {r['f32']['train_seconds']:.0f} | "
                         f"{r['bf16']['train_seconds']:.0f} | {r['f16']['train_seconds']:.0f} |")
        for p in ("bf16", "f16"):
            diffs = [results[(preset, s, p)]["F1"] - results[(preset, s, "f32")]["F1"] for s in args.seeds]
            mean = statistics.mean(diffs)
            verdicts.append(f"{preset} {p}: mean F1 difference to f32 {mean:+.2f} (per seed "
                            f"{', '.join(f'{d:+.2f}' for d in diffs)}); "
                            f"{'within' if abs(mean) <= 2 else 'NOT within'} 2 points")
    lines += [""] + [f"- {v}" for v in verdicts] + ["", END]
    text = "\n".join(lines)
    replace_section(args.docs, START, END, text)
    print(text)


if __name__ == "__main__":
    main()
