//! Fixed-sample statistics over seeds: summaries, Welch's interval (unpaired), the paired t
//! interval and test, an exact sign-flip permutation test, two one-sided tests (TOST) for
//! equivalence, and Holm's step-down over several claims. Each equals scipy's on the
//! committed reference cases (tests/scipy_reference.rs, made by tools/stats_reference.py).

use crate::dist::{t_cdf, t_quantile};

/// Summary of one metric over the seeds of a variant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for one value.
    pub std: f64,
    /// Half-width of the 95% interval of the mean (NaN for one value).
    pub ci95: f64,
}

pub fn summarize(values: &[f64]) -> Option<Summary> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let std = sample_std(values, mean);
    let ci95 = if n > 1 {
        t_quantile(0.975, (n - 1) as f64) * std / (n as f64).sqrt()
    } else {
        f64::NAN
    };
    Some(Summary { n, mean, std, ci95 })
}

fn sample_std(values: &[f64], mean: f64) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
}

/// An estimate with its two-sided interval and p-value (H0: the true value is 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    /// Degrees of freedom of the t reference (Welch–Satterthwaite for unpaired).
    pub df: f64,
    pub p: f64,
}

/// The interval of `estimate` with standard error `se` and `df` degrees of freedom at
/// confidence `level`; a zero standard error gives the exact point (p 0 or 1).
fn t_interval(estimate: f64, se: f64, df: f64, level: f64) -> Interval {
    if se == 0.0 {
        return Interval {
            estimate,
            low: estimate,
            high: estimate,
            df,
            p: if estimate == 0.0 { 1.0 } else { 0.0 },
        };
    }
    let half = t_quantile(0.5 + level / 2.0, df) * se;
    let t = estimate / se;
    Interval {
        estimate,
        low: estimate - half,
        high: estimate + half,
        df,
        p: (2.0 * (1.0 - t_cdf(t.abs(), df))).min(1.0),
    }
}

/// Welch's interval for mean(a) − mean(b) (unequal variances); `None` with fewer than two
/// values on a side.
pub fn welch(a: &[f64], b: &[f64], level: f64) -> Option<Interval> {
    let (sa, sb) = (summarize(a)?, summarize(b)?);
    if sa.n < 2 || sb.n < 2 {
        return None;
    }
    let (va, vb) = (sa.std.powi(2) / sa.n as f64, sb.std.powi(2) / sb.n as f64);
    let se = (va + vb).sqrt();
    let df = if se == 0.0 {
        f64::INFINITY
    } else {
        (va + vb).powi(2) / (va.powi(2) / (sa.n - 1) as f64 + vb.powi(2) / (sb.n - 1) as f64)
    };
    Some(t_interval(sa.mean - sb.mean, se, df, level))
}

/// The paired t interval of the mean difference (`d` = variant − baseline per seed);
/// `None` with fewer than two pairs.
pub fn paired_t(d: &[f64], level: f64) -> Option<Interval> {
    let s = summarize(d)?;
    if s.n < 2 {
        return None;
    }
    Some(t_interval(
        s.mean,
        s.std / (s.n as f64).sqrt(),
        (s.n - 1) as f64,
        level,
    ))
}

/// The exact two-sided sign-flip permutation p-value of the mean difference: the share of
/// the 2^n sign patterns whose |mean| is at least the observed one (n ≤ 20; above, 2^16
/// random patterns from a fixed seed). Distribution-free under symmetric differences; its
/// smallest possible value is 2/2^n (0.25 with 3 seeds).
pub fn sign_flip_p(d: &[f64]) -> Option<f64> {
    let n = d.len();
    if n == 0 {
        return None;
    }
    let observed = d.iter().sum::<f64>().abs();
    // Sums compared with a tolerance of a few ulps: ties count as extreme (conservative).
    let tol = 1e-9 * d.iter().map(|x| x.abs()).sum::<f64>().max(1e-300);
    let extreme = |signs: u64| {
        let s: f64 = d
            .iter()
            .enumerate()
            .map(|(i, x)| if signs >> i & 1 == 1 { -x } else { *x })
            .sum();
        s.abs() >= observed - tol
    };
    if n <= 20 {
        let total = 1u64 << n;
        let count = (0..total).filter(|&s| extreme(s)).count();
        Some(count as f64 / total as f64)
    } else {
        let mut rng = crate::rng::Rng::new(0x5166_5EED);
        let draws = 1 << 16;
        let mut count = 1; // the observed pattern itself
        for _ in 0..draws {
            let mut signs = 0u64;
            for i in 0..n.min(64) {
                if rng.next_u64() & 1 == 1 {
                    signs |= 1 << i;
                }
            }
            if extreme(signs) {
                count += 1;
            }
        }
        Some(count as f64 / (draws + 1) as f64)
    }
}

/// Two one-sided tests of equivalence within ±`margin` for the paired mean difference:
/// H0⁻: μ ≤ −margin and H0⁺: μ ≥ margin, each a one-sided t test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tost {
    pub p_lower: f64,
    pub p_upper: f64,
    /// max(p_lower, p_upper): equivalence at one-sided level a when p < a.
    pub p: f64,
}

pub fn tost(d: &[f64], margin: f64) -> Option<Tost> {
    let s = summarize(d)?;
    if s.n < 2 {
        return None;
    }
    let se = s.std / (s.n as f64).sqrt();
    let df = (s.n - 1) as f64;
    let (p_lower, p_upper) = if se == 0.0 {
        (
            if s.mean > -margin { 0.0 } else { 1.0 },
            if s.mean < margin { 0.0 } else { 1.0 },
        )
    } else {
        (
            1.0 - t_cdf((s.mean + margin) / se, df),
            t_cdf((s.mean - margin) / se, df),
        )
    };
    Some(Tost {
        p_lower,
        p_upper,
        p: p_lower.max(p_upper),
    })
}

/// Holm's step-down adjusted p-values (in input order) and which are rejected at
/// family-wise level `alpha`: sort ascending, adjust p₍ᵢ₎ by (m − i + 1), keep them
/// monotone; rejected while the adjusted value stays ≤ alpha.
pub fn holm(p: &[f64], alpha: f64) -> Vec<(f64, bool)> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]).then(a.cmp(&b)));
    let mut adjusted = vec![1.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        let a = ((m - rank) as f64 * p[i]).min(1.0);
        running = running.max(a);
        adjusted[i] = running;
    }
    adjusted.into_iter().map(|a| (a, a <= alpha)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_matches_a_hand_computation() {
        // a = [1,2,3], b = [4,5,6,7]: diff −3.5, se = sqrt(1/3 + 1.6667/4) = 0.866, df ≈ 4.96.
        let d = welch(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0, 7.0], 0.95).unwrap();
        assert!((d.estimate + 3.5).abs() < 1e-12);
        assert!((d.df - 4.959_184).abs() < 1e-5, "{}", d.df);
        let half = d.high - d.estimate;
        assert!((half - t_quantile(0.975, d.df) * 0.866_025_403_8).abs() < 1e-6);
        assert!(welch(&[1.0], &[2.0, 3.0], 0.95).is_none());
        let exact = welch(&[2.0, 2.0], &[1.0, 1.0], 0.95).unwrap();
        assert_eq!((exact.low, exact.high), (1.0, 1.0));
    }

    #[test]
    fn summaries() {
        let s = summarize(&[10.0, 12.0]).unwrap();
        assert!((s.std - 2f64.sqrt()).abs() < 1e-12);
        assert!((s.ci95 - 12.706_204_736 * 2f64.sqrt() / 2f64.sqrt()).abs() < 1e-6);
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn sign_flips_count_every_pattern() {
        // All positive, n = 3: only the two all-same patterns are as extreme → 2/8.
        assert_eq!(sign_flip_p(&[1.0, 2.0, 3.0]), Some(0.25));
        assert_eq!(sign_flip_p(&[0.0, 0.0]), Some(1.0));
    }

    #[test]
    fn holm_steps_down() {
        let r = holm(&[0.01, 0.04, 0.03, 0.005], 0.05);
        let adj: Vec<f64> = r.iter().map(|x| x.0).collect();
        // sorted: 0.005×4=0.02, 0.01×3=0.03, 0.03×2=0.06, 0.04×1 → max(0.06, 0.04)=0.06
        assert_eq!(adj, [0.03, 0.06, 0.06, 0.02]);
        assert_eq!(
            r.iter().map(|x| x.1).collect::<Vec<_>>(),
            [true, false, false, true]
        );
    }
}
