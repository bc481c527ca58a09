//! Claim verdicts: the analysis the runner itself uses to decide when to add seeds
//! (`stats::study`): per-seed paired differences (variant − baseline), the repeated 95%
//! interval (90% for `same` claims: TOST at α) of the study's seed plan (the classic paired
//! t interval for a fixed list of seeds, the group-sequential one otherwise), Holm's
//! step-down over the study's claims, futility, and what the seeds can detect
//! (`stats::power`). Next to it the fixed-sample paired t and unpaired (Welch) intervals
//! and the exact sign-flip permutation p-value, descriptive only, so what pairing buys is
//! visible.

use spec::{Claim, Expect};
use stats::claims::Decision;
use stats::fixed::{paired_t, sign_flip_p, welch, Interval};
use stats::study::{analyze, detectable, ArmCounts, ClaimOutcome, Detectable, Run, SdSource};

pub use stats::study::DEFAULT_MARGIN;

use crate::data::StudyData;

/// What the fixed-sample statistics are, said next to them.
pub const DESCRIPTIVE: &str = "They are descriptive only: their p-values and intervals assume the number of seeds was \
fixed in advance, which sequential seeds are not (in simulated null studies the paired p falls below 0.05 in about \
6% of them); the verdicts come from the repeated interval above.";

/// The heading of the list [`detectable_lines`] gives.
pub const DETECTABLE_HEADING: &str =
    "What these seeds can detect (80% power; σ is the sd of the per-seed differences):";

/// A claim's verdict and the reason in words.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Reproduced(String),
    Contradicted(String),
    /// More seeds could not decide it.
    Futile(String),
    /// Not decided with the seeds the study has.
    Inconclusive(String),
    /// Runs for the next look are still to come.
    Running(String),
    /// The runner found the variant identical to the baseline; the reason says why.
    NoEffectByConstruction(String),
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Reproduced(_) => "reproduced",
            Verdict::Contradicted(_) => "contradicted",
            Verdict::Futile(_) => "futile",
            Verdict::Inconclusive(_) => "inconclusive",
            Verdict::Running(_) => "running",
            Verdict::NoEffectByConstruction(_) => "no effect by construction",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Verdict::Reproduced(r)
            | Verdict::Contradicted(r)
            | Verdict::Futile(r)
            | Verdict::Inconclusive(r)
            | Verdict::Running(r)
            | Verdict::NoEffectByConstruction(r) => r,
        }
    }
}

/// One claim at one grid point, analysed.
#[derive(Debug, Clone)]
pub struct ClaimResult {
    pub claim: Claim,
    pub variant: String,
    pub baseline: String,
    pub outcome: ClaimOutcome,
    pub verdict: Verdict,
    /// Fixed-sample paired t 95% interval over the valid pairs.
    pub paired: Option<Interval>,
    /// Welch's 95% interval of the arms' means, ignoring the pairing.
    pub unpaired: Option<Interval>,
    pub sign_flip_p: Option<f64>,
    /// What the study's seeds can detect for this claim (σ from the first look, or
    /// `seeds.pilot_sd`); `None` for a claim with no effect by construction.
    pub detectable: Option<Detectable>,
}

impl ClaimResult {
    pub fn metric(&self) -> &str {
        self.claim.metric.label()
    }

    pub fn expect(&self) -> &'static str {
        match self.claim.expect {
            Expect::Higher => "higher",
            Expect::Lower => "lower",
            Expect::Same => "same",
        }
    }
}

/// What happened to an arm's runs, in words (`3 ok, 1 diverged, 1 failed`).
pub fn arm_text(c: &ArmCounts) -> String {
    let mut parts = vec![format!("{} ok", c.succeeded)];
    if c.diverged > 0 {
        parts.push(format!("{} diverged", c.diverged));
    }
    if c.failed > 0 {
        parts.push(format!("{} failed", c.failed));
    }
    if c.unfinished > 0 {
        parts.push(format!("{} unfinished", c.unfinished));
    }
    parts.join(", ")
}

/// The study's runs as the claims analysis reads them.
pub fn runs(data: &StudyData) -> Vec<Run> {
    data.variants
        .iter()
        .flat_map(|v| &v.rows)
        .map(|r| {
            Run::from_row(
                &r.variant,
                r.seed,
                r.status,
                crate::data::scores(r),
                r.duplicate_of.as_deref(),
                r.duplicate_reason.as_deref(),
            )
        })
        .collect()
}

/// Every claim at every grid point.
pub fn evaluate(data: &StudyData) -> Vec<ClaimResult> {
    let Some(study) = &data.spec else {
        return Vec::new();
    };
    let outcomes = analyze(study, &runs(data)).claims;
    let family = outcomes.iter().filter(|o| o.analysis.is_some()).count();
    let target_effect = match &study.seeds {
        spec::study::Seeds::Sequential(s) => s.target_effect,
        spec::study::Seeds::List(_) => None,
    };
    outcomes
        .into_iter()
        .map(|o| {
            let diffs: Vec<f64> = o
                .pairs
                .iter()
                .filter_map(|(_, d)| d.as_ref().ok().copied())
                .collect();
            let verdict = verdict(&o);
            let detectable = o.analysis.as_ref().map(|a| {
                let first = a.looks.first();
                let sd = first.map(|l| (l.sd, SdSource::FirstLook { pairs: l.n }));
                // The effect seen is the natural target of a claim not decided yet.
                let seen = a
                    .latest()
                    .filter(|_| {
                        !matches!(
                            a.decision,
                            Decision::Reproduced { .. } | Decision::Contradicted { .. }
                        )
                    })
                    .map(|l| l.mean.abs());
                detectable(study, &o.claim, family, sd, target_effect.or(seen))
            });
            ClaimResult {
                claim: o.claim.clone(),
                variant: o.variant.clone(),
                baseline: o.baseline.clone(),
                paired: paired_t(&diffs, 0.95),
                unpaired: welch(&o.variant_scores, &o.baseline_scores, 0.95),
                sign_flip_p: if diffs.is_empty() {
                    None
                } else {
                    sign_flip_p(&diffs)
                },
                verdict,
                detectable,
                outcome: o,
            }
        })
        .collect()
}

fn verdict(o: &ClaimOutcome) -> Verdict {
    if let Some(reason) = &o.by_construction {
        return Verdict::NoEffectByConstruction(reason.clone());
    }
    let dropped: Vec<String> = o
        .pairs
        .iter()
        .filter_map(|(s, d)| d.as_ref().err().map(|e| format!("seed {s}: {e}")))
        .collect();
    let note = if dropped.is_empty() {
        String::new()
    } else {
        format!(" (pairs dropped: {})", dropped.join("; "))
    };
    let Some(a) = &o.analysis else {
        return Verdict::Inconclusive("not analysed".into());
    };
    match &a.decision {
        Decision::Reproduced { why } => Verdict::Reproduced(format!("{why}{note}")),
        Decision::Contradicted { why } => Verdict::Contradicted(format!("{why}{note}")),
        Decision::Futile { why } => Verdict::Futile(format!("{why}{note}")),
        Decision::Undecided { why } => Verdict::Inconclusive(format!("{why}{note}")),
        Decision::Continue { next_seeds } => Verdict::Running(format!(
            "{} of {next_seeds} seeds for the next look are in{note}",
            o.pairs.len()
        )),
    }
}

/// The paragraph that says how the claims were decided.
pub fn method_text(data: &StudyData) -> String {
    let Some(study) = &data.spec else {
        return String::new();
    };
    let plan = match &study.seeds {
        spec::study::Seeds::List(l) => format!(
            "a fixed list of {} seeds: one look, the classic paired t interval",
            l.len()
        ),
        spec::study::Seeds::Sequential(s) => format!(
            "sequential seeds: looks after {:?} seeds, at most {}; a claim that is not decided gets its next look, \
             one that is decided or futile gets no more seeds. The interval is the group-sequential paired t \
             repeated confidence interval (Hwang–Shih–DeCani spending, γ = −2, at the planned looks; each look's \
             boundary is calibrated for the pairs it really has, exactly by the t distribution at the first look and \
             by 400,000 simulated null paths after it), valid at every look whatever runs fail",
            study.seeds.looks(),
            s.max
        ),
    };
    format!(
        "Each claim pairs the variant's run with the baseline's run of the same seed (difference = variant − baseline). \
         Seeds: {plan}. Directional claims are decided when the repeated {:.0}% interval lies on one side of 0; `same` \
         claims are two one-sided tests, each at α: equivalent when the repeated {:.0}% interval lies inside ± the \
         claim's margin (default {DEFAULT_MARGIN} point), different when it lies outside. Holm's step-down over the \
         study's claims keeps the family-wise error rate at α = {}: the p column shows each claim's repeated p-value \
         (found by bisection on the same boundaries as the interval) and, in parentheses, the Holm-adjusted one. \
         Failed runs give no pair; diverged runs count with {} (`diverged_runs`). docs/report.md has the method, its \
         sources and its simulated error rates.",
        100.0 * (1.0 - study.alpha),
        100.0 * (1.0 - 2.0 * study.alpha),
        study.alpha,
        match study.diverged_runs {
            spec::study::DivergedRuns::Score => {
                "the score they ended with, or 0 points when they ended before any evaluation"
            }
            spec::study::DivergedRuns::Exclude => "no pair either",
        }
    )
}

/// What each claim's seeds can detect, one line per claim (the report's list under the
/// verdicts).
pub fn detectable_lines(data: &StudyData, claims: &[ClaimResult]) -> Vec<String> {
    let study_max_seeds = data
        .spec
        .as_ref()
        .and_then(|s| s.seeds.looks().last().copied())
        .unwrap_or(0);
    claims
        .iter()
        .filter_map(|c| {
            let d = c.detectable.as_ref()?;
            Some(format!(
                "{} vs {} ({} {}): {}",
                c.variant,
                c.baseline,
                c.metric(),
                c.expect(),
                d.sentence(study_max_seeds)
            ))
        })
        .collect()
}

/// The main row of a claim: comparison, claim, verdict, pairs, repeated interval, p (Holm).
pub fn main_row(c: &ClaimResult) -> [String; 7] {
    let (interval, p) = match c.outcome.analysis.as_ref() {
        Some(a) => (
            a.latest().map_or("–".into(), |l| {
                format!(
                    "{:+.2} [{:+.2}, {:+.2}] ({:.0}%)",
                    l.mean,
                    l.low,
                    l.high,
                    100.0 * l.confidence
                )
            }),
            format!("{:.3} ({:.3})", a.p, a.p_holm),
        ),
        None => ("–".into(), "–".into()),
    };
    [
        format!("{} vs {}", c.variant, c.baseline),
        format!("{} {}", c.metric(), c.expect()),
        c.verdict.label().to_string(),
        c.outcome.seeds_used().to_string(),
        interval,
        p,
        c.verdict.reason().to_string(),
    ]
}

/// The detail row: fixed-sample paired and unpaired intervals, the sign-flip p-value and
/// what happened to each arm's runs.
pub fn detail_row(c: &ClaimResult) -> [String; 6] {
    let iv = |i: &Option<Interval>| {
        i.map_or("–".into(), |i| {
            format!(
                "{:+.2} [{:+.2}, {:+.2}] (p {:.3})",
                i.estimate, i.low, i.high, i.p
            )
        })
    };
    [
        format!("{} vs {}", c.variant, c.baseline),
        iv(&c.paired),
        iv(&c.unpaired),
        c.sign_flip_p.map_or("–".into(), |p| format!("{p:.3}")),
        arm_text(&c.outcome.variant_counts),
        arm_text(&c.outcome.baseline_counts),
    ]
}
