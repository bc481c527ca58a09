//! What the page shows, read from the database: the studies, one study's trials (state,
//! device, step, time left, scores, the tail of an error), its claims with their current
//! verdicts, and its curves as SVG. Everything computed is kept until the database's
//! `data_version` changes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use report::data::StudyData;
use serde_json::{json, Value};
use spec::protocol::TrialStatus;
use store::{Store, StudyTrialRow};

/// Why a view could not be made.
#[derive(Debug)]
pub enum ViewError {
    /// No such study (or report, or curve): 404.
    NotFound(String),
    /// The database could not be read: 503 (the page retries).
    Failed(String),
}

impl From<store::StoreError> for ViewError {
    fn from(e: store::StoreError) -> Self {
        ViewError::Failed(e.to_string())
    }
}

impl From<report::ReportError> for ViewError {
    fn from(e: report::ReportError) -> Self {
        match e {
            report::ReportError::Input(m) => ViewError::NotFound(m),
            other => ViewError::Failed(other.to_string()),
        }
    }
}

/// A JSON document and the database version it was computed at (its ETag).
#[derive(Debug, Clone)]
pub struct Doc {
    pub version: String,
    pub body: Bytes,
}

/// The curves the page draws, and their titles.
pub const CURVES: [(&str, &str); 3] = [
    ("loss", "Training loss"),
    ("learning_rate", "Learning rate"),
    ("eval_f1", "Eval F1"),
];

/// The one read-only connection and what was computed at its current `data_version`.
pub struct Reader {
    store: Store,
    db: PathBuf,
    version: Option<i64>,
    studies: Option<Doc>,
    details: HashMap<String, Doc>,
    data: HashMap<String, Arc<StudyData>>,
    svgs: HashMap<(String, String), Bytes>,
}

/// `reports/` beside the database: where `sweep report NAME` writes by default.
pub fn reports_dir(db: &Path) -> PathBuf {
    db.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("reports")
}

impl Reader {
    pub fn open(db: &Path) -> Result<Self, store::StoreError> {
        Ok(Reader {
            store: Store::open_read_only(db)?,
            db: db.to_path_buf(),
            version: None,
            studies: None,
            details: HashMap::new(),
            data: HashMap::new(),
            svgs: HashMap::new(),
        })
    }

    /// Drops what was computed when another connection has committed since.
    fn refresh(&mut self) -> Result<String, ViewError> {
        let version = self.store.data_version()?;
        if self.version != Some(version) {
            self.version = Some(version);
            self.studies = None;
            self.details.clear();
            self.data.clear();
            self.svgs.clear();
        }
        Ok(format!("v{version}"))
    }

    /// The database's version as the page sees it (`v<data_version>`).
    pub fn version(&mut self) -> Result<String, ViewError> {
        self.refresh()
    }

    fn doc(version: &str, value: &Value) -> Doc {
        Doc {
            version: version.to_string(),
            body: Bytes::from(value.to_string()),
        }
    }

    /// Every study with its trial counts by state.
    pub fn studies(&mut self) -> Result<Doc, ViewError> {
        let version = self.refresh()?;
        if let Some(d) = &self.studies {
            return Ok(d.clone());
        }
        let mut list = Vec::new();
        for name in self.store.study_names()? {
            let Some(row) = self.store.study(&name)? else {
                continue;
            };
            let trials = self.store.study_trials(&name)?;
            list.push(json!({
                "name": name,
                "description": row.description,
                "updated_at": row.updated_at,
                "counts": counts(&trials),
            }));
        }
        let doc = Self::doc(&version, &json!({ "studies": list }));
        self.studies = Some(doc.clone());
        Ok(doc)
    }

    fn data(&mut self, name: &str) -> Result<Arc<StudyData>, ViewError> {
        if let Some(d) = self.data.get(name) {
            return Ok(Arc::clone(d));
        }
        let d = Arc::new(report::data::load(&self.store, name)?);
        self.data.insert(name.to_string(), Arc::clone(&d));
        Ok(d)
    }

    /// One study: its trials, claims and which curves exist.
    pub fn study(&mut self, name: &str) -> Result<Doc, ViewError> {
        let version = self.refresh()?;
        if let Some(d) = self.details.get(name) {
            return Ok(d.clone());
        }
        let data = self.data(name)?;
        let now = chrono::Utc::now();
        let mut trials = Vec::new();
        for v in &data.variants {
            for r in &v.rows {
                trials.push(trial_json(r, data.curves.get(&r.trial_id), now));
            }
        }
        let claims: Vec<Value> = report::claims::evaluate(&data)
            .iter()
            .map(|c| {
                let row = report::claims::main_row(c);
                json!({
                    "comparison": row[0], "claim": row[1], "verdict": row[2],
                    "pairs": row[3], "interval": row[4], "p": row[5], "why": row[6],
                })
            })
            .collect();
        let curves: Vec<Value> = CURVES
            .iter()
            .filter(|(m, _)| data.curves.values().any(|c| c.contains_key(*m)))
            .map(|(m, title)| json!({"metric": m, "title": title}))
            .collect();
        let report = reports_dir(&self.db).join(name).join("index.html");
        let doc = Self::doc(
            &version,
            &json!({
                "name": name,
                "description": data.study.description,
                "version": version,
                "trials": trials,
                "counts": counts(data.variants.iter().flat_map(|v| &v.rows)),
                "claims": claims,
                "curves": curves,
                "report": report.is_file(),
            }),
        );
        self.details.insert(name.to_string(), doc.clone());
        Ok(doc)
    }

    /// One curve of a study as SVG (succeeded and running trials).
    pub fn curve(&mut self, name: &str, metric: &str) -> Result<Bytes, ViewError> {
        self.refresh()?;
        let Some((metric, title)) = CURVES.iter().find(|(m, _)| *m == metric) else {
            return Err(ViewError::NotFound(format!("no curve named {metric:?}")));
        };
        let key = (name.to_string(), metric.to_string());
        if let Some(svg) = self.svgs.get(&key) {
            return Ok(svg.clone());
        }
        let data = self.data(name)?;
        let svg = Bytes::from(report::charts::live_curve_svg(&data, metric, title)?);
        self.svgs.insert(key, svg.clone());
        Ok(svg)
    }

    /// `reports/NAME/index.html` for a study the database knows, if it is a plain file
    /// under the reports folder (no link leads out of it).
    pub fn report_file(&mut self, name: &str) -> Result<Vec<u8>, ViewError> {
        let missing = || {
            ViewError::NotFound(format!(
                "no report for {name:?} yet: `sweep report {name}` writes one"
            ))
        };
        if !self.store.study_names()?.iter().any(|n| n == name) {
            return Err(ViewError::NotFound(format!("no study named {name:?}")));
        }
        let dir = reports_dir(&self.db);
        let path = dir.join(name).join("index.html");
        let (Ok(root), Ok(real)) = (dir.canonicalize(), path.canonicalize()) else {
            return Err(missing());
        };
        let plain = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
        if !plain || !real.starts_with(&root) {
            return Err(missing());
        }
        std::fs::read(&real).map_err(|_| missing())
    }
}

fn counts<'a>(rows: impl IntoIterator<Item = &'a StudyTrialRow>) -> Value {
    let mut by: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for r in rows {
        *by.entry(r.status.as_str()).or_default() += 1;
    }
    json!(by)
}

/// The last `(step, value)` of a trial's curve `name`.
fn last_point(
    curves: Option<&std::collections::BTreeMap<String, report::data::Curve>>,
    name: &str,
) -> Option<(i64, f64)> {
    curves?.get(name)?.last().copied()
}

/// The tail of an error text: its last 600 characters.
fn tail(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    chars[chars.len().saturating_sub(600)..].iter().collect()
}

fn trial_json(
    r: &StudyTrialRow,
    curves: Option<&std::collections::BTreeMap<String, report::data::Curve>>,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let started = r
        .started_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let finished = r
        .finished_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let elapsed = started.map(|s| {
        let end = match (r.status, finished) {
            (TrialStatus::Running, _) | (_, None) => now,
            (_, Some(f)) => f.with_timezone(&chrono::Utc),
        };
        (end - s.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0
    });
    let step = ["loss", "learning_rate", "eval_f1"]
        .iter()
        .filter_map(|m| last_point(curves, m))
        .map(|(s, _)| s)
        .max();
    let total = last_point(curves, "total_steps").map(|(_, v)| v as i64);
    let left = match (r.status, elapsed, step, total) {
        (TrialStatus::Running, Some(e), Some(s), Some(t)) if s > 0 && t >= s => {
            Some(e * (t - s) as f64 / s as f64)
        }
        _ => None,
    };
    json!({
        "variant": r.variant,
        "seed": r.seed,
        "trial": r.trial_id,
        "status": r.status.as_str(),
        "device": r.device,
        "attempts": r.attempts,
        "started_at": r.started_at,
        "elapsed_s": elapsed,
        "step": step,
        "total_steps": total,
        "left_s": left,
        "em": r.em,
        "f1": r.f1,
        "error": r.error.as_deref().map(tail),
        "shared_with": r.duplicate_of,
    })
}
