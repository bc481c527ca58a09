//! Charts for studies with a `grid`: F1 against each grid key's values, a heat map when the
//! grid has two keys, and parallel coordinates over all keys. Each grid point's baseline
//! variant is one cell; seeds are averaged.

use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;
use spec::ClaimMetric;

use super::{categorical_chart, err, FONT, VARIANT};
use crate::data::StudyData;
use crate::stats::summarize;
use crate::ReportError;

/// One grid point: its value of each grid key, and the F1 of its seeds.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    pub values: Vec<Value>,
    pub f1: Vec<f64>,
}

pub(crate) fn keys(data: &StudyData) -> Vec<(String, Vec<Value>)> {
    data.spec
        .as_ref()
        .map(|s| s.grid.clone())
        .unwrap_or_default()
}

pub(crate) fn cells(data: &StudyData) -> Vec<Cell> {
    let keys = keys(data);
    data.variants
        .iter()
        .filter(|v| v.is_baseline())
        .map(|v| Cell {
            values: keys
                .iter()
                .map(|(k, _)| v.params.get(k).cloned().unwrap_or(Value::Null))
                .collect(),
            f1: v.values(&ClaimMetric::F1),
        })
        .collect()
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn short(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// F1 against the values of grid key `k` (each seed of every grid point with that value).
pub(crate) fn draw_effect<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &StudyData,
    k: usize,
) -> Result<(), ReportError> {
    let keys = keys(data);
    let Some((key, values)) = keys.get(k) else {
        return Ok(());
    };
    let cells = cells(data);
    let names: Vec<String> = values
        .iter()
        .map(|v| format!("{}={}", short(key), show(v)))
        .collect();
    let all: Vec<f64> = cells.iter().flat_map(|c| c.f1.iter().copied()).collect();
    let (lo, hi) = super::bounds(&all);
    let mut chart = categorical_chart(area, &names, lo..hi, "F1 (baseline at each grid point)")?;
    for (i, value) in values.iter().enumerate() {
        let y = i as f64;
        let here: Vec<f64> = cells
            .iter()
            .filter(|c| c.values.get(k) == Some(value))
            .flat_map(|c| c.f1.iter().copied())
            .collect();
        chart
            .draw_series(
                here.iter()
                    .map(|x| Circle::new((*x, y), 4, VARIANT.stroke_width(1))),
            )
            .map_err(err)?;
        if let Some(s) = summarize(&here) {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(s.mean - s.std, y), (s.mean + s.std, y)],
                    VARIANT.stroke_width(2),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Circle::new(
                    (s.mean, y),
                    6,
                    VARIANT.filled(),
                )))
                .map_err(err)?;
        }
    }
    Ok(())
}

fn shade(t: f64) -> RGBColor {
    // Light yellow (low F1) to dark blue (high F1).
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(lerp(255.0, 30.0), lerp(245.0, 70.0), lerp(200.0, 150.0))
}

/// Mean F1 over seeds for every pair of values of a two-key grid.
pub(crate) fn draw_heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &StudyData,
) -> Result<(), ReportError> {
    let keys = keys(data);
    let [(kx, vx), (ky, vy)] = keys.as_slice() else {
        return Ok(());
    };
    let cells = cells(data);
    let means: Vec<(usize, usize, f64)> = cells
        .iter()
        .filter_map(|c| {
            let i = vx.iter().position(|v| Some(v) == c.values.first())?;
            let j = vy.iter().position(|v| Some(v) == c.values.get(1))?;
            Some((i, j, summarize(&c.f1)?.mean))
        })
        .collect();
    let lo = means.iter().map(|m| m.2).fold(f64::INFINITY, f64::min);
    let hi = means.iter().map(|m| m.2).fold(f64::NEG_INFINITY, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let xs: Vec<String> = vx.iter().map(show).collect();
    let ys: Vec<String> = vy.iter().map(show).collect();
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(
            -0.5f64..(xs.len() as f64 - 0.5),
            -0.5f64..(ys.len() as f64 - 0.5),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(xs.len())
        .y_labels(ys.len())
        .x_label_formatter(&|x| super::tick_name(&xs, *x))
        .y_label_formatter(&|y| super::tick_name(&ys, *y))
        .x_desc(short(kx))
        .y_desc(short(ky))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(err)?;
    for (i, j, m) in &means {
        let (x, y) = (*i as f64, *j as f64);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x - 0.48, y - 0.48), (x + 0.48, y + 0.48)],
                shade((m - lo) / span).filled(),
            )))
            .map_err(err)?;
        let color = if (m - lo) / span > 0.55 { WHITE } else { BLACK };
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{m:.1}"),
                (x - 0.12, y + 0.05),
                (FONT, 14).into_font().color(&color),
            )))
            .map_err(err)?;
    }
    Ok(())
}

/// One line per grid point across the grid keys' axes and F1, coloured by F1.
pub(crate) fn draw_parallel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &StudyData,
) -> Result<(), ReportError> {
    let keys = keys(data);
    let cells = cells(data);
    let means: Vec<(Vec<f64>, f64)> = cells
        .iter()
        .filter_map(|c| {
            let f1 = summarize(&c.f1)?.mean;
            let pos: Vec<f64> = keys
                .iter()
                .zip(&c.values)
                .map(|((_, vals), v)| {
                    let i = vals.iter().position(|x| x == v).unwrap_or(0) as f64;
                    if vals.len() > 1 {
                        i / (vals.len() - 1) as f64
                    } else {
                        0.5
                    }
                })
                .collect();
            Some((pos, f1))
        })
        .collect();
    let lo = means.iter().map(|m| m.1).fold(f64::INFINITY, f64::min);
    let hi = means.iter().map(|m| m.1).fold(f64::NEG_INFINITY, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut axes: Vec<String> = keys.iter().map(|(k, _)| short(k).to_string()).collect();
    axes.push(format!("F1 ({lo:.1}–{hi:.1})"));
    let mut chart = ChartBuilder::on(area)
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(20)
        .build_cartesian_2d(-0.2f64..(axes.len() as f64 - 0.8), -0.05f64..1.05f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(axes.len())
        .y_labels(0)
        .x_label_formatter(&|x| super::tick_name(&axes, *x))
        .label_style((FONT, 13))
        .draw()
        .map_err(err)?;
    for a in 0..axes.len() {
        let x = a as f64;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, 0.0), (x, 1.0)],
                BLACK.stroke_width(1),
            )))
            .map_err(err)?;
    }
    for (k, (_, vals)) in keys.iter().enumerate() {
        for (i, v) in vals.iter().enumerate() {
            let y = if vals.len() > 1 {
                i as f64 / (vals.len() - 1) as f64
            } else {
                0.5
            };
            chart
                .draw_series(std::iter::once(Text::new(
                    show(v),
                    (k as f64 + 0.03, y),
                    (FONT, 11),
                )))
                .map_err(err)?;
        }
    }
    for (pos, f1) in &means {
        let t = (f1 - lo) / span;
        let mut points: Vec<(f64, f64)> = pos
            .iter()
            .enumerate()
            .map(|(i, y)| (i as f64, *y))
            .collect();
        points.push((pos.len() as f64, t));
        chart
            .draw_series(std::iter::once(PathElement::new(
                points,
                shade(t).stroke_width(2),
            )))
            .map_err(err)?;
    }
    Ok(())
}

/// The groups an expected-validation-performance chart compares: grid points split by the
/// value of the grid's model key (`model.preset`, `model.init`, `model.arch`), or all grid
/// points in one group. Each grid point comes with its F1 per seed.
pub(crate) fn evp_groups(data: &StudyData) -> Vec<(String, Vec<Vec<f64>>)> {
    let keys = keys(data);
    let model_key = keys.iter().position(|(k, _)| k.starts_with("model."));
    let mut groups: Vec<(String, Vec<Vec<f64>>)> = Vec::new();
    for c in cells(data) {
        if c.f1.is_empty() {
            continue;
        }
        let name = match model_key {
            Some(k) => format!("{}={}", short(&keys[k].0), show(&c.values[k])),
            None => "all configurations".to_string(),
        };
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.push(c.f1.clone()),
            None => groups.push((name, vec![c.f1.clone()])),
        }
    }
    groups
}

/// Expected best seed-mean F1 among n of the configurations tried (Dodge et al. 2019; Tang
/// et al. 2020's unbiased estimator), with 95% seed-bootstrap bands, per model group.
pub(crate) fn draw_evp<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &StudyData,
) -> Result<(), ReportError> {
    let groups: Vec<(String, Vec<stats::evp::CurvePoint>)> = evp_groups(data)
        .into_iter()
        .map(|(name, scores)| (name, stats::evp::curve(&scores, 1000)))
        .collect();
    let xmax = groups
        .iter()
        .map(|(_, c)| c.len())
        .max()
        .unwrap_or(1)
        .max(2) as f64;
    let ys: Vec<f64> = groups
        .iter()
        .flat_map(|(_, c)| c.iter().flat_map(|p| [p.low, p.high]))
        .collect();
    let (lo, hi) = super::bounds(&ys);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Expected best seed-mean F1 of n configurations (95% seed-bootstrap band)",
            (FONT, 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(1f64..xmax, lo..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("configurations tried (tuning budget)")
        .y_desc("expected best seed-mean F1")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(err)?;
    for (k, (name, points)) in groups.iter().enumerate() {
        let color = super::PALETTE[k % super::PALETTE.len()];
        let points: Vec<(f64, f64, f64, f64)> = points
            .iter()
            .map(|p| (p.n as f64, p.mean, p.low, p.high))
            .collect();
        super::draw_band_line(&mut chart, name, &points, color, 3)?;
    }
    super::draw_legend(&mut chart, SeriesLabelPosition::LowerRight)
}
