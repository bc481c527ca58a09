//! Charts for search studies: the search's progress (each suggestion's objective and the
//! best so far, in the order they were made), the objective against each searched key, and
//! every trial's evaluation curve with the pruned ones marked where they stopped.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;
use spec::protocol::TrialStatus;
use spec::search::Domain;

use super::{err, FONT, VARIANT};
use crate::data::StudyData;
use crate::search::SearchReport;
use crate::ReportError;

const PRUNED: RGBColor = RGBColor(200, 50, 60);

fn range_of(values: &[f64]) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.1).max(1e-9).max(hi.abs() * 1e-3);
    (lo - pad, hi + pad)
}

/// A plain numeric chart with its mesh and axis names.
fn frame<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    x_desc: &str,
    y_desc: &str,
    integer_x: bool,
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>, ReportError> {
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    let plain = |v: &f64| format!("{v}");
    let whole = |v: &f64| format!("{v:.0}");
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .x_label_formatter(if integer_x { &whole } else { &plain })
        .y_desc(y_desc)
        .label_style((FONT, 13))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// Objective (dots; pruned ones red where they stopped) and best so far (line) against
/// the suggestion's number.
pub(crate) fn draw_progress<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &SearchReport,
) -> Result<(), ReportError> {
    let ys: Vec<f64> = s.suggestions.iter().filter_map(|x| x.plotted()).collect();
    let (lo, hi) = range_of(&ys);
    let n = s.suggestions.iter().map(|x| x.number).max().unwrap_or(1) as f64;
    let mut chart = frame(
        area,
        0.5..n + 0.5,
        lo..hi,
        "suggestion (in the order made)",
        &s.metric,
        true,
    )?;
    let done: Vec<(f64, f64)> = s
        .suggestions
        .iter()
        .filter_map(|x| x.objective().map(|v| (x.number as f64, v)))
        .collect();
    chart
        .draw_series(done.iter().map(|p| Circle::new(*p, 4, VARIANT.filled())))
        .map_err(err)?
        .label("complete")
        .legend(|(x, y)| Circle::new((x, y), 4, VARIANT.filled()));
    let stopped: Vec<(f64, f64)> = s
        .suggestions
        .iter()
        .filter_map(|x| x.stopped_at().map(|v| (x.number as f64, v)))
        .collect();
    chart
        .draw_series(
            stopped
                .iter()
                .map(|p| Circle::new(*p, 4, PRUNED.stroke_width(2))),
        )
        .map_err(err)?
        .label("pruned (its metric where it stopped)")
        .legend(|(x, y)| Circle::new((x, y), 4, PRUNED.stroke_width(2)));
    let best: Vec<(f64, f64)> = s
        .suggestions
        .iter()
        .filter_map(|x| x.best_so_far.map(|b| (x.number as f64, b)))
        .collect();
    chart
        .draw_series(LineSeries::new(best, BLACK.stroke_width(2)))
        .map_err(err)?
        .label("best so far")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Where a value sits on a key's axis: log10 for a log-uniform range, the index for a
/// choice, the number otherwise.
fn position(domain: &Domain, v: &Value) -> Option<f64> {
    match domain {
        Domain::LogUniform(_) => v.as_f64().filter(|x| *x > 0.0).map(f64::log10),
        Domain::Choice(values) => values.iter().position(|c| c == v).map(|i| i as f64),
        _ => v.as_f64(),
    }
}

/// The x-axis name of a searched key.
pub(crate) fn axis_name(key: &str, domain: &Domain) -> String {
    match domain {
        Domain::LogUniform(_) => format!("log10 {key}"),
        Domain::Choice(values) => format!(
            "{key} (choice: {})",
            values
                .iter()
                .enumerate()
                .map(|(i, v)| format!("{i} = {}", crate::search::show(Some(v))))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => key.to_string(),
    }
}

/// The objective against searched key `k` (pruned suggestions in red where they stopped).
pub(crate) fn draw_param<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &SearchReport,
    k: usize,
) -> Result<(), ReportError> {
    let Some((key, domain)) = s.space.get(k) else {
        return Ok(());
    };
    let xs: Vec<f64> = domain
        .extremes()
        .iter()
        .filter_map(|v| position(domain, v))
        .collect();
    let (x_lo, x_hi) = range_of(&xs);
    let ys: Vec<f64> = s.suggestions.iter().filter_map(|x| x.plotted()).collect();
    let (lo, hi) = range_of(&ys);
    let mut chart = frame(
        area,
        x_lo..x_hi,
        lo..hi,
        &axis_name(key, domain),
        &s.metric,
        false,
    )?;
    let point = |x: &crate::search::Suggestion, v: f64| {
        position(domain, x.params.get(key)?).map(|p| (p, v))
    };
    let done: Vec<(f64, f64)> = s
        .suggestions
        .iter()
        .filter_map(|x| point(x, x.objective()?))
        .collect();
    let stopped: Vec<(f64, f64)> = s
        .suggestions
        .iter()
        .filter_map(|x| point(x, x.stopped_at()?))
        .collect();
    chart
        .draw_series(done.iter().map(|p| Circle::new(*p, 4, VARIANT.filled())))
        .map_err(err)?;
    chart
        .draw_series(
            stopped
                .iter()
                .map(|p| Circle::new(*p, 4, PRUNED.stroke_width(2))),
        )
        .map_err(err)?;
    Ok(())
}

/// Every trial's evaluation F1 against step: complete trials in blue, pruned ones in red,
/// each ending where it stopped.
pub(crate) fn draw_eval_curves<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &StudyData,
) -> Result<(), ReportError> {
    let mut lines: Vec<(bool, Vec<(f64, f64)>)> = Vec::new();
    for v in &data.variants {
        for r in &v.rows {
            let pruned = r.status == TrialStatus::Pruned;
            if !(pruned || r.status == TrialStatus::Succeeded) {
                continue;
            }
            let Some(curve) = data.curves.get(&r.trial_id).and_then(|c| c.get("eval_f1")) else {
                continue;
            };
            let last = r.pruned_step.unwrap_or(i64::MAX);
            let pts: Vec<(f64, f64)> = curve
                .iter()
                .filter(|(s, v)| *s <= last && v.is_finite())
                .map(|(s, v)| (*s as f64, *v))
                .collect();
            if !pts.is_empty() {
                lines.push((pruned, pts));
            }
        }
    }
    let xs: Vec<f64> = lines
        .iter()
        .flat_map(|(_, l)| l.iter().map(|p| p.0))
        .collect();
    let ys: Vec<f64> = lines
        .iter()
        .flat_map(|(_, l)| l.iter().map(|p| p.1))
        .collect();
    let x_hi = xs.iter().copied().fold(1.0, f64::max);
    let (lo, hi) = range_of(&ys);
    let mut chart = frame(area, 0.0..x_hi * 1.02, lo..hi, "step", "eval F1", true)?;
    for (pruned, pts) in lines {
        let colour = if pruned { PRUNED } else { VARIANT };
        let end = pts.last().copied();
        chart
            .draw_series(LineSeries::new(pts, colour.stroke_width(2)))
            .map_err(err)?;
        if let (true, Some(p)) = (pruned, end) {
            chart
                .draw_series(std::iter::once(Cross::new(p, 6, PRUNED.stroke_width(2))))
                .map_err(err)?;
        }
    }
    Ok(())
}
