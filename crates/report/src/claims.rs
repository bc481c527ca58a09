//! Claim verdicts: each claim's variant against the baseline at the same grid point, with
//! Welch's 95% interval of the difference over seeds.

use spec::{Claim, ClaimMetric, Expect};

use crate::data::{StudyData, Variant};
use crate::stats::{welch, Difference};

/// The default equivalence margin for `expect: same`, in metric points.
pub const DEFAULT_MARGIN: f64 = 1.0;

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Reproduced,
    Contradicted,
    /// Why not: too few seeds, or the interval spans the decision boundary.
    Inconclusive(String),
    /// The runner found the variant identical to the baseline; the reason says why.
    NoEffectByConstruction(String),
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::Contradicted => "contradicted",
            Verdict::Inconclusive(_) => "inconclusive",
            Verdict::NoEffectByConstruction(_) => "no effect by construction",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Inconclusive(r) | Verdict::NoEffectByConstruction(r) => Some(r),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClaimResult {
    pub claim: Claim,
    pub variant: String,
    pub baseline: String,
    pub n_variant: usize,
    pub n_baseline: usize,
    pub difference: Option<Difference>,
    pub verdict: Verdict,
}

fn metric_name(m: ClaimMetric) -> &'static str {
    match m {
        ClaimMetric::Em => "EM",
        ClaimMetric::F1 => "F1",
    }
}

/// Every claim at every grid point.
pub fn evaluate(data: &StudyData) -> Vec<ClaimResult> {
    let Some(spec) = &data.spec else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for claim in &spec.claims {
        for v in data.variants.iter().filter(|v| v.ablation == claim.variant) {
            let Some(base) = data
                .variants
                .iter()
                .find(|b| b.is_baseline() && b.grid_point == v.grid_point)
            else {
                continue;
            };
            out.push(judge(claim, v, base));
        }
    }
    out
}

/// The verdict of one claim for one variant/baseline pair.
pub fn judge(claim: &Claim, v: &Variant, base: &Variant) -> ClaimResult {
    let (a, b) = (v.values(claim.metric), base.values(claim.metric));
    let difference = welch(&a, &b);
    let verdict = if let (Some(_), Some(reason)) = (&v.duplicate_of, &v.duplicate_reason) {
        Verdict::NoEffectByConstruction(reason.clone())
    } else {
        match difference {
            None => Verdict::Inconclusive(format!(
                "too few seeds: {} for {} and {} for {} (at least 2 each)",
                a.len(),
                v.name,
                b.len(),
                base.name
            )),
            Some(d) => decide(claim, &d),
        }
    };
    ClaimResult {
        claim: claim.clone(),
        variant: v.name.clone(),
        baseline: base.name.clone(),
        n_variant: a.len(),
        n_baseline: b.len(),
        difference,
        verdict,
    }
}

fn decide(claim: &Claim, d: &Difference) -> Verdict {
    let m = metric_name(claim.metric);
    let spans = |what: &str| {
        Verdict::Inconclusive(format!(
            "the 95% interval of the {m} difference [{:.2}, {:.2}] {what}",
            d.low, d.high
        ))
    };
    match claim.expect {
        Expect::Higher if d.low > 0.0 => Verdict::Reproduced,
        Expect::Higher if d.high < 0.0 => Verdict::Contradicted,
        Expect::Lower if d.high < 0.0 => Verdict::Reproduced,
        Expect::Lower if d.low > 0.0 => Verdict::Contradicted,
        Expect::Higher | Expect::Lower => spans("contains zero"),
        Expect::Same => {
            let margin = claim.margin.unwrap_or(DEFAULT_MARGIN);
            if d.low >= -margin && d.high <= margin {
                Verdict::Reproduced
            } else if d.low > margin || d.high < -margin {
                Verdict::Contradicted
            } else {
                spans(&format!("is not within ±{margin} points"))
            }
        }
    }
}
