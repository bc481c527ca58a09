//! A study's claims from its runs: which seeds each variant runs now, each claim's pairs,
//! counts of what happened to each arm, and the decisions ([`crate::claims::decide`]).
//! The runner uses it to add seeds to undecided claims; the report shows the same result.
//!
//! Pairs: seed s of a claim pairs the variant's run with the baseline's run at the same grid
//! point. A pair is used once both runs are final: succeeded, or diverged (counted with the
//! score it ended with, or dropped, as the study's `diverged_runs` says). A run that failed
//! (crashed, out of memory, timed out) gives no score: its pair is dropped and counted,
//! never silently. Looks use the seeds in order, so a claim waits while an earlier seed of
//! either arm is still running.

use std::collections::BTreeMap;

use spec::protocol::TrialStatus;
use spec::study::DivergedRuns;
use spec::{Claim, ClaimMetric, Expect, Study, BASELINE};

use crate::claims::{decide_with, ClaimAnalysis, ClaimData, Decision, Options, PValues};
use crate::sequential::Design;

/// The default margin of `same` claims, in metric points.
pub const DEFAULT_MARGIN: f64 = 1.0;

/// What a run ended with, by claim metric.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    pub em: Option<f64>,
    pub f1: Option<f64>,
    pub train_loss: Option<f64>,
    pub train_seconds: Option<f64>,
    pub examples_per_second: Option<f64>,
    /// `result.json`'s `metrics`, by name.
    pub reported: Vec<(String, f64)>,
}

impl Scores {
    pub fn get(&self, metric: &ClaimMetric) -> Option<f64> {
        match metric {
            ClaimMetric::Em => self.em,
            ClaimMetric::F1 => self.f1,
            ClaimMetric::TrainLoss => self.train_loss,
            ClaimMetric::TrainSeconds => self.train_seconds,
            ClaimMetric::ExamplesPerSecond => self.examples_per_second,
            ClaimMetric::Reported(name) => self
                .reported
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| *v),
        }
    }
}

/// One run as the results database knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub variant: String,
    pub seed: u64,
    pub status: TrialStatus,
    pub scores: Scores,
    /// Set when this variant's run is the baseline's by construction (inert keys).
    pub shared_with_baseline: Option<String>,
}

impl Run {
    /// A run from a results-database row: its variant, seed, status and scores, and the
    /// variant it shares its run with (`duplicate_of`) and why.
    pub fn from_row(
        variant: &str,
        seed: i64,
        status: TrialStatus,
        scores: Scores,
        duplicate_of: Option<&str>,
        duplicate_reason: Option<&str>,
    ) -> Self {
        let baseline = arm_name(grid_point(variant), BASELINE);
        Run {
            variant: variant.to_string(),
            seed: u64::try_from(seed).unwrap_or(0),
            status,
            scores,
            shared_with_baseline: duplicate_of.filter(|d| *d == baseline).map(|_| {
                duplicate_reason
                    .unwrap_or("identical configuration")
                    .to_string()
            }),
        }
    }
}

/// What happened to one arm's runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArmCounts {
    pub planned: usize,
    pub succeeded: usize,
    pub diverged: usize,
    /// Failed, out of memory or timed out: no score.
    pub failed: usize,
    /// Pending, running or interrupted.
    pub unfinished: usize,
}

/// One claim at one grid point.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimOutcome {
    pub claim: Claim,
    pub grid_point: String,
    pub variant: String,
    pub baseline: String,
    pub margin: f64,
    /// Per seed in order, while both runs are final: the difference, or why it is missing.
    pub pairs: Vec<(u64, Result<f64, String>)>,
    pub variant_counts: ArmCounts,
    pub baseline_counts: ArmCounts,
    /// The analysis; `None` when the variant shares the baseline's runs by construction.
    pub analysis: Option<ClaimAnalysis>,
    /// Why the variant computes the same thing as the baseline, when it does.
    pub by_construction: Option<String>,
    /// Scores per seed on each side (for the fixed-sample intervals the report also shows).
    pub variant_scores: Vec<f64>,
    pub baseline_scores: Vec<f64>,
}

impl ClaimOutcome {
    pub fn seeds_used(&self) -> usize {
        self.pairs.iter().filter(|(_, d)| d.is_ok()).count()
    }

    pub fn label(&self) -> &'static str {
        match (&self.by_construction, &self.analysis) {
            (Some(_), _) => "no effect by construction",
            (None, Some(a)) => a.decision.label(),
            (None, None) => "inconclusive",
        }
    }
}

/// The study's claims and the seeds each variant runs now.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyAnalysis {
    pub claims: Vec<ClaimOutcome>,
    /// Variant → number of seeds (the first ones of `Seeds::all`).
    pub seeds: BTreeMap<String, usize>,
    /// Variant → its claims' widest interval over margin (which extension runs first).
    pub priority: BTreeMap<String, f64>,
}

fn arm_name(point: &str, ablation: &str) -> String {
    if point.is_empty() {
        ablation.to_string()
    } else {
        format!("{point}/{ablation}")
    }
}

fn grid_point(variant: &str) -> &str {
    variant.rsplit_once('/').map_or("", |(p, _)| p)
}

fn score(run: &Run, metric: &ClaimMetric) -> Option<f64> {
    run.scores.get(metric)
}

/// A run's contribution to a pair: its score, why it has none, or `None` while unfinished.
fn value(run: &Run, metric: &ClaimMetric, diverged: DivergedRuns) -> Option<Result<f64, String>> {
    match run.status {
        TrialStatus::Succeeded => {
            Some(score(run, metric).ok_or_else(|| "no score recorded".into()))
        }
        TrialStatus::Diverged => Some(match diverged {
            // A diverged run without an evaluation scores 0 points; it has no other number.
            DivergedRuns::Score => match score(run, metric) {
                Some(v) => Ok(v),
                None if metric.is_score() => Ok(0.0),
                None => Err(format!("diverged with no {} recorded", metric.label())),
            },
            DivergedRuns::Exclude => Err("diverged (excluded by diverged_runs: exclude)".into()),
        }),
        // A study with claims never prunes (the study format refuses it); a pruned run
        // shared from a search study has no final score.
        TrialStatus::Failed
        | TrialStatus::OutOfMemory
        | TrialStatus::TimedOut
        | TrialStatus::Pruned => Some(Err(format!("{} (no score)", run.status))),
        TrialStatus::Pending | TrialStatus::Running | TrialStatus::Interrupted => None,
    }
}

fn counts(runs: &[&Run]) -> ArmCounts {
    let mut c = ArmCounts {
        planned: runs.len(),
        ..ArmCounts::default()
    };
    for r in runs {
        match r.status {
            TrialStatus::Succeeded => c.succeeded += 1,
            TrialStatus::Diverged => c.diverged += 1,
            TrialStatus::Failed
            | TrialStatus::OutOfMemory
            | TrialStatus::TimedOut
            | TrialStatus::Pruned => c.failed += 1,
            _ => c.unfinished += 1,
        }
    }
    c
}

/// The study's grid points (`""` without a grid), in order.
fn grid_points(study: &Study) -> Vec<String> {
    let mut p: Vec<String> = study
        .variant_names()
        .iter()
        .map(|v| grid_point(v).to_string())
        .collect();
    p.dedup();
    p
}

/// How many claims Holm decides together: every claim at every grid point.
pub fn family_size(study: &Study) -> usize {
    study.claims.len() * grid_points(study).len()
}

/// The design every claim of `study` uses: one look for a list of seeds, the sequential
/// looks otherwise.
pub fn design(study: &Study) -> Design {
    Design {
        looks: study.seeds.looks(),
        alpha: study.alpha,
    }
}

/// Analyses the claims from `runs` and settles how many seeds each variant runs: every
/// variant starts with `Seeds::initial`; a claim that asks for its next look (and has all
/// its current seeds in) raises its variant and baseline to that many seeds.
pub fn analyze(study: &Study, runs: &[Run]) -> StudyAnalysis {
    analyze_with(study, runs, PValues::Exact)
}

/// [`analyze`] with p-values as fine as `p_values` says (the runner only needs the
/// decisions).
pub fn analyze_with(study: &Study, runs: &[Run], p_values: PValues) -> StudyAnalysis {
    let all_seeds = study.seeds.all();
    let mut seeds: BTreeMap<String, usize> = study
        .variant_names()
        .into_iter()
        .map(|v| (v, study.seeds.initial()))
        .collect();
    let points = grid_points(study);
    let design = design(study);
    loop {
        let mut outcomes = Vec::new();
        let mut data = Vec::new();
        for claim in &study.claims {
            for point in &points {
                let variant = arm_name(point, &claim.variant);
                let n = seeds
                    .get(&variant)
                    .copied()
                    .unwrap_or(0)
                    .min(all_seeds.len());
                let (outcome, claim_data) =
                    outcome_at(study, claim, point, runs, &all_seeds[..n], &design);
                if let Some(c) = claim_data {
                    data.push((outcomes.len(), c));
                }
                outcomes.push(outcome);
            }
        }
        let claims: Vec<ClaimData> = data.iter().map(|(_, c)| c.clone()).collect();
        let options = Options {
            futility: true,
            p_values,
        };
        let analyses = decide_with(&claims, study.alpha, options);
        let mut changed = false;
        let mut priority: BTreeMap<String, f64> = BTreeMap::new();
        for ((i, c), a) in data.iter().zip(analyses) {
            let o = &mut outcomes[*i];
            if let Decision::Continue { next_seeds } = a.decision {
                let have = seeds.get(&o.variant).copied().unwrap_or(0);
                if c.pairs.len() >= have && next_seeds > have {
                    seeds.insert(o.variant.clone(), next_seeds);
                    let b = seeds.entry(o.baseline.clone()).or_insert(0);
                    *b = (*b).max(next_seeds);
                    changed = true;
                }
                let p = priority.entry(o.variant.clone()).or_insert(0.0);
                *p = p.max(a.width_over_margin);
            }
            o.analysis = Some(a);
        }
        if !changed {
            return StudyAnalysis {
                claims: outcomes,
                seeds,
                priority,
            };
        }
    }
}

/// The runs of one variant by seed.
fn runs_of<'a>(runs: &'a [Run], variant: &str) -> BTreeMap<u64, &'a Run> {
    runs.iter()
        .filter(|r| r.variant == variant)
        .map(|r| (r.seed, r))
        .collect()
}

/// One claim at one grid point over `seeds`: its pairs in seed order (up to the first seed
/// whose two runs are not both finished), each arm's counts and scores, and the data its
/// decision needs, unless the variant shares the baseline's runs by construction (then there
/// is nothing to decide).
fn outcome_at(
    study: &Study,
    claim: &Claim,
    point: &str,
    runs: &[Run],
    seeds: &[u64],
    design: &Design,
) -> (ClaimOutcome, Option<ClaimData>) {
    let variant = arm_name(point, &claim.variant);
    let baseline = arm_name(point, BASELINE);
    let (vr, br) = (runs_of(runs, &variant), runs_of(runs, &baseline));
    let mut pairs = Vec::new();
    let (mut vs, mut bs) = (Vec::new(), Vec::new());
    for s in seeds {
        let (Some(v), Some(b)) = (vr.get(s), br.get(s)) else {
            break;
        };
        let (Some(x), Some(y)) = (
            value(v, &claim.metric, study.diverged_runs),
            value(b, &claim.metric, study.diverged_runs),
        ) else {
            break;
        };
        if let Ok(x) = &x {
            vs.push(*x);
        }
        if let Ok(y) = &y {
            bs.push(*y);
        }
        let d = match (x, y) {
            (Ok(x), Ok(y)) => Ok(x - y),
            (Err(e), _) => Err(format!("{variant}: {e}")),
            (_, Err(e)) => Err(format!("{baseline}: {e}")),
        };
        pairs.push((*s, d));
    }
    let margin = claim.margin.unwrap_or(DEFAULT_MARGIN);
    let by_construction = vr
        .values()
        .next()
        .and_then(|r| r.shared_with_baseline.clone())
        .filter(|_| vr.values().all(|r| r.shared_with_baseline.is_some()));
    let data = by_construction.is_none().then(|| ClaimData {
        expect: claim.expect,
        margin,
        pairs: pairs
            .iter()
            .map(|(_, d)| d.as_ref().ok().copied())
            .collect(),
        design: design.clone(),
    });
    let vrefs: Vec<&Run> = vr.values().copied().collect();
    let brefs: Vec<&Run> = br.values().copied().collect();
    let outcome = ClaimOutcome {
        claim: claim.clone(),
        grid_point: point.to_string(),
        variant,
        baseline,
        margin,
        pairs,
        variant_counts: counts(&vrefs),
        baseline_counts: counts(&brefs),
        analysis: None,
        by_construction,
        variant_scores: vs,
        baseline_scores: bs,
    };
    (outcome, data)
}

/// Where the σ behind a claim's planning numbers comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SdSource {
    /// `seeds.pilot_sd`.
    Pilot,
    /// The sd of the claim's differences at its first look, with this many pairs.
    FirstLook { pairs: usize },
}

/// What one claim can detect under its study's seed plan, at 80 % power
/// ([`crate::power`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Detectable {
    pub same: bool,
    /// The level it is planned at: α/m, Holm's strictest step over the m claims analysed
    /// together.
    pub level: f64,
    /// The smallest effect (directional claims) or margin (`same` claims) reached with
    /// 80 % power, in σ (the sd of the per-seed differences).
    pub in_sd: f64,
    /// σ in metric points and where it comes from; `None` before any look without a pilot.
    pub sd: Option<(f64, SdSource)>,
    /// A target in metric points (`seeds.target_effect`, the observed effect of an
    /// undecided claim, or a `same` claim's margin) and the `max` seeds it needs at 80 %
    /// power (`None`: more than [`spec::seeds::MAX_SEQUENTIAL_SEEDS`]).
    pub target: Option<(f64, Option<usize>)>,
}

impl Detectable {
    /// The smallest effect or margin in metric points, when σ is known.
    pub fn points(&self) -> Option<f64> {
        self.sd.map(|(sd, _)| self.in_sd * sd)
    }

    /// One sentence for the plan and the report.
    pub fn sentence(&self, max: usize) -> String {
        let what = if self.same {
            "declares equivalence (no true difference) at a margin of"
        } else {
            "detects an effect of"
        };
        let amount = match self.sd {
            Some((sd, source)) => format!(
                "{:.2} points or more ({:.2} σ, σ = {sd:.2} from {})",
                self.in_sd * sd,
                self.in_sd,
                match source {
                    SdSource::Pilot => "seeds.pilot_sd".to_string(),
                    SdSource::FirstLook { pairs } => format!("the first look's {pairs} pairs"),
                }
            ),
            None => format!(
                "{:.2} σ or more (σ: the sd of the per-seed differences; give seeds.pilot_sd to see points)",
                self.in_sd
            ),
        };
        let mut out = format!(
            "with up to {max} seeds it {what} {amount} with 80% power at level {:.4}",
            self.level
        );
        if let Some((target, seeds)) = self.target {
            let kind = if self.same { "margin" } else { "an effect of" };
            out.push_str(&match seeds {
                Some(n) if n <= max => format!("; {kind} {target:.2} is within reach"),
                Some(n) => format!("; {kind} {target:.2} needs max: {n} seeds"),
                None => format!(
                    "; {kind} {target:.2} needs more than {} seeds",
                    spec::seeds::MAX_SEQUENTIAL_SEEDS
                ),
            });
        }
        out
    }
}

/// What `claim` can detect under `study`'s seeds when `family` claims are analysed
/// together, with σ from `sd` (or `seeds.pilot_sd`), and the seeds `target` (metric
/// points; a `same` claim's margin when `None`) needs.
pub fn detectable(
    study: &Study,
    claim: &Claim,
    family: usize,
    sd: Option<(f64, SdSource)>,
    target: Option<f64>,
) -> Detectable {
    use crate::power::{detectable_effect, reachable_margin, seeds_needed, Target, TARGET_POWER};
    let same = claim.expect == Expect::Same;
    let level = study.alpha / family.max(1) as f64;
    let design = Design {
        looks: study.seeds.looks(),
        alpha: level,
    };
    let in_sd = if same {
        reachable_margin(&design, level, TARGET_POWER)
    } else {
        detectable_effect(&design, level, TARGET_POWER)
    };
    let pilot = match &study.seeds {
        spec::study::Seeds::Sequential(s) => s.pilot_sd.map(|v| (v, SdSource::Pilot)),
        spec::study::Seeds::List(_) => None,
    };
    let sd = pilot.or(sd).filter(|(v, _)| *v > 0.0 && v.is_finite());
    let target = if same {
        Some(claim.margin.unwrap_or(DEFAULT_MARGIN))
    } else {
        target
    };
    let target = match (target, sd) {
        (Some(t), Some((sigma, _))) if t > 0.0 => {
            let (min, batch) = match &study.seeds {
                spec::study::Seeds::Sequential(s) => (s.min, Some(s.batch)),
                spec::study::Seeds::List(l) => (l.len(), None),
            };
            let goal = if same {
                Target::Margin(t / sigma)
            } else {
                Target::Effect(t / sigma)
            };
            let limit = spec::seeds::MAX_SEQUENTIAL_SEEDS;
            Some((
                t,
                seeds_needed(min, batch, level, goal, TARGET_POWER, limit),
            ))
        }
        _ => None,
    };
    Detectable {
        same,
        level,
        in_sd,
        sd,
        target,
    }
}

/// True for the directions a claim can take.
pub fn is_directional(e: Expect) -> bool {
    e != Expect::Same
}

#[cfg(test)]
mod tests {
    use super::*;

    fn study(seeds: &str, claims: &str) -> Study {
        let text = format!(
            "name: s\nbase:\n  model: {{preset: tiny, vocab: v.txt}}\n  data: {{train: t.json, eval: e.json}}\n\
             ablations:\n  - {{name: lr, set: {{train.learning_rate: 1.0e-3}}}}\n  - {{name: wd, set: {{train.weight_decay: 0.1}}}}\n\
             seeds: {seeds}\nclaims:\n{claims}"
        );
        Study::from_yaml_str(&text, "s.yaml").unwrap()
    }

    fn run(variant: &str, seed: u64, f1: f64) -> Run {
        Run {
            variant: variant.into(),
            seed,
            status: TrialStatus::Succeeded,
            scores: Scores {
                em: Some(f1 - 10.0),
                f1: Some(f1),
                ..Scores::default()
            },
            shared_with_baseline: None,
        }
    }

    #[test]
    fn undecided_claims_get_their_next_look_and_decided_ones_stop() {
        let s = study(
            "{min: 3, max: 7, batch: 2}",
            "  - {variant: lr, metric: f1, expect: lower}\n  - {variant: wd, metric: f1, expect: lower}\n",
        );
        let mut runs = Vec::new();
        for seed in 1..=3 {
            runs.push(run("baseline", seed, 60.0 + seed as f64));
            // lr: 20 points lower every time → decided at the first look.
            runs.push(run("lr", seed, 40.0 + seed as f64));
            // wd: about 1 point lower, noisily → needs more seeds.
            runs.push(run(
                "wd",
                seed,
                60.0 + [-1.5, -0.2, -1.0][seed as usize - 1] + seed as f64,
            ));
        }
        let a = analyze(&s, &runs);
        assert_eq!(a.claims[0].label(), "reproduced");
        assert_eq!(a.seeds["lr"], 3);
        assert_eq!(a.seeds["wd"], 5, "{:?}", a.claims[1].analysis);
        assert_eq!(a.seeds["baseline"], 5);
        // Until seeds 4 and 5 of wd and the baseline are in, nothing more is asked.
        let again = analyze(&s, &runs);
        assert_eq!(again.seeds, a.seeds);
    }

    #[test]
    fn failures_are_counted_and_dropped_never_silently() {
        let s = study(
            "[1, 2, 3, 4]",
            "  - {variant: lr, metric: f1, expect: lower}\n",
        );
        let mut runs = Vec::new();
        for seed in 1..=4 {
            runs.push(run("baseline", seed, 60.0));
            let mut r = run("lr", seed, 50.0 + seed as f64 * 0.1);
            if seed == 2 {
                r.status = TrialStatus::Failed;
                r.scores.f1 = None;
            }
            if seed == 3 {
                r.status = TrialStatus::Diverged;
                r.scores.f1 = Some(5.0);
            }
            runs.push(r);
        }
        let a = analyze(&s, &runs);
        let c = &a.claims[0];
        assert_eq!(c.variant_counts.failed, 1);
        assert_eq!(c.variant_counts.diverged, 1);
        assert_eq!(c.seeds_used(), 3, "the failed seed's pair is dropped");
        assert!(c.pairs[1].1.as_ref().unwrap_err().contains("failed"));
        assert_eq!(
            c.pairs[2].1,
            Ok(5.0 - 60.0),
            "diverged runs count with their score"
        );
        // With diverged_runs: exclude, the diverged pair is dropped too.
        let mut ex = s.clone();
        ex.diverged_runs = DivergedRuns::Exclude;
        assert_eq!(analyze(&ex, &runs).claims[0].seeds_used(), 2);
    }
}
