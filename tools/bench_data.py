"""`make bench` for the data layer: qa-data (Rust) next to HF transformers' fast tokenizer with
run_qa-style Python feature code and the Python official metric, in the same run, on the
same machine. Writes the table into docs/benchmarks.md (between the bench:data markers).

Usage: python bench_data.py --shared testdata --rust-bin target/release/examples/bench_data
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cmrc2018_metric  # noqa: E402
import hf_features  # noqa: E402
from doc_sections import replace_section  # noqa: E402


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def python_features(dataset, vocab, repeat):
    tok = hf_features.make_tokenizer(vocab, False)
    rows = hf_features.flatten(dataset)
    out = {}
    for name, fn in [("train", hf_features.prepare_train), ("eval", hf_features.prepare_validation)]:
        best, n = None, 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            n = 0
            for b in range(0, len(rows), 1000):
                n += len(fn(tok, hf_features.columns(rows[b:b + 1000]), 384, 128)["input_ids"])
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        out[name] = {"features": n, "seconds": best, "features_per_second": n / best}
    return out


def python_metric(dataset, predictions, repeat):
    with open(dataset, encoding="utf-8") as f:
        gold = json.load(f)
    with open(predictions, encoding="utf-8") as f:
        preds = json.load(f)
    best, res = None, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = cmrc2018_metric.evaluate(gold, preds)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return {"questions": res["TOTAL"], "seconds": best, "questions_per_second": res["TOTAL"] / best,
            "EM": res["EM"], "F1": res["F1"]}


def rust(bin_path, dataset, vocab, predictions, repeat, threads=None):
    env = dict(os.environ)
    if threads:
        env["RAYON_NUM_THREADS"] = str(threads)
    out = subprocess.run([bin_path, dataset, vocab, predictions, "--repeat", str(repeat)],
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", required=True)
    ap.add_argument("--rust-bin", required=True)
    ap.add_argument("--doc", default=os.path.join(HERE, "..", "docs", "benchmarks.md"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    dataset = os.path.join(args.shared, "drcd", "DRCD_test.json")
    vocab = os.path.join(args.shared, "vocab", "bert-base-chinese-vocab.txt")
    fixture = os.path.join(HERE, "..", "crates", "qa-data", "tests", "fixtures", "metric_DRCD_test.json")
    with open(fixture, encoding="utf-8") as f:
        per_question = json.load(f)["per_question"]
    preds_file = os.path.join(tempfile.mkdtemp(), "predictions.json")
    with open(preds_file, "w", encoding="utf-8") as f:
        json.dump({k: v[0] for k, v in per_question.items()}, f, ensure_ascii=False)

    r2 = rust(args.rust_bin, dataset, vocab, preds_file, args.repeat)
    r1 = rust(args.rust_bin, dataset, vocab, preds_file, args.repeat, threads=1)
    py_feat = python_features(dataset, vocab, args.repeat)
    py_metric = python_metric(dataset, preds_file, args.repeat)
    assert abs(py_metric["F1"] - round(r2["metric"]["F1"], 3)) < 0.01, (py_metric, r2["metric"])

    import tokenizers
    import transformers
    rows = []
    for name, key in [("train features (384/128)", "train"), ("eval features (384/128)", "eval")]:
        hf = py_feat[key]["features_per_second"]
        rows.append((name, "features/s", r2[key]["features_per_second"], r1[key]["features_per_second"], hf,
                     "HF fast tokenizer + run_qa-style Python"))
    rows.append(("official EM/F1", "questions/s", r2["metric"]["questions_per_second"],
                 r1["metric"]["questions_per_second"], py_metric["questions_per_second"],
                 "Python port of cmrc2018_evaluate.py"))
    lines = [
        "<!-- bench:data:start -->",
        "## Data layer: features and metric (DRCD test, 3493 questions)",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {cpu_name()}, {os.cpu_count()} cores",
        f"- command: `make bench` (tools/bench_data.py; best of {args.repeat})",
        f"- peers: transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, "
        f"Python {platform.python_version()}; HF tokenizer called in batches of 1000 like datasets.map",
        "",
        "| work | unit | qa-data (2 threads) | qa-data (1 thread) | peer | ratio (2 threads) | ratio (1 thread) | peer is |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, unit, a, b, p, peer in rows:
        lines.append(f"| {name} | {unit} | {a:,.0f} | {b:,.0f} | {p:,.0f} | {a / p:.1f}× | {b / p:.1f}× | {peer} |")
    lines += [
        "",
        f"Features: {r2['train']['features']} train and {r2['eval']['features']} eval windows, identical to "
        "HF's (see qa-data's hf_parity tests). Ratio = qa-data throughput / peer throughput (> 1: qa-data is faster). Targets: ≥ 5× HF's feature throughput, ≥ 50× the Python metric.",
        "Most of the feature speed-up comes from tokenising each paragraph once instead of once per question.",
        "<!-- bench:data:end -->",
    ]
    section = "\n".join(lines)
    replace_section(args.doc, "<!-- bench:data:start -->", "<!-- bench:data:end -->", section)
    print(section)


if __name__ == "__main__":
    main()
