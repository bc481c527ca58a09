//! A trial's folder, `<workdir>/trials/<id>/`: the runner writes `trial.yaml`, the trial
//! process writes the rest (`spec::protocol::files`). The runner only reads those files:
//! it tails `metrics.jsonl` while the trial runs and reads the outcome when it ends.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde_json::Value;
use spec::protocol::{files, MetricLine};
use spec::{Device, TrialConfig};
use store::{EvalRow, MetricRow, PredictionRow};

use crate::RunnerError;

fn io(path: &Path, e: std::io::Error) -> RunnerError {
    RunnerError::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// Makes the trial's paths absolute (trial processes may run elsewhere, e.g. under Slurm).
pub fn absolutize(config: &TrialConfig) -> Result<TrialConfig, RunnerError> {
    let abs = |p: &Path| std::path::absolute(p).map_err(|e| io(p, e));
    let mut c = config.clone();
    c.data.train = abs(&c.data.train)?;
    c.data.eval = abs(&c.data.eval)?;
    if let Some(p) = &c.model.init {
        c.model.init = Some(abs(p)?);
    }
    if let Some(p) = &c.model.vocab {
        c.model.vocab = Some(abs(p)?);
    }
    // A program runs in its trial folder: relative paths it is given (the script in
    // `python3 tools/train.py`, the `code:` files) are made absolute here, where they mean
    // what the study meant. An element with a placeholder, an option (`-x`) or a bare
    // program name looked up in PATH is left as it is.
    if let Some(command) = &mut c.command {
        for (i, arg) in command.iter_mut().enumerate() {
            let path = Path::new(arg.as_str());
            let names_a_path = !arg.contains('{')
                && !arg.starts_with('-')
                && path.is_relative()
                && (arg.contains('/') || i > 0)
                && path.exists();
            if names_a_path {
                *arg = abs(path)?.display().to_string();
            }
        }
    }
    for p in &mut c.code {
        *p = abs(p)?;
    }
    Ok(c)
}

/// Writes `trial.yaml` for an attempt on `device` (as the trial process will see it)
/// atomically, and removes a stale `result.json`, so that only this attempt's outcome is
/// read. (A `result.json` whose recording was lost is recovered before this; see
/// `scheduler`.)
pub fn prepare(dir: &Path, config: &TrialConfig, device: Device) -> Result<(), RunnerError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut c = absolutize(config)?;
    c.train.device = device;
    let text = serde_yaml::to_string(&c).map_err(|e| RunnerError::Io {
        path: dir.display().to_string(),
        source: std::io::Error::other(e),
    })?;
    write_atomically(&dir.join(files::SPEC), text.as_bytes())?;
    let result = dir.join(files::RESULT);
    if result.exists() {
        std::fs::remove_file(&result).map_err(|e| io(&result, e))?;
    }
    Ok(())
}

pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RunnerError> {
    spec::atomic::write_file(path, bytes).map_err(|e| io(&e.path, e.source))
}

/// New complete lines of `metrics.jsonl` from `offset` on.
#[derive(Debug, Default)]
pub struct MetricsChunk {
    pub metrics: Vec<MetricRow>,
    pub evals: Vec<EvalRow>,
    /// Where the next read starts (just past the last complete line).
    pub offset: u64,
    /// The file is shorter than `offset`: it was rewritten (a resumed trial truncates it).
    pub rewound: bool,
}

/// Reads complete lines appended since `offset`. A partial last line is left for the next
/// read; a line that is not a JSON object is skipped.
pub fn read_metrics(dir: &Path, offset: u64) -> Result<MetricsChunk, RunnerError> {
    let path = dir.join(files::METRICS);
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(MetricsChunk {
                offset,
                ..MetricsChunk::default()
            })
        }
        Err(e) => return Err(io(&path, e)),
    };
    let len = f.metadata().map_err(|e| io(&path, e))?.len();
    let (start, rewound) = if len < offset {
        (0, true)
    } else {
        (offset, false)
    };
    f.seek(SeekFrom::Start(start)).map_err(|e| io(&path, e))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).map_err(|e| io(&path, e))?;
    let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut chunk = MetricsChunk {
        offset: start + complete as u64,
        rewound,
        ..MetricsChunk::default()
    };
    for line in String::from_utf8_lossy(&buf[..complete]).lines() {
        parse_metric_line(line, &mut chunk);
    }
    Ok(chunk)
}

/// One [`MetricLine`] gives a row per numeric value, and an evaluation row when it is one.
fn parse_metric_line(line: &str, chunk: &mut MetricsChunk) {
    let Some(m) = MetricLine::parse(line) else {
        return;
    };
    let Ok(step) = i64::try_from(m.step) else {
        return;
    };
    for (name, value) in m.values() {
        chunk.metrics.push(MetricRow {
            step,
            epoch: m.epoch,
            name,
            value,
            time: m.elapsed_seconds,
        });
    }
    if let Some((em, f1)) = m.evaluation() {
        chunk.evals.push(EvalRow {
            step,
            epoch: m.epoch,
            split: "eval".into(),
            em,
            f1,
        });
    }
}

/// A JSON object file of the trial folder (`env.json`), if the trial wrote one.
pub fn read_json(dir: &Path, name: &str) -> Option<serde_json::Map<String, Value>> {
    let text = std::fs::read_to_string(dir.join(name)).ok()?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// The last `lines` lines of a log written since byte `from`.
pub fn log_tail(path: &Path, from: u64, lines: usize) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    // The tail of a huge log is enough; read at most the last 64 KiB.
    let start = from.max(len.saturating_sub(64 * 1024)).min(len);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    (!tail.trim().is_empty()).then_some(tail)
}

/// A trial's `predictions.json` scored against its eval set: the per-question rows and the
/// official EM/F1 over all questions.
#[derive(Debug)]
pub struct Scored {
    pub rows: Vec<PredictionRow>,
    pub em: f64,
    pub f1: f64,
}

/// How far a trial's reported EM or F1 may be from the score of its predictions (both are
/// percentages; programs that round to two decimals stay inside).
pub const SCORE_TOLERANCE: f64 = 0.01;

/// Per-question rows of a trial's `predictions.json`, scored against its eval set.
pub fn score_predictions(
    dir: &Path,
    eval: &qa_data::squad::Dataset,
) -> Result<Scored, RunnerError> {
    let path = dir.join(files::PREDICTIONS);
    let predictions: HashMap<String, String> =
        qa_data::squad::load_predictions(&path).map_err(|e| RunnerError::Check {
            what: path.display().to_string(),
            message: e.to_string(),
        })?;
    let scores = qa_data::metric::evaluate(eval, &predictions);
    let rows = scores
        .per_question
        .into_iter()
        .filter(|q| q.answered)
        .map(|q| PredictionRow {
            answer: predictions.get(q.id.trim()).cloned().unwrap_or_default(),
            question_id: q.id,
            em: Some(q.em),
            f1: Some(q.f1),
        })
        .collect();
    Ok(Scored {
        rows,
        em: scores.em,
        f1: scores.f1,
    })
}
