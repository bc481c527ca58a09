//! The contract between the runner and a trial process (`sweep trial DIR`, or the runner's
//! test-suite fake trial), written once as types: the files of a trial folder, the
//! environment the runner sets, the exit codes, the lines of `metrics.jsonl`
//! ([`MetricLine`]), `result.json` ([`TrialResult`]), trial ids ([`TrialId`]) and the
//! statuses a trial moves through with their rules ([`TrialStatus`]), from which the store
//! builds its SQL. Lifecycle: `docs/trial-lifecycle.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::atomic::{self, FileError};

/// Files of a trial folder `results/trials/<id>/`.
pub mod files {
    /// The trial's config (absolute paths, seed set), written by the runner.
    pub const SPEC: &str = "trial.yaml";
    /// One JSON object per line, appended and flushed by the trial; the runner tails it.
    pub const METRICS: &str = "metrics.jsonl";
    /// The outcome, written atomically at the end by the trial.
    pub const RESULT: &str = "result.json";
    /// `{question id: answer}` of the last evaluation.
    pub const PREDICTIONS: &str = "predictions.json";
    /// The trained model as a HF directory (transformers loads it), written at the end and
    /// with every saved state.
    pub const CHECKPOINT: &str = "checkpoint";
    /// What a resumed run continues from (model, AdamW moments, position, loss scaler);
    /// removed when the run completes.
    pub const TRAIN_STATE: &str = "train_state";
    /// What ran the trial: binary version, git commit, backend, device name.
    pub const ENV: &str = "env.json";
    pub const STDOUT: &str = "stdout.log";
    pub const STDERR: &str = "stderr.log";
    /// Held (exclusive file lock) by the process running the trial, so two processes never
    /// run one trial folder at the same time, whichever runner started them.
    pub const LOCK: &str = ".lock";
}

/// Environment variables the runner sets for a trial process.
pub mod env {
    pub const TRIAL_ID: &str = "SWEEP_TRIAL_ID";
    /// The runner's pid: the trial asks the kernel for SIGTERM when its parent dies, and
    /// exits at once if the parent is already gone.
    pub const RUNNER_PID: &str = "SWEEP_RUNNER_PID";
    pub const CUDA_VISIBLE_DEVICES: &str = "CUDA_VISIBLE_DEVICES";
    /// The attempt number (1 for the first; retries and resumptions count up).
    pub const ATTEMPT: &str = "SWEEP_ATTEMPT";
    /// Program trials also get these (set by `sweep trial`'s supervisor).
    pub const TRIAL_DIR: &str = "SWEEP_TRIAL_DIR";
    pub const SEED: &str = "SWEEP_SEED";
    /// Seconds between SIGTERM and SIGKILL when a program trial is stopped (default 30).
    pub const PROGRAM_GRACE: &str = "SWEEP_PROGRAM_GRACE_SECONDS";
}

/// Exit codes of a trial process. Signals are reported separately by the OS.
pub mod exit {
    pub const SUCCEEDED: i32 = 0;
    /// Any error: bad input, a crash the trial caught, an I/O failure.
    pub const FAILED: i32 = 1;
    /// The loss became NaN or infinite; rerunning the same config would diverge again.
    pub const DIVERGED: i32 = 3;
    /// Stopped on SIGTERM/SIGINT after saving its state; running it again resumes.
    pub const INTERRUPTED: i32 = 4;
    /// Another process holds the trial folder's lock.
    pub const BUSY: i32 = 5;
    /// The device ran out of memory.
    pub const OUT_OF_MEMORY: i32 = 6;
}

/// How a trial process ended, as it reports it (exit code, and `status` in `result.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    /// The loss became NaN/inf (or f16 loss scaling overflowed too often).
    Diverged,
    /// Stopped on a signal after saving its state; writes no `result.json`.
    Interrupted,
}

impl Outcome {
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Succeeded => exit::SUCCEEDED,
            Outcome::Diverged => exit::DIVERGED,
            Outcome::Interrupted => exit::INTERRUPTED,
        }
    }
}

/// Whether an error text says the device ran out of memory (CUDA, cubecl, the allocator):
/// the trial exits with [`exit::OUT_OF_MEMORY`] then, and the runner reads a crashed
/// trial's stderr with the same rule.
pub fn mentions_out_of_memory(text: &str) -> bool {
    let t = text.to_lowercase();
    t.contains("out of memory")
        || t.contains("outofmemory")
        || t.contains("memory allocation failed")
}

/// `result.json`: the outcome of a completed run (succeeded or diverged), written once,
/// atomically, by the trial at its end; the runner reads nothing else to learn the scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialResult {
    pub status: Outcome,
    /// Exact match and F1 (0–100) of the last evaluation, by the official metric.
    #[serde(rename = "EM")]
    pub em: f64,
    #[serde(rename = "F1")]
    pub f1: f64,
    /// Optimizer steps taken (skipped f16 steps included).
    pub steps: u64,
    /// Mean training loss over the run's finite losses.
    #[serde(default)]
    pub train_loss: Option<f64>,
    #[serde(default)]
    pub train_seconds: Option<f64>,
    #[serde(default)]
    pub examples_per_second: Option<f64>,
    /// What else the trial reports (features, precision, skipped steps, seed, arch,
    /// backend, inert model_config keys): kept, shown, never required.
    #[serde(flatten)]
    pub details: BTreeMap<String, Value>,
}

impl TrialResult {
    /// Writes `dir/result.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<(), FileError> {
        atomic::write_json(&dir.join(files::RESULT), self)
    }

    /// The numbers of `details.metrics` (what a program trial reported beyond the fixed
    /// fields), by name.
    pub fn final_metrics(&self) -> Vec<(String, f64)> {
        match self.details.get("metrics") {
            Some(Value::Object(m)) => crate::program::numeric_metrics(m),
            _ => Vec::new(),
        }
    }

    /// Reads `dir/result.json`: `Ok(None)` when there is none, an error naming the file
    /// and what is wrong when it is unreadable.
    pub fn read(dir: &Path) -> Result<Option<TrialResult>, String> {
        let path = dir.join(files::RESULT);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// One line of `metrics.jsonl`: a step's training numbers, an evaluation, or both. The
/// runner stores every numeric value under its key; `eval_em`/`eval_f1` also make an
/// evaluation row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricLine {
    /// The optimizer step the line belongs to (0 before training).
    pub step: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<f64>,
    /// Seconds since this attempt started training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_seconds: Option<f64>,
    /// Mean training loss over the steps since the last line; `null` when not finite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examples_per_second: Option<f64>,
    /// f16 loss scaling's current scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_em: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_f1: Option<f64>,
    /// Set on the line where training diverged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub diverged: bool,
    /// Any other numbers a trial reports (e.g. `parameters`).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl MetricLine {
    pub fn at(step: u64) -> Self {
        MetricLine {
            step,
            ..MetricLine::default()
        }
    }

    /// A line of the file; `None` for anything that is not a metric line (a torn or
    /// foreign line is skipped, never fatal).
    pub fn parse(line: &str) -> Option<MetricLine> {
        serde_json::from_str(line).ok()
    }

    /// Every numeric value by name (`step`, `epoch` and `elapsed_seconds` are the row's
    /// coordinates, not values).
    pub fn values(&self) -> Vec<(String, f64)> {
        let known = [
            ("loss", self.loss),
            ("learning_rate", self.learning_rate),
            ("grad_norm", self.grad_norm),
            ("examples_per_second", self.examples_per_second),
            ("loss_scale", self.loss_scale),
            ("eval_em", self.eval_em),
            ("eval_f1", self.eval_f1),
        ];
        let mut out: Vec<(String, f64)> = known
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect();
        out.extend(
            self.other
                .iter()
                .filter_map(|(k, v)| v.as_f64().map(|v| (k.clone(), v))),
        );
        out
    }

    /// `(EM, F1)` when the line is an evaluation.
    pub fn evaluation(&self) -> Option<(f64, f64)> {
        self.eval_em.zip(self.eval_f1)
    }
}

/// `metrics.jsonl` opened by a trial: each line appended and flushed at once (the runner
/// tails the file while the trial runs).
#[derive(Debug)]
pub struct MetricsFile {
    file: std::fs::File,
    path: PathBuf,
}

impl MetricsFile {
    /// Opens `dir/metrics.jsonl` for an attempt that starts at `resumed_step`: a fresh run
    /// (`None`) starts an empty file; a resumed one keeps the lines up to its saved step
    /// and drops the rest, which it is about to redo (the runner sees the file shrink and
    /// re-reads it).
    pub fn open(dir: &Path, resumed_step: Option<u64>) -> std::io::Result<Self> {
        let path = dir.join(files::METRICS);
        match resumed_step {
            None => match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            },
            Some(step) => {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    let kept: String = text
                        .lines()
                        .filter(|l| MetricLine::parse(l).is_some_and(|m| m.step <= step))
                        .map(|l| format!("{l}\n"))
                        .collect();
                    atomic::write_file(&path, kept.as_bytes()).map_err(|e| e.source)?;
                }
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        Ok(MetricsFile { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line and flushes it.
    pub fn write(&mut self, line: &MetricLine) -> std::io::Result<()> {
        let text = serde_json::to_string(line).map_err(std::io::Error::other)?;
        writeln!(self.file, "{text}")?;
        self.file.flush()
    }
}

/// A trial's id: the hex SHA-256 prefix of its effective config. It names the trial's
/// folder (`trials/<id>`), so nothing else may pass for one: no path separators, no dots.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrialId(String);

impl TrialId {
    /// Lowercase hex, 8 to 64 characters.
    pub fn parse(text: &str) -> Result<TrialId, String> {
        let ok = (8..=64).contains(&text.len())
            && text
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        if ok {
            Ok(TrialId(text.to_string()))
        } else {
            Err(format!(
                "{text:?} is not a trial id (8 to 64 lowercase hex characters)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `<workdir>/trials/<id>`.
    pub fn dir_in(&self, workdir: &Path) -> PathBuf {
        workdir.join("trials").join(&self.0)
    }
}

impl std::ops::Deref for TrialId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TrialId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TrialId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        TrialId::parse(&s)
    }
}

impl From<TrialId> for String {
    fn from(id: TrialId) -> String {
        id.0
    }
}

/// Where a trial stands. The rules below are the only place they are written; the store
/// builds its SQL from them ([`TrialStatus::sql_list`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Diverged,
    OutOfMemory,
    TimedOut,
    Interrupted,
    /// Stopped early by a search's pruner (ASHA): its metric at a rung was not among the
    /// best. Final: it never runs again, and its curve up to there is kept.
    Pruned,
}

impl TrialStatus {
    pub const ALL: [TrialStatus; 9] = [
        Self::Pending,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Diverged,
        Self::OutOfMemory,
        Self::TimedOut,
        Self::Interrupted,
        Self::Pruned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Diverged => "diverged",
            Self::OutOfMemory => "out_of_memory",
            Self::TimedOut => "timed_out",
            Self::Interrupted => "interrupted",
            Self::Pruned => "pruned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Done for good: never run again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Diverged | Self::Pruned)
    }

    /// Worth another attempt if retries remain.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Failed | Self::OutOfMemory | Self::TimedOut)
    }

    /// Runs when a runner gets to it, whatever the retry count: never started, or stopped
    /// after saving its state (it resumes).
    pub fn is_claimable(self) -> bool {
        matches!(self, Self::Pending | Self::Interrupted)
    }

    /// The statuses with `rule` as an SQL list, e.g. `('failed','out_of_memory','timed_out')`.
    pub fn sql_list(rule: fn(TrialStatus) -> bool) -> String {
        let names: Vec<String> = Self::ALL
            .into_iter()
            .filter(|s| rule(*s))
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        format!("({})", names.join(","))
    }
}

impl std::fmt::Display for TrialStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in TrialStatus::ALL {
            assert_eq!(TrialStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(TrialStatus::parse("done"), None);
        assert_eq!(
            TrialStatus::sql_list(TrialStatus::is_retryable),
            "('failed','out_of_memory','timed_out')"
        );
        assert_eq!(
            TrialStatus::sql_list(TrialStatus::is_claimable),
            "('pending','interrupted')"
        );
        for s in TrialStatus::ALL {
            let kinds = [s.is_final(), s.is_retryable(), s.is_claimable()];
            assert!(kinds.iter().filter(|k| **k).count() <= 1, "{s}");
        }
    }

    #[test]
    fn trial_ids_cannot_leave_the_trials_folder() {
        assert!(TrialId::parse("0123456789abcdef").is_ok());
        for bad in [
            "..",
            "../etc",
            "0123456789ABCDEF",
            "0123456",
            "abcd/ef01",
            "",
        ] {
            assert!(TrialId::parse(bad).is_err(), "{bad}");
        }
        let id: TrialId = serde_json::from_str("\"00ff00ff\"").unwrap();
        assert_eq!(id.dir_in(Path::new("/r")), Path::new("/r/trials/00ff00ff"));
        assert!(serde_json::from_str::<TrialId>("\"x/y\"").is_err());
    }

    #[test]
    fn results_and_metric_lines_round_trip() {
        let dir = std::env::temp_dir().join(format!("protocol-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(TrialResult::read(&dir), Ok(None));
        let mut r = TrialResult {
            status: Outcome::Succeeded,
            em: 50.0,
            f1: 61.5,
            steps: 12,
            train_loss: Some(1.25),
            train_seconds: None,
            examples_per_second: Some(3.0),
            details: BTreeMap::new(),
        };
        r.details.insert("precision".into(), "bf16".into());
        r.write(&dir).unwrap();
        assert_eq!(TrialResult::read(&dir), Ok(Some(r)));
        std::fs::write(dir.join(files::RESULT), r#"{"status": "succeeded"}"#).unwrap();
        let e = TrialResult::read(&dir).unwrap_err();
        assert!(e.contains("result.json") && e.contains("EM"), "{e}");

        let mut m = MetricsFile::open(&dir, None).unwrap();
        for step in 1..=4 {
            let mut line = MetricLine::at(step);
            line.loss = Some(1.0 / step as f64);
            line.other.insert("parameters".into(), 7.into());
            m.write(&line).unwrap();
        }
        drop(m);
        let mut m = MetricsFile::open(&dir, Some(2)).unwrap();
        let mut eval = MetricLine::at(3);
        (eval.eval_em, eval.eval_f1) = (Some(40.0), Some(50.0));
        m.write(&eval).unwrap();
        let text = std::fs::read_to_string(dir.join(files::METRICS)).unwrap();
        let lines: Vec<MetricLine> = text.lines().filter_map(MetricLine::parse).collect();
        assert_eq!(lines.iter().map(|l| l.step).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(
            lines[1].values(),
            [("loss".to_string(), 0.5), ("parameters".to_string(), 7.0)]
        );
        assert_eq!(lines[2].evaluation(), Some((40.0, 50.0)));
        assert!(
            MetricLine::parse("{\"loss\": 1}").is_none(),
            "a line needs its step"
        );
        assert!(MetricLine::parse("not json").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
