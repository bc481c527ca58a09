//! The study report: statistics over seeds ([`stats`]), claim verdicts ([`claims`]),
//! plotters charts ([`charts`]), published reference numbers ([`references`]), rendered
//! as a self-contained `index.html` and a GitHub-renderable `report.md`. Reads the
//! database only; never writes it.

pub mod charts;
pub mod claims;
pub mod compare;
pub mod content;
pub mod data;
pub mod html;
pub mod markdown;
pub mod references;
pub mod search;
pub mod stats;
pub mod status;

use std::path::{Path, PathBuf};

use references::References;
use store::Store;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    Input(String),
    #[error("chart: {0}")]
    Chart(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Everything a report shows.
#[derive(Debug)]
pub struct Report {
    pub db: String,
    pub data: data::StudyData,
    pub summary: Vec<content::SummaryRow>,
    pub claims: Vec<claims::ClaimResult>,
    pub charts: Vec<charts::Chart>,
    /// The reference key of the study's eval set (`drcd-dev`), if it has published numbers.
    pub dataset: Option<String>,
    pub examples: Vec<content::Example>,
    pub examples_note: Option<String>,
    pub repro: content::Reproducibility,
    /// A search study's suggestions and best results.
    pub search: Option<search::SearchReport>,
}

/// Writes the report of `study` into `out` (replacing it atomically: everything is written
/// to a sibling folder first, then renamed). Returns the path of `index.html`.
pub fn write_report(
    store: &Store,
    study: &str,
    out: &Path,
    refs: &References,
) -> Result<PathBuf, ReportError> {
    write_report_keeping(store, study, out, refs).map(|(index, _)| index)
}

/// [`write_report`], also returning what the report shows (for `--compare`).
pub fn write_report_keeping(
    store: &Store,
    study: &str,
    out: &Path,
    refs: &References,
) -> Result<(PathBuf, Report), ReportError> {
    let io = |p: &Path, e: std::io::Error| ReportError::Io {
        path: p.display().to_string(),
        source: e,
    };
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
    // The report is staged whole and swapped in: the old one stays as it was until the new
    // one is complete, and a failure (a full disk) leaves no half-written report behind.
    let tmp = spec::atomic::staging_dir(out).map_err(|e| io(&e.path, e.source))?;
    let written = write_into(store, study, refs, &tmp);
    let report = match written {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    spec::atomic::replace_dir(&tmp, out).map_err(|e| io(&e.path, e.source))?;
    Ok((out.join("index.html"), report))
}

/// Renders the whole report into the (staged) folder `tmp`.
fn write_into(
    store: &Store,
    study: &str,
    refs: &References,
    tmp: &Path,
) -> Result<Report, ReportError> {
    let io = |p: &Path, e: std::io::Error| ReportError::Io {
        path: p.display().to_string(),
        source: e,
    };
    let data = data::load(store, study)?;
    let dataset = data
        .configs
        .values()
        .find_map(|c| c.pointer("/data/eval").and_then(|v| v.as_str()))
        .and_then(references::dataset_key)
        .map(String::from);
    let chart_list = charts::render_all(&data, refs, dataset.as_deref(), tmp)?;
    let (examples, examples_note) = content::examples(store, &data, 3);
    let report = Report {
        db: store.path().to_string(),
        summary: content::summary(&data),
        claims: claims::evaluate(&data),
        charts: chart_list,
        dataset,
        examples,
        examples_note,
        repro: content::reproducibility(&data),
        search: search::summarize(&data),
        data,
    };
    let md = markdown::render(&report, refs);
    spec::atomic::write_file(&tmp.join("report.md"), md.as_bytes())
        .map_err(|e| io(&e.path, e.source))?;
    let html = html::render(&report, refs, tmp)?;
    spec::atomic::write_file(&tmp.join("index.html"), html.as_bytes())
        .map_err(|e| io(&e.path, e.source))?;
    Ok(report)
}
