//! `sweep report --compare A B`: two studies side by side (e.g. the synthetic demo and a DRCD
//! run of the same ablations): each study's full report in a subfolder, and a page that
//! lines up their variants (by ablation name) and claim verdicts.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use store::Store;

use crate::html::esc;
use crate::markdown::fmt_stat;
use crate::references::References;
use crate::ReportError;

/// Writes `out/<A>/`, `out/<B>/` and `out/index.html` + `out/report.md`.
pub fn write_comparison(
    store: &Store,
    a: &str,
    b: &str,
    out: &Path,
    refs: &References,
) -> Result<PathBuf, ReportError> {
    std::fs::create_dir_all(out).map_err(|e| ReportError::Io {
        path: out.display().to_string(),
        source: e,
    })?;
    let mut sides = Vec::new();
    for name in [a, b] {
        let (_, report) = crate::write_report_keeping(store, name, &out.join(name), refs)?;
        let ablations: Vec<(String, String)> = report
            .data
            .variants
            .iter()
            .map(|v| (v.ablation.clone(), v.name.clone()))
            .collect();
        sides.push((name.to_string(), report.summary, report.claims, ablations));
    }
    let mut ablations: Vec<String> = Vec::new();
    for (_, _, _, abl) in &sides {
        for (ab, _) in abl {
            if !ablations.contains(ab) {
                ablations.push(ab.clone());
            }
        }
    }
    let mut md = format!("# {a} vs {b}\n\nFull reports: [{a}]({a}/report.md), [{b}]({b}/report.md).\n\n| ablation | {a} F1 | {a} verdict | {b} F1 | {b} verdict |\n|---|---|---|---|---|\n");
    let mut html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{0} vs {1}</title><style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:.3em .6em}}th{{background:#f5f5f5}}</style></head><body><h1>{0} vs {1}</h1><p>Full reports: <a href=\"{0}/index.html\">{0}</a>, <a href=\"{1}/index.html\">{1}</a>.</p><table><tr><th>ablation</th><th>{0} F1</th><th>{0} verdict</th><th>{1} F1</th><th>{1} verdict</th></tr>",
        esc(a),
        esc(b)
    );
    for ab in &ablations {
        let mut cells = Vec::new();
        for (_, summary, claims, abl) in &sides {
            let variant = abl.iter().find(|(x, _)| x == ab).map(|(_, v)| v.clone());
            let f1 = variant
                .as_ref()
                .and_then(|v| summary.iter().find(|s| &s.variant == v))
                .map_or("–".to_string(), |s| fmt_stat(&s.f1));
            let verdict = variant
                .as_ref()
                .and_then(|v| claims.iter().find(|c| &c.variant == v))
                .map_or("–".to_string(), |c| c.verdict.label().to_string());
            cells.push((f1, verdict));
        }
        let _ = writeln!(
            md,
            "| {ab} | {} | {} | {} | {} |",
            cells[0].0, cells[0].1, cells[1].0, cells[1].1
        );
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(ab),
            esc(&cells[0].0),
            esc(&cells[0].1),
            esc(&cells[1].0),
            esc(&cells[1].1)
        );
    }
    html.push_str("</table></body></html>\n");
    let io = |p: PathBuf, e: std::io::Error| ReportError::Io {
        path: p.display().to_string(),
        source: e,
    };
    std::fs::write(out.join("report.md"), md).map_err(|e| io(out.join("report.md"), e))?;
    std::fs::write(out.join("index.html"), html).map_err(|e| io(out.join("index.html"), e))?;
    Ok(out.join("index.html"))
}
