//! Expected validation performance (Dodge et al. 2019, "Show Your Work"): the expected best
//! validation score after trying n hyperparameter configurations, as a curve over n, so two
//! models compare at every tuning budget, not only at the best of everything tried.
//!
//! With N observed scores v₍₁₎ ≤ … ≤ v₍N₎, the estimate at n is the U-statistic
//! Σᵢ v₍ᵢ₎ · C(i−1, n−1) / C(N, n): the mean of the maximum over all subsets of size n,
//! unbiased for drawing n configurations without replacement from those tried (Tang et al.
//! 2020, "Showing Your Work Doesn't Always Work", ACL; Dodge et al.'s original formula,
//! [`expected_max_with_replacement`], draws with replacement and is biased low for n close
//! to N).
//!
//! The estimand: the expected best *seed-mean* score among n of the N configurations
//! tried (each configuration's score is its mean over seeds). Its band is the seed noise in
//! that estimate: the 2.5 % and 97.5 % percentiles over resamples of each configuration's
//! seeds (with replacement, configurations kept). Resampling the N configurations
//! instead, as the percentile bootstrap of a maximum does, is degenerate at n = N (every
//! resample's best is at most the observed best) and says nothing about seeds.

use crate::rng::Rng;

/// The unbiased estimate of E[max of n of the scores], 1 ≤ n ≤ N.
pub fn expected_max(scores: &[f64], n: usize) -> Option<f64> {
    let total = scores.len();
    if n == 0 || n > total {
        return None;
    }
    let mut v = scores.to_vec();
    v.sort_by(f64::total_cmp);
    // w_i = C(i−1, n−1) / C(N, n), computed as a running ratio to stay in floating range.
    let mut sum = 0.0;
    let mut w = 0.0;
    for i in n..=total {
        w = if i == n {
            // C(n−1, n−1)/C(N, n) = 1/C(N, n) = n!(N−n)!/N!
            (0..n).fold(1.0, |acc, j| acc * (n - j) as f64 / (total - j) as f64)
        } else {
            // C(i−1, n−1) = C(i−2, n−1) · (i−1)/(i−n)
            w * (i - 1) as f64 / (i - n) as f64
        };
        sum += w * v[i - 1];
    }
    Some(sum)
}

/// Dodge et al.'s with-replacement estimate Σ v₍ᵢ₎ [(i/N)ⁿ − ((i−1)/N)ⁿ].
pub fn expected_max_with_replacement(scores: &[f64], n: usize) -> Option<f64> {
    let total = scores.len();
    if n == 0 || total == 0 {
        return None;
    }
    let mut v = scores.to_vec();
    v.sort_by(f64::total_cmp);
    let big = total as f64;
    Some(
        v.iter()
            .enumerate()
            .map(|(i, x)| {
                x * (((i + 1) as f64 / big).powi(n as i32) - (i as f64 / big).powi(n as i32))
            })
            .sum(),
    )
}

/// One point of the curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    pub n: usize,
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

/// The curve for n = 1..=N over `configurations` (each one's scores over seeds), with
/// seed-bootstrap bands (`resamples` resamples, fixed seed). Configurations with a single
/// seed contribute no seed noise; with every configuration at one seed the band is the
/// curve itself.
pub fn curve(configurations: &[Vec<f64>], resamples: usize) -> Vec<CurvePoint> {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let configurations: Vec<&Vec<f64>> = configurations.iter().filter(|c| !c.is_empty()).collect();
    let means: Vec<f64> = configurations.iter().map(|c| mean(c)).collect();
    let total = means.len();
    let mut rng = Rng::new(0x00E7_9C11);
    let boots: Vec<Vec<f64>> = (0..resamples)
        .map(|_| {
            configurations
                .iter()
                .map(|seeds| {
                    let drawn: Vec<f64> = (0..seeds.len())
                        .map(|_| seeds[rng.below(seeds.len())])
                        .collect();
                    mean(&drawn)
                })
                .collect()
        })
        .collect();
    (1..=total)
        .filter_map(|n| {
            let mean = expected_max(&means, n)?;
            let mut b: Vec<f64> = boots.iter().filter_map(|s| expected_max(s, n)).collect();
            b.sort_by(f64::total_cmp);
            let q = |p: f64| {
                if b.is_empty() {
                    mean
                } else {
                    b[((p * (b.len() - 1) as f64).round() as usize).min(b.len() - 1)]
                }
            };
            Some(CurvePoint {
                n,
                mean,
                low: q(0.025).min(mean),
                high: q(0.975).max(mean),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The estimator equals the brute-force mean of the maximum over every subset.
    #[test]
    fn unbiased_estimate_is_the_mean_over_subsets() {
        let s = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6];
        for n in 1..=s.len() {
            let mut total = 0.0;
            let mut count = 0;
            for mask in 0u32..(1 << s.len()) {
                if mask.count_ones() as usize == n {
                    let m = (0..s.len())
                        .filter(|i| mask >> i & 1 == 1)
                        .map(|i| s[i])
                        .fold(f64::NEG_INFINITY, f64::max);
                    total += m;
                    count += 1;
                }
            }
            let want = total / count as f64;
            let got = expected_max(&s, n).unwrap();
            assert!((got - want).abs() < 1e-12, "n {n}: {got} vs {want}");
        }
        let mean = s.iter().sum::<f64>() / 6.0;
        assert!((expected_max(&s, 1).unwrap() - mean).abs() < 1e-12);
        assert_eq!(expected_max(&s, 6), Some(9.0));
        // With replacement it is lower at n = N.
        assert!(expected_max_with_replacement(&s, 6).unwrap() < 9.0);
    }

    #[test]
    fn curve_rises_and_bands_contain_it() {
        let s: Vec<Vec<f64>> = [60.0, 62.0, 55.0, 64.0, 61.0, 58.0, 63.0]
            .iter()
            .map(|&m| vec![m - 1.5, m + 0.5, m + 1.0])
            .collect();
        let c = curve(&s, 200);
        assert_eq!(c.len(), 7);
        for w in c.windows(2) {
            assert!(w[1].mean >= w[0].mean);
        }
        assert!(c
            .iter()
            .all(|p| p.low <= p.mean + 1e-9 && p.mean <= p.high + 1e-9));
        // Seed noise keeps the band open at n = N, where resampling configurations could not.
        let last = c[6];
        assert!(last.high - last.low > 0.5, "{last:?}");
        // With one seed per configuration there is no seed noise to show.
        let single: Vec<Vec<f64>> = s.iter().map(|v| vec![v[0]]).collect();
        assert!(curve(&single, 50)
            .iter()
            .all(|p| p.low == p.mean && p.high == p.mean));
    }
}
