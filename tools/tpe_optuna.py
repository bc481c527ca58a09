"""Optuna's TPESampler on the test functions of crates/search/examples/tpe_bench.rs, with
the same budget and repeats (seeds 0, 1, ...): one JSON line per function, as that example
prints them. Run by `make bench-search`; needs optuna (tools/requirements.txt). `--compare OURS THEIRS`
prints the Markdown table of docs/benchmarks.md from both outputs."""

import json
import math
import sys
import time

import optuna


def branin(x):
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x[1] - b * x[0] ** 2 + c * x[0] - 6) ** 2 + 10 * (1 - t) * math.cos(x[0]) + 10


ALPHA = [1.0, 1.2, 3.0, 3.2]
A = [
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
]
P = [
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
]


def hartmann6(x):
    return -sum(
        ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j] * 1e-4) ** 2 for j in range(6)))
        for i in range(4)
    )


FUNCTIONS = [
    ("branin", branin, [(-5.0, 10.0), (0.0, 15.0)]),
    ("hartmann6", hartmann6, [(0.0, 1.0)] * 6),
]


def main():
    budget = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name, f, bounds in FUNCTIONS:
        started = time.time()
        bests = []
        for seed in range(repeats):
            sampler = optuna.samplers.TPESampler(seed=seed)  # n_startup_trials=10, univariate

            def objective(trial):
                return f([trial.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)])

            study = optuna.create_study(direction="minimize", sampler=sampler)
            study.optimize(objective, n_trials=budget)
            bests.append(study.best_value)
        ordered = sorted(bests)
        n = len(ordered)
        median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
        print(json.dumps({"function": name, "method": f"optuna {optuna.__version__} TPESampler",
                          "budget": budget, "repeats": repeats, "median_best": median,
                          "bests": bests, "seconds": time.time() - started}))



def mann_whitney_p_worse(ours, theirs):
    """One-sided p-value (normal approximation, ties averaged) that `ours` tends to be
    larger (worse, minimizing) than `theirs`."""
    pooled = sorted((v, k) for k, vs in ((0, ours), (1, theirs)) for v in vs)
    ranks = [0.0] * len(pooled)
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    n1, n2 = len(ours), len(theirs)
    r1 = sum(r for r, (_, k) in zip(ranks, pooled) if k == 0)
    u = r1 - n1 * (n1 + 1) / 2
    z = (u - n1 * n2 / 2) / math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    return 0.5 * math.erfc(z / math.sqrt(2))


def compare(ours_path, theirs_path):
    """A Markdown table of both files' JSON lines: median best per function, method and
    budget, and the one-sided Mann-Whitney p that qa-sweep's TPE is worse than Optuna's."""
    rows = [json.loads(l) for p in (ours_path, theirs_path) for l in open(p) if l.strip()]
    print("| function | budget | repeats | qa-sweep TPE median best | Optuna TPE median best | qa-sweep random median best | p (qa-sweep TPE worse) |")
    print("|---|---|---|---|---|---|---|")
    keys = sorted({(r["function"], r["budget"]) for r in rows})
    for f, b in keys:
        pick = lambda prefix: next(r for r in rows if r["function"] == f and r["budget"] == b and r["method"].startswith(prefix))
        ours, rnd, opt = pick("qa-sweep tpe"), pick("qa-sweep random"), pick("optuna")
        p = mann_whitney_p_worse(ours["bests"], opt["bests"])
        print(f"| {f} | {b} | {ours['repeats']} | {ours['median_best']:.4f} | {opt['median_best']:.4f} | {rnd['median_best']:.4f} | {p:.2f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        main()
