"""Markdown tables for docs/benchmarks.md from scripts/gpu-check.sh's summary.jsonl:
preflight, parity (max |Δ| against HF's logits, fused and unfused), throughput (burn next to
PyTorch per batch and precision: ms/step, examples/s, TFLOP/s, MFU, peak memory, first step)
and the short training run. Standard library only (runs on the GPU machine).

  python gpu_summary.py OUT/summary.jsonl > OUT/summary.md
"""
import json
import sys

SHAPES = {"tiny": (2, 128, 2), "mini": (4, 256, 4), "small": (4, 512, 8), "base": (12, 768, 12)}
PEAKS = {"bf16": 989.4, "tf32": 494.7}  # H100/H200 SXM dense TFLOP/s


def fused(r):
    """Whether a `sweep check-logits`/`bench-train` line ran with kernel fusion: its `backend`
    ends in `-unfused` when not (check-logits printed a `fusion` flag before 2026-12-04)."""
    if "fusion" in r:
        return bool(r["fusion"])
    return not r.get("backend", "").endswith("-unfused")


def step_flops(preset, batch, seq):
    layers, hidden, _ = SHAPES[preset]
    return 3 * layers * (24 * batch * seq * hidden * hidden + 4 * batch * seq * seq * hidden)


def fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else "–"


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip().startswith("{")]
    out = []
    pre = [r for r in rows if "cuda_path" in r]
    if pre:
        p = pre[0]
        out += [f"Preflight: CUDA headers from {p['source']} (`{p['cuda_path']}`), NVRTC {p['nvrtc_version']}, "
                f"driver CUDA {p['driver_cuda_version']}.", ""]
    parity = [r for r in rows if "max_abs_diff" in r]
    if parity:
        out += ["| fixture | precision | fusion | max abs diff vs HF | tolerance | ok |", "|---|---|---|---|---|---|"]
        for r in parity:
            out.append(f"| {r['model'].rstrip('/').split('/')[-1]} | {r.get('precision', 'f32')} | "
                       f"{'on' if fused(r) else 'off'} | {r['max_abs_diff']:.2e} | "
                       f"{r.get('tolerance', '–')} | {r['ok']} |")
        out.append("")
    mem = {r["memory"]: r["peak_mib"] for r in rows if "memory" in r}
    bench = [r for r in rows if "ms_per_step" in r]
    if bench:
        out += ["| impl | precision | batch | seq | ms/step | examples/s | TFLOP/s | MFU | peak memory | first step |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(bench, key=lambda r: (r.get("batch", 0) != 32, r.get("batch", 0), r.get("precision", ""))):
            if "impl" in r:
                impl, tflops, mfu = r["impl"], r.get("tflops"), r.get("mfu")
                memory = f"{r['peak_memory_gib']:.1f} GiB" if "peak_memory_gib" in r else "–"
            else:
                impl = f"burn {r.get('backend', '')}"
                tflops = step_flops(r["preset"], r["batch"], r["seq"]) / (r["ms_per_step"] / 1000) / 1e12
                peak = PEAKS["tf32" if r.get("precision") == "f32" else "bf16"]
                mfu = tflops / peak
                fusion = "1" if fused(r) else "0"
                key = f"burn-b{r['batch']}-{r.get('precision')}-fusion{fusion}"
                memory = f"{mem[key] / 1024:.1f} GiB (nvidia-smi)" if key in mem else "–"
            out.append(f"| {impl} | {r.get('precision', 'f32')} | {r.get('batch')} | {r.get('seq')} | "
                       f"{r['ms_per_step']:.1f} | {r['examples_per_second']:.1f} | {fmt(tflops, '.1f')} | "
                       f"{fmt(mfu, '.1%')} | {memory} | {fmt(r.get('first_step_ms'), '.0f')} ms |")
        out.append("")
    train = [r for r in rows if "train_loss" in r]
    for r in train:
        out += [f"Training run (mini, synthetic, 1 epoch): EM {r['EM']:.2f}, F1 {r['F1']:.2f}, train loss "
                f"{r['train_loss']:.4f}, {r['steps']} steps in {r['train_seconds']:.1f} s "
                f"({r['examples_per_second']:.0f} examples/s).", ""]
    failed = [r for r in rows if "error" in r or r.get("skipped")]
    if failed:
        out += ["Not measured: " + "; ".join(f"{r.get('step') or r.get('precision')}: "
                                            f"{r.get('error') or r.get('skipped')}" for r in failed), ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
