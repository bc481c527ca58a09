//! Asynchronous successive halving (ASHA; Li et al. 2020, "A System for Massively Parallel
//! Hyperparameter Tuning"), as Optuna's `SuccessiveHalvingPruner` applies it: rung `k` is
//! step `min_steps · reduction^k`; a trial's value at a rung is its first evaluation at or
//! after that step; when a trial reaches a rung it goes on only if its value is among the
//! best `max(1, ⌊n / reduction⌋)` of the `n` trials that have reached that rung so far
//! (itself included). Nothing waits for a rung to fill, so trials never idle.

use spec::search::{Direction, Prune};

/// The step of rung `rung` (0-based), or `None` past `u64`.
pub fn rung_step(prune: &Prune, rung: usize) -> Option<u64> {
    let mut s = prune.min_steps;
    for _ in 0..rung {
        s = s.checked_mul(prune.reduction)?;
    }
    Some(s)
}

/// The value a trial brings to a rung: its first evaluation at or after the rung's step,
/// from `(step, value)` pairs.
pub fn value_at(evals: &[(u64, f64)], rung_step: u64) -> Option<(u64, f64)> {
    evals
        .iter()
        .filter(|(s, v)| *s >= rung_step && v.is_finite())
        .min_by_key(|(s, _)| *s)
        .copied()
}

/// The rungs a trial has reached, in order.
pub fn rungs_reached(prune: &Prune, evals: &[(u64, f64)]) -> usize {
    let last = evals.iter().map(|(s, _)| *s).max().unwrap_or(0);
    (0..)
        .take_while(|k| rung_step(prune, *k).is_some_and(|s| s <= last))
        .count()
}

/// Why a trial was stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub rung: usize,
    pub rung_step: u64,
    /// The step of the evaluation compared, and its value.
    pub step: u64,
    pub value: f64,
    /// The trial's place among the trials at the rung (1 = best), how many there were, and
    /// how many go on.
    pub place: usize,
    pub competitors: usize,
    pub kept: usize,
}

impl Verdict {
    /// One line for the trial's record.
    pub fn describe(&self, metric: &str) -> String {
        format!(
            "pruned at step {} ({metric} {:.2}): place {} of {} at rung {} (step {}), where the best {} go on",
            self.step,
            self.value,
            self.place,
            self.competitors,
            self.rung,
            self.rung_step,
            self.kept
        )
    }
}

/// Judges a trial at `rung`, where its evaluation is `own` and `others` are the values of
/// the other trials that reached the rung. `None`: it goes on.
pub fn judge(
    prune: &Prune,
    direction: Direction,
    rung: usize,
    own: (u64, f64),
    others: &[f64],
) -> Option<Verdict> {
    let better = |a: f64, b: f64| match direction {
        Direction::Max => a > b,
        Direction::Min => a < b,
    };
    let competitors = others.len() + 1;
    let kept = (competitors / prune.reduction.max(1) as usize).max(1);
    // Ties favour the trial being judged (Optuna compares with >=).
    let place = 1 + others.iter().filter(|v| better(**v, own.1)).count();
    (place > kept).then(|| Verdict {
        rung,
        rung_step: rung_step(prune, rung).unwrap_or(u64::MAX),
        step: own.0,
        value: own.1,
        place,
        competitors,
        kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use spec::search::PruneMethod;
    use spec::ClaimMetric;

    fn prune() -> Prune {
        Prune {
            method: PruneMethod::Asha,
            metric: ClaimMetric::F1,
            min_steps: 10,
            reduction: 3,
        }
    }

    #[test]
    fn the_first_at_a_rung_goes_on_and_later_ones_need_the_top_third() {
        let p = prune();
        assert_eq!(judge(&p, Direction::Max, 0, (10, 50.0), &[]), None);
        // Two at the rung: only the best goes on.
        assert!(judge(&p, Direction::Max, 0, (10, 40.0), &[50.0]).is_some());
        assert_eq!(judge(&p, Direction::Max, 0, (10, 60.0), &[50.0]), None);
        // Six at the rung: the best two go on.
        let others = [10.0, 20.0, 30.0, 40.0, 50.0];
        assert_eq!(judge(&p, Direction::Max, 0, (10, 45.0), &others), None);
        let v = judge(&p, Direction::Max, 0, (12, 35.0), &others).unwrap();
        assert_eq!((v.place, v.competitors, v.kept, v.step), (3, 6, 2, 12));
        // Minimizing flips the order.
        assert_eq!(judge(&p, Direction::Min, 0, (10, 15.0), &others), None);
        assert!(judge(&p, Direction::Min, 0, (10, 35.0), &others).is_some());
    }

    #[test]
    fn rungs_and_values() {
        let p = prune();
        assert_eq!(rung_step(&p, 0), Some(10));
        assert_eq!(rung_step(&p, 2), Some(90));
        let evals = [(5, 1.0), (15, 2.0), (30, 3.0), (45, 4.0)];
        assert_eq!(value_at(&evals, 10), Some((15, 2.0)));
        assert_eq!(value_at(&evals, 30), Some((30, 3.0)));
        assert_eq!(value_at(&evals, 90), None);
        assert_eq!(rungs_reached(&p, &evals), 2);
        assert_eq!(rungs_reached(&p, &[(9, 1.0)]), 0);
    }
}
