//! Drawing values: one key uniformly (random search, TPE's start), or the whole space by
//! TPE from the ranked history. Each domain is mapped to a real interval the estimators work on: a
//! log-uniform range to its logarithm, an integer range to `[low, high + 1)` (a value `v`
//! is the cell `[v, v + 1)`), a choice to the category index.

use crate::parzen::Axis;
use rand_core::Rng;
use serde_json::{Map, Value};
use spec::search::Domain;

/// Reals are rounded to this many significant digits.
pub const SIGNIFICANT_DIGITS: i32 = 4;

/// `x` rounded to `digits` significant digits.
pub fn round_significant(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let magnitude = x.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits - 1 - magnitude);
    let rounded = (x * scale).round() / scale;
    // Printing through the shortest representation drops the float noise of the division
    // (3.2e-5, not 3.2000000000000005e-5).
    format!("{rounded:.*e}", (digits - 1).max(0) as usize)
        .parse()
        .unwrap_or(rounded)
}

/// A uniform draw in [0, 1).
fn unit(rng: &mut impl Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// The interval the estimators see, and the key's value ↔ a point in it.
enum Scale {
    Linear { low: f64, high: f64 },
    Log { low: f64, high: f64 },
    Int { low: i64, high: i64 },
    Category(usize),
}

impl Scale {
    fn of(domain: &Domain) -> Scale {
        match domain {
            Domain::Uniform([low, high]) => Scale::Linear {
                low: *low,
                high: *high,
            },
            Domain::LogUniform([low, high]) => Scale::Log {
                low: low.ln(),
                high: high.ln(),
            },
            Domain::Int([low, high]) => Scale::Int {
                low: *low,
                high: *high,
            },
            Domain::Choice(values) => Scale::Category(values.len()),
        }
    }

    /// The half-open interval `[start, end)`.
    fn interval(&self) -> (f64, f64) {
        match *self {
            Scale::Linear { low, high } | Scale::Log { low, high } => (low, high.next_up()),
            Scale::Int { low, high } => (low as f64, high as f64 + 1.0),
            Scale::Category(n) => (0.0, n as f64),
        }
    }

    fn to_internal(&self, domain: &Domain, v: &Value) -> Option<f64> {
        let x = match (self, domain) {
            (Scale::Linear { .. }, _) => v.as_f64()?,
            (Scale::Log { .. }, _) => v.as_f64().filter(|x| *x > 0.0)?.ln(),
            (Scale::Int { .. }, _) => v.as_i64()? as f64 + 0.5,
            (Scale::Category(_), Domain::Choice(values)) => {
                values.iter().position(|c| c == v)? as f64 + 0.5
            }
            (Scale::Category(_), _) => return None,
        };
        let (start, end) = self.interval();
        (start <= x && x < end).then_some(x)
    }

    fn to_value(&self, domain: &Domain, x: f64) -> Value {
        let (start, end) = self.interval();
        let x = x.clamp(start, end.next_down());
        match (self, domain) {
            (Scale::Linear { low, high }, _) => {
                Value::from(round_significant(x, SIGNIFICANT_DIGITS).clamp(*low, *high))
            }
            (Scale::Log { .. }, Domain::LogUniform([low, high])) => {
                Value::from(round_significant(x.exp(), SIGNIFICANT_DIGITS).clamp(*low, *high))
            }
            (Scale::Int { low, high }, _) => Value::from((x.floor() as i64).clamp(*low, *high)),
            (Scale::Category(n), Domain::Choice(values)) => {
                let i = (x.floor() as usize).min(n.saturating_sub(1));
                values.get(i).cloned().unwrap_or(Value::Null)
            }
            _ => Value::Null,
        }
    }
}

/// A value drawn uniformly from the domain (log-uniformly for `loguniform`).
pub fn uniform(domain: &Domain, rng: &mut impl Rng) -> Value {
    let scale = Scale::of(domain);
    let (start, end) = scale.interval();
    scale.to_value(domain, start + unit(rng) * (end - start))
}

/// TPE's suggestion for the whole space from the ranked history (best first, each with
/// the number of the suggestion it was); `None`
/// when no earlier suggestion lies in the space (then the caller draws uniformly).
pub fn tpe(
    space: &[(String, Domain)],
    ranked: &[(&Map<String, Value>, usize)],
    rng: &mut impl Rng,
) -> Option<Map<String, Value>> {
    let scales: Vec<Scale> = space.iter().map(|(_, d)| Scale::of(d)).collect();
    let axes: Vec<Axis> = scales
        .iter()
        .map(|s| match *s {
            Scale::Category(n) => Axis::Choice(n),
            _ => {
                let (low, high) = s.interval();
                Axis::Real { low, high }
            }
        })
        .collect();
    let points: Vec<(Vec<f64>, usize)> = ranked
        .iter()
        .filter_map(|(params, made)| {
            let x = space
                .iter()
                .zip(&scales)
                .map(|((key, domain), scale)| {
                    let x = scale.to_internal(domain, params.get(key)?)?;
                    Some(if let Scale::Category(_) = scale {
                        x.floor()
                    } else {
                        x
                    })
                })
                .collect::<Option<Vec<f64>>>()?;
            Some((x, *made))
        })
        .collect();
    if points.is_empty() {
        return None;
    }
    let x = crate::parzen::suggest(&axes, &points, rng);
    Some(
        space
            .iter()
            .zip(&scales)
            .zip(&x)
            .map(|(((key, domain), scale), v)| (key.clone(), scale.to_value(domain, *v)))
            .collect(),
    )
}
