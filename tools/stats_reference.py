"""scipy's answers for the fixed-sample statistics of the `stats` crate, on seeded random cases:
paired t (interval and p), Welch's unpaired interval and p, the exact sign-flip permutation
p-value, two one-sided tests (TOST) and Holm's adjusted p-values (statsmodels). Written to
crates/stats/tests/fixtures/scipy_cases.json, which tests/scipy_reference.rs compares with;
CI needs no Python.

  python tools/stats_reference.py > crates/stats/tests/fixtures/scipy_cases.json
"""
import json

import numpy as np
import scipy
from scipy import stats
from statsmodels.stats.multitest import multipletests


def main():
    rng = np.random.default_rng(20261202)
    cases = []
    for i in range(40):
        n = int(rng.integers(3, 13))
        shift = float(rng.choice([0.0, 0.5, 2.0, -3.0]))
        scale = float(rng.choice([0.3, 1.0, 5.0]))
        d = np.round(shift + scale * rng.standard_normal(n), 6)
        b = np.round(60 + 5 * rng.standard_normal(int(rng.integers(2, 10))), 6)
        a = np.round(60 + shift + 5 * rng.standard_normal(int(rng.integers(2, 10))), 6)
        margin = float(rng.choice([0.5, 1.0, 3.0]))
        one = stats.ttest_1samp(d, 0.0)
        ci = one.confidence_interval(0.95)
        welch = stats.ttest_ind(a, b, equal_var=False)
        wci = welch.confidence_interval(0.95)
        lower = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
        upper = stats.ttest_1samp(d, margin, alternative="less").pvalue
        case = {
            "d": d.tolist(), "a": a.tolist(), "b": b.tolist(), "margin": margin,
            "paired": {"mean": float(d.mean()), "low": float(ci.low), "high": float(ci.high), "p": float(one.pvalue)},
            "welch": {"diff": float(a.mean() - b.mean()), "low": float(wci.low), "high": float(wci.high),
                      "p": float(welch.pvalue), "df": float(welch.df)},
            "tost": {"p_lower": float(lower), "p_upper": float(upper)},
        }
        if n <= 12:
            perm = stats.permutation_test((d,), np.mean, permutation_type="samples", alternative="two-sided",
                                          n_resamples=np.inf)
            case["sign_flip_p"] = float(perm.pvalue)
        cases.append(case)
    holm = []
    for i in range(10):
        m = int(rng.integers(2, 7))
        p = np.round(rng.uniform(0, 0.2, m), 6)
        rej, adj, _, _ = multipletests(p, alpha=0.05, method="holm")
        holm.append({"p": p.tolist(), "adjusted": adj.tolist(), "rejected": [bool(x) for x in rej]})
    print(json.dumps({"scipy": scipy.__version__, "cases": cases, "holm": holm}, indent=1))


if __name__ == "__main__":
    main()
