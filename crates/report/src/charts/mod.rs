//! The report's charts, each drawn twice with plotters: SVG (inlined in the HTML) and PNG
//! (for the Markdown). Text uses the embedded DejaVu Sans, so charts render the same on a
//! machine without any fonts; labels are ASCII (names are validated), Chinese text lives in
//! the HTML/Markdown where the reader's fonts render it.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use spec::protocol::TrialStatus;
use spec::ClaimMetric;

mod grid;
mod search;

use crate::data::{Curve, StudyData};
use crate::references::References;
use crate::stats::summarize;
use crate::ReportError;
use grid::{
    draw_effect as grid_effect, draw_evp as grid_evp, draw_heatmap as grid_heatmap,
    draw_parallel as grid_parallel,
};

/// A chart written as `<stem>.svg` and `<stem>.png`.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub stem: String,
    pub title: String,
}

pub(crate) const FONT: &str = "sans-serif";
const BASELINE: RGBColor = RGBColor(230, 120, 20);
pub(crate) const VARIANT: RGBColor = RGBColor(40, 100, 180);
const PUBLISHED: RGBColor = RGBColor(150, 150, 150);
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(230, 120, 20),
    RGBColor(40, 100, 180),
    RGBColor(60, 160, 80),
    RGBColor(200, 50, 60),
    RGBColor(140, 90, 180),
    RGBColor(120, 80, 40),
    RGBColor(220, 100, 180),
    RGBColor(100, 100, 100),
];

static FONT_READY: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();

fn register_font() -> Result<(), ReportError> {
    FONT_READY
        .get_or_init(|| {
            plotters::style::register_font(
                FONT,
                FontStyle::Normal,
                include_bytes!("../../assets/DejaVuSans.ttf"),
            )
            .map_err(|_| "the embedded font (assets/DejaVuSans.ttf) cannot be read".to_string())
        })
        .clone()
        .map_err(ReportError::Chart)
}

pub(crate) fn err<E: std::fmt::Debug>(e: E) -> ReportError {
    ReportError::Chart(format!("{e:?}"))
}

/// Draws `$draw(&area, args…)` into `<out>/<stem>.svg` and `.png`.
macro_rules! both {
    ($out:expr, $stem:expr, $size:expr, $draw:ident ( $($arg:expr),* )) => {{
        let svg = $out.join(format!("{}.svg", $stem));
        let png = $out.join(format!("{}.png", $stem));
        {
            let root = SVGBackend::new(&svg, $size).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            $draw(&root, $($arg),*)?;
            root.present().map_err(err)?;
        }
        {
            let root = BitMapBackend::new(&png, $size).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            $draw(&root, $($arg),*)?;
            root.present().map_err(err)?;
        }
    }};
}

/// [`both!`], then lists the chart under `title` in `charts`.
macro_rules! chart {
    ($charts:expr, $out:expr, $stem:expr, $size:expr, $title:expr, $draw:ident ( $($arg:expr),* )) => {{
        let stem: String = $stem;
        both!($out, stem, $size, $draw($($arg),*));
        $charts.push(Chart {
            stem,
            title: $title,
        });
    }};
}

/// Draws every chart the data supports into `out`.
pub fn render_all(
    data: &StudyData,
    refs: &References,
    dataset: Option<&str>,
    out: &Path,
) -> Result<Vec<Chart>, ReportError> {
    register_font()?;
    let mut charts = Vec::new();
    let rows = data.variants.len().max(1) as u32;
    for (metric, name) in [(ClaimMetric::F1, "f1"), (ClaimMetric::Em, "em")] {
        chart!(
            charts,
            out,
            format!("effect-{name}"),
            (900, 120 + 34 * rows),
            format!(
                "{} per variant (mean ± std over seeds; dots are seeds)",
                name.to_uppercase()
            ),
            draw_effect(data, &metric)
        );
    }
    for (metric, title) in [
        ("loss", "Training loss"),
        ("learning_rate", "Learning rate"),
        ("eval_f1", "Eval F1"),
    ] {
        if data.curves.values().any(|c| c.contains_key(metric)) {
            chart!(
                charts,
                out,
                format!("curve-{}", metric.replace('_', "-")),
                (900, 460),
                format!("{title} against step (mean over seeds, band = min–max)"),
                draw_curves(data, metric, title)
            );
        }
    }
    if let Some(ds) = dataset.filter(|ds| !refs.on(ds).is_empty()) {
        let n = (refs.on(ds).len() + data.variants.len()) as u32;
        chart!(
            charts,
            out,
            format!("references-{ds}"),
            (900, 100 + 30 * n),
            format!("F1 on {ds}: published results (grey) and this study (blue)"),
            draw_references(data, refs, ds)
        );
    }
    grid_charts(data, out, &mut charts)?;
    search_charts(data, out, &mut charts)?;
    chart!(
        charts,
        out,
        "params-f1".to_string(),
        (900, 520),
        "Parameters against F1: published (ALBERT paper, SQuAD1.1 dev; Chinese models on the study's dataset) and this study".into(),
        draw_params(data, refs, dataset)
    );
    Ok(charts)
}

/// A search study's charts: its progress, the objective against each searched key, and
/// every trial's evaluation curve (pruned ones marked).
fn search_charts(data: &StudyData, out: &Path, charts: &mut Vec<Chart>) -> Result<(), ReportError> {
    let Some(s) = crate::search::summarize(data) else {
        return Ok(());
    };
    chart!(
        charts,
        out,
        "search-progress".to_string(),
        (900, 420),
        format!(
            "Search progress: {} of each suggestion in the order made (red circles: pruned, at the value where they stopped) and the best so far",
            s.metric
        ),
        draw_search_progress(&s)
    );
    for (k, (key, domain)) in s.space.iter().enumerate() {
        let short = key.rsplit('.').next().unwrap_or(key);
        chart!(
            charts,
            out,
            format!("search-{}", short.replace('_', "-")),
            (900, 380),
            format!(
                "{} against {} (red circles: pruned)",
                s.metric,
                search::axis_name(key, domain)
            ),
            draw_search_param(&s, k)
        );
    }
    if data.curves.values().any(|c| c.contains_key("eval_f1")) {
        chart!(
            charts,
            out,
            "search-curves".to_string(),
            (900, 420),
            "Eval F1 of every trial against step (red: pruned, ending with a cross where the pruner stopped it)".into(),
            draw_search_curves(data)
        );
    }
    Ok(())
}

use search::{
    draw_eval_curves as draw_search_curves, draw_param as draw_search_param,
    draw_progress as draw_search_progress,
};

/// A grid study's charts: F1 against each grid key, and with two keys or more the heatmap
/// (exactly two), parallel coordinates and expected validation performance.
fn grid_charts(data: &StudyData, out: &Path, charts: &mut Vec<Chart>) -> Result<(), ReportError> {
    let grid_keys = grid::keys(data);
    for (k, (key, values)) in grid_keys.iter().enumerate() {
        let short = key.rsplit('.').next().unwrap_or(key);
        chart!(
            charts,
            out,
            format!("grid-{}", short.replace('_', "-")),
            (900, 120 + 40 * values.len() as u32),
            format!("F1 against {key} (baseline at every grid point; dots are seeds)"),
            grid_effect(data, k)
        );
    }
    if grid_keys.len() == 2 {
        chart!(
            charts,
            out,
            "grid-heatmap".to_string(),
            (800, 600),
            format!(
                "Mean F1 over seeds for each ({}, {})",
                grid_keys[0].0, grid_keys[1].0
            ),
            grid_heatmap(data)
        );
    }
    if grid_keys.len() >= 2 {
        chart!(
            charts,
            out,
            "grid-parallel".to_string(),
            (900, 460),
            "Parallel coordinates: one line per grid point, coloured by mean F1 (dark = high)"
                .into(),
            grid_parallel(data)
        );
    }
    if !grid_keys.is_empty() && grid::evp_groups(data).iter().any(|(_, s)| s.len() >= 2) {
        chart!(
            charts,
            out,
            "grid-evp".to_string(),
            (900, 460),
            "Expected validation performance (Dodge et al. 2019): the expected best seed-mean F1 among n of the grid configurations tried, per model, with 95% bands of the seed noise; where the curves part is the tuning budget at which one model beats the other".into(),
            grid_evp(data)
        );
    }
    Ok(())
}

fn label_area(names: &[String]) -> u32 {
    (names.iter().map(|n| n.len()).max().unwrap_or(8) as u32 * 8 + 20).min(420)
}

type Chart2d<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart with one row per name on the y axis (names as tick labels) and `x` across.
/// The name at an integer tick of a categorical axis; nothing between ticks.
pub(crate) fn tick_name(names: &[String], at: f64) -> String {
    let i = at.round();
    if (at - i).abs() < 1e-6 && i >= 0.0 {
        names.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

pub(crate) fn categorical_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    names: &[String],
    x: std::ops::Range<f64>,
    x_desc: &str,
) -> Result<Chart2d<'a, DB>, ReportError> {
    let n = names.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(label_area(names))
        .build_cartesian_2d(x, -0.5f64..(n as f64 - 0.5))
        .map_err(err)?;
    chart
        .configure_mesh()
        .y_labels(n)
        .y_label_formatter(&|y| tick_name(names, *y))
        .x_desc(x_desc)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .disable_y_mesh()
        .draw()
        .map_err(err)?;
    Ok(chart)
}

pub(crate) fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), ReportError> {
    chart
        .configure_series_labels()
        .label_font((FONT, 12))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(position)
        .draw()
        .map_err(err)
}

fn draw_effect<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &StudyData,
    metric: &ClaimMetric,
) -> Result<(), ReportError> {
    let names: Vec<String> = data.variants.iter().map(|v| v.name.clone()).collect();
    let values: Vec<Vec<f64>> = data.variants.iter().map(|v| v.values(metric)).collect();
    let all: Vec<f64> = values.iter().flatten().copied().collect();
    let (lo, hi) = bounds(&all);
    let label = metric.label();
    let mut chart = categorical_chart(area, &names, lo..hi, label)?;
    for (i, (v, vals)) in data.variants.iter().zip(&values).enumerate() {
        let y = i as f64;
        let color = if v.is_baseline() { BASELINE } else { VARIANT };
        for x in vals {
            chart
                .draw_series(std::iter::once(Circle::new(
                    (*x, y),
                    4,
                    color.stroke_width(1),
                )))
                .map_err(err)?;
        }
        if let Some(s) = summarize(vals) {
            let (a, b) = (s.mean - s.std, s.mean + s.std);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(a, y), (b, y)],
                    color.stroke_width(2),
                )))
                .map_err(err)?;
            for x in [a, b] {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x, y - 0.15), (x, y + 0.15)],
                        color.stroke_width(2),
                    )))
                    .map_err(err)?;
            }
            chart
                .draw_series(std::iter::once(Circle::new((s.mean, y), 6, color.filled())))
                .map_err(err)?;
        }
    }
    Ok(())
}

pub(crate) fn bounds(values: &[f64]) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 100.0);
    }
    let pad = ((hi - lo) * 0.15).max(1.0);
    ((lo - pad).max(0.0), (hi + pad).min(100.0).max(lo + 1.0))
}

/// Mean, min and max over seeds at each step every seed logged.
fn aggregate(curves: &[&Curve]) -> Vec<(f64, f64, f64, f64)> {
    let mut by_step: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for c in curves {
        for (s, v) in c.iter() {
            if v.is_finite() {
                by_step.entry(*s).or_default().push(*v);
            }
        }
    }
    by_step
        .into_iter()
        .filter(|(_, vs)| vs.len() == curves.len())
        .map(|(s, vs)| {
            let mean = vs.iter().sum::<f64>() / vs.len() as f64;
            let min = vs.iter().copied().fold(f64::INFINITY, f64::min);
            let max = vs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (s as f64, mean, min, max)
        })
        .collect()
}

/// The curve of `metric` (mean over seeds, band = min–max) of every succeeded and running
/// trial, as an SVG document: the live view's chart (`sweep serve`), drawn by the report's
/// code.
pub fn live_curve_svg(data: &StudyData, metric: &str, title: &str) -> Result<String, ReportError> {
    register_font()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw_curves_of(&root, data, metric, title, true)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn draw_curves<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &StudyData,
    metric: &str,
    title: &str,
) -> Result<(), ReportError> {
    draw_curves_of(area, data, metric, title, false)
}

/// The curves of succeeded trials, and with `running` those of running trials too.
fn draw_curves_of<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &StudyData,
    metric: &str,
    title: &str,
    running: bool,
) -> Result<(), ReportError> {
    let mut series = Vec::new();
    for v in &data.variants {
        if v.duplicate_of.is_some() {
            continue; // drawn under the variant it shares runs with
        }
        let curves: Vec<&Curve> = v
            .rows
            .iter()
            .filter(|r| {
                r.status == TrialStatus::Succeeded || (running && r.status == TrialStatus::Running)
            })
            .filter_map(|r| data.curves.get(&r.trial_id).and_then(|c| c.get(metric)))
            .collect();
        if curves.is_empty() {
            continue;
        }
        series.push((v.name.clone(), aggregate(&curves)));
    }
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .collect();
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().flat_map(|q| [q.2, q.3]))
        .collect();
    let xmax = xs.iter().copied().fold(1.0, f64::max);
    let ymin = ys.iter().copied().fold(f64::INFINITY, f64::min);
    let ymax = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (ymin, ymax) = if ymin.is_finite() && ymax > ymin {
        (ymin - (ymax - ymin) * 0.05, ymax + (ymax - ymin) * 0.05)
    } else {
        (0.0, 1.0)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..xmax, ymin..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(err)?;
    for (k, (name, points)) in series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        // A single point has no band to shade; it gets a dot instead.
        let dots = if points.len() == 1 { 4 } else { 0 };
        draw_band_line(&mut chart, name, points, color, dots)?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// A mean line through `(x, mean, low, high)` points over its shaded `[low, high]` band,
/// with a legend entry, and dots of radius `dots` at the points (0: none).
pub(crate) fn draw_band_line<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    name: &str,
    points: &[(f64, f64, f64, f64)],
    color: RGBColor,
    dots: u32,
) -> Result<(), ReportError> {
    if points.len() > 1 {
        let band: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.0, p.3))
            .chain(points.iter().rev().map(|p| (p.0, p.2)))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(
                band,
                color.mix(0.15).filled(),
            )))
            .map_err(err)?;
    }
    chart
        .draw_series(LineSeries::new(
            points.iter().map(|p| (p.0, p.1)),
            color.stroke_width(2),
        ))
        .map_err(err)?
        .label(name.to_string())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    if dots > 0 {
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.0, p.1), dots, color.filled())),
            )
            .map_err(err)?;
    }
    Ok(())
}

fn draw_references<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &StudyData,
    refs: &References,
    dataset: &str,
) -> Result<(), ReportError> {
    let mut bars: Vec<(String, f64, RGBColor)> = refs
        .on(dataset)
        .into_iter()
        .map(|(m, s)| (format!("{} (published)", m.name), s.f1, PUBLISHED))
        .collect();
    for v in data.variants.iter().filter(|v| v.duplicate_of.is_none()) {
        if let Some(s) = summarize(&v.values(&ClaimMetric::F1)) {
            bars.push((format!("{} (this study)", v.name), s.mean, VARIANT));
        }
    }
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let mut chart = categorical_chart(area, &names, 0.0..100.0, "F1")?;
    for (i, (_, value, color)) in bars.iter().enumerate() {
        let y = i as f64;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, y - 0.35), (*value, y + 0.35)],
                color.filled(),
            )))
            .map_err(err)?;
    }
    Ok(())
}

/// (parameters in millions, F1, label).
type LabelledPoint = (f64, f64, String);

/// The points of the parameters-against-F1 chart, by group: published SQuAD1.1 dev
/// results, published results on the study's dataset, and this study's variants (their size
/// from the `parameters` line their trials log at step 0).
fn params_groups(
    data: &StudyData,
    refs: &References,
    dataset: Option<&str>,
) -> Vec<(String, RGBColor, Vec<LabelledPoint>)> {
    let mut groups: Vec<(String, RGBColor, Vec<LabelledPoint>)> = Vec::new();
    let squad: Vec<LabelledPoint> = refs
        .on("squad1.1-dev")
        .into_iter()
        .filter_map(|(m, s)| m.params_m.map(|p| (p, s.f1, m.name.clone())))
        .collect();
    groups.push(("published, SQuAD1.1 dev".into(), PUBLISHED, squad));
    if let Some(ds) = dataset.filter(|d| *d != "squad1.1-dev") {
        let on: Vec<LabelledPoint> = refs
            .on(ds)
            .into_iter()
            .filter_map(|(m, s)| m.params_m.map(|p| (p, s.f1, m.name.clone())))
            .collect();
        if !on.is_empty() {
            groups.push((format!("published, {ds}"), RGBColor(90, 90, 90), on));
        }
    }
    let mine: Vec<LabelledPoint> = data
        .variants
        .iter()
        .filter(|v| v.duplicate_of.is_none())
        .filter_map(|v| {
            let f1 = summarize(&v.values(&ClaimMetric::F1))?.mean;
            let params = v.succeeded().find_map(|r| {
                data.curves
                    .get(&r.trial_id)?
                    .get("parameters")?
                    .first()
                    .map(|p| p.1)
            })?;
            Some((params / 1e6, f1, v.name.clone()))
        })
        .collect();
    groups.push((
        format!("this study, {}", dataset.unwrap_or("its own eval set")),
        VARIANT,
        mine,
    ));
    groups
}

fn draw_params<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &StudyData,
    refs: &References,
    dataset: Option<&str>,
) -> Result<(), ReportError> {
    let groups = params_groups(data, refs, dataset);
    let xs: Vec<f64> = groups
        .iter()
        .flat_map(|g| g.2.iter().map(|p| p.0))
        .collect();
    let xmin = xs.iter().copied().fold(f64::INFINITY, f64::min).max(1e-3);
    let xmax = xs.iter().copied().fold(1.0, f64::max);
    let (xmin, xmax) = if xmin.is_finite() {
        (xmin / 2.0, xmax * 2.0)
    } else {
        (0.1, 1000.0)
    };
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((xmin..xmax).log_scale(), 0f64..100f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("parameters (millions, log scale)")
        .y_desc("F1")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(err)?;
    for (name, color, points) in groups {
        chart
            .draw_series(
                points
                    .iter()
                    .map(|(x, y, _)| Circle::new((*x, *y), 5, color.filled())),
            )
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
        chart
            .draw_series(points.iter().map(|(x, y, label)| {
                Text::new(
                    label.clone(),
                    (*x, *y + 2.0),
                    (FONT, 11).into_font().color(&BLACK),
                )
            }))
            .map_err(err)?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerRight)
}
