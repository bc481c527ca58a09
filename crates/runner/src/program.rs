//! The supervisor of a program trial (a trial config with `command:`): `sweep trial DIR`
//! runs this instead of burn training, so everything the runner does for burn trials
//! (plans, ids, seeds, claims, Slurm arrays, kill -9 and resume, reports) serves any
//! program. Contract for program authors: docs/trial-protocol.md.
//!
//! What it does, in order: writes `params.json`; expands the argv (each placeholder stays
//! one argv element; no shell ever sees a value); starts the program in the trial folder
//! with the protocol's environment and the folder lock shared with it (so a `kill -9` of
//! the supervisor cannot let a second copy start while the program runs); forwards
//! SIGTERM/SIGINT and kills after a grace period; copies the program's stderr through,
//! keeping its tail to recognise out-of-memory errors; and at the end turns what the
//! program left (the protocol's files, or a HF Trainer output folder) into the protocol's
//! `result.json`, `metrics.jsonl` and `predictions.json`, with the protocol's exit code.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};
use spec::program::{self, ResultsFormat, PARAMS_FILE};
use spec::protocol::{env, exit, files, mentions_out_of_memory, MetricLine, Outcome, TrialResult};
use spec::TrialConfig;

use crate::trial_process::TrialProcess;

/// HF Trainer files the adapter reads.
mod hf {
    pub const ALL_RESULTS: &str = "all_results.json";
    pub const EVAL_RESULTS: &str = "eval_results.json";
    pub const PREDICTIONS: &str = "eval_predictions.json";
    pub const TRAINER_STATE: &str = "trainer_state.json";
}

/// How much of the program's stderr is kept to recognise an out-of-memory error.
const STDERR_TAIL_LINES: usize = 40;

/// Runs the program trial in `process`'s folder on `device`; returns the protocol exit code.
/// Errors before the program starts (an unreadable config, a command that cannot be
/// expanded or started) are printed and give [`exit::FAILED`].
pub fn supervise(process: &TrialProcess, config: &TrialConfig, device: &str) -> i32 {
    match run(process, config, device) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            if mentions_out_of_memory(&e) {
                exit::OUT_OF_MEMORY
            } else {
                exit::FAILED
            }
        }
    }
}

fn run(process: &TrialProcess, config: &TrialConfig, device: &str) -> Result<i32, String> {
    let dir = std::path::absolute(process.dir()).map_err(|e| e.to_string())?;
    let argv = prepare(&dir, config, device)?;
    let (status, tail_text) = wait_for_program(process, &dir, config.train.seed, &argv)?;
    outcome(process, &dir, config, status, &tail_text)
}

/// Writes `params.json`, expands the command's placeholders and removes what an earlier
/// attempt left (its outputs must not pass for this one's). Returns the argv.
fn prepare(dir: &Path, config: &TrialConfig, device: &str) -> Result<Vec<String>, String> {
    let command = config
        .command
        .as_ref()
        .ok_or("not a program trial: trial.yaml has no command")?;
    // Set by the local executor (inherited by the program); absent under Slurm.
    let attempt: Option<u32> = std::env::var(env::ATTEMPT)
        .ok()
        .and_then(|a| a.parse().ok());
    let trial_id = std::env::var(env::TRIAL_ID).unwrap_or_default();
    let mut params = serde_json::to_value(config).map_err(|e| e.to_string())?;
    if let Value::Object(m) = &mut params {
        m.insert("trial_id".into(), trial_id.into());
        m.insert("attempt".into(), attempt.into());
        m.insert("device".into(), device.into());
    }
    let params_path = dir.join(PARAMS_FILE);
    spec::atomic::write_file(
        &params_path,
        serde_json::to_string_pretty(&params)
            .map_err(|e| e.to_string())?
            .as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    let dir_text = dir.display().to_string();
    let params_text = params_path.display().to_string();
    let argv = program::expand(
        command,
        &program::Expansion {
            trial_dir: &dir_text,
            seed: config.train.seed,
            device,
            params_json: &params_text,
            config: &params,
        },
    )?;
    let format = config.results.unwrap_or_default();
    // Outputs of an earlier attempt must not pass for this one's.
    for stale in [
        files::PREDICTIONS,
        hf::ALL_RESULTS,
        hf::EVAL_RESULTS,
        hf::PREDICTIONS,
    ] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    if format == ResultsFormat::HfTrainer {
        let _ = std::fs::remove_file(dir.join(files::METRICS));
    }
    Ok(argv)
}

/// Starts the program in the trial folder (sharing the folder lock), copies its stderr while
/// keeping the last lines, and waits for it; a stop request sends SIGTERM, then SIGKILL after
/// the grace period. Returns its exit status and the tail of its stderr.
fn wait_for_program(
    process: &TrialProcess,
    dir: &Path,
    seed: u64,
    argv: &[String],
) -> Result<(std::process::ExitStatus, String), String> {
    process
        .share_lock_with_children()
        .map_err(|e| format!("cannot share the folder lock with the program: {e}"))?;
    eprintln!("program trial: {}", shell_words(argv));
    let Some((program_name, args)) = argv.split_first() else {
        return Err("the command is empty".into());
    };
    let mut child = Command::new(program_name)
        .args(args)
        .current_dir(dir)
        .env(env::TRIAL_DIR, dir)
        .env(env::SEED, seed.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {program_name:?}: {e}"))?;
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let copier = child.stderr.take().map(|stderr| {
        let tail = Arc::clone(&tail);
        std::thread::spawn(move || copy_stderr(stderr, &tail))
    });
    let grace = Duration::from_secs_f64(
        std::env::var(env::PROGRAM_GRACE)
            .ok()
            .and_then(|g| g.parse::<f64>().ok())
            .filter(|g| g.is_finite() && *g >= 0.0)
            .unwrap_or(30.0),
    );
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).map_err(|e| e.to_string())?);
    let mut terminated: Option<Instant> = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for the program: {e}")),
        }
        if process.stop_requested() {
            match terminated {
                None => {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                    terminated = Some(Instant::now());
                }
                Some(t) if t.elapsed() >= grace => {
                    eprintln!(
                        "program did not stop within {:.0} s of SIGTERM; killing it",
                        grace.as_secs_f64()
                    );
                    let _ = child.kill();
                }
                Some(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if let Some(c) = copier {
        let _ = c.join();
    }
    let tail_text = tail
        .lock()
        .map(|t| t.iter().cloned().collect::<Vec<String>>().join("\n"))
        .unwrap_or_default();
    Ok((status, tail_text))
}

/// The protocol's exit code for how the program ended: its results adapted on success, a
/// stop on request as interrupted, out of memory recognised in its stderr, and otherwise the
/// last line of its stderr as the reason.
fn outcome(
    process: &TrialProcess,
    dir: &Path,
    config: &TrialConfig,
    status: std::process::ExitStatus,
    tail_text: &str,
) -> Result<i32, String> {
    let format = config.results.unwrap_or_default();
    use std::os::unix::process::ExitStatusExt;
    let code = status.code();
    if process.stop_requested() && code != Some(exit::SUCCEEDED) {
        eprintln!("program stopped on request ({status}); the next run starts it again");
        return Ok(exit::INTERRUPTED);
    }
    // The runner keeps the last line of stderr as the reason: make it the program's.
    let last_line = tail_text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default();
    match code {
        Some(exit::SUCCEEDED) => finish(dir, config, format),
        Some(c @ (exit::DIVERGED | exit::INTERRUPTED | exit::OUT_OF_MEMORY)) => Ok(c),
        Some(c) if mentions_out_of_memory(tail_text) => {
            eprintln!("program exited with code {c}; its stderr reports out of memory");
            Ok(exit::OUT_OF_MEMORY)
        }
        Some(c) => Err(format!("program exited with code {c}{last_line}")),
        None => Err(match status.signal() {
            Some(9) => "program killed by SIGKILL (not by its supervisor: often the kernel's out-of-memory killer)".to_string(),
            Some(s) => format!("program killed by signal {s}{last_line}"),
            None => "program ended with no exit status".to_string(),
        }),
    }
}

/// Copies the program's stderr to ours line by line, keeping the last lines.
fn copy_stderr(stderr: std::process::ChildStderr, tail: &Mutex<VecDeque<String>>) {
    let mut out = std::io::stderr();
    for line in BufReader::new(stderr).split(b'\n') {
        let Ok(line) = line else { break };
        let _ = out.write_all(&line);
        let _ = out.write_all(b"\n");
        if let Ok(mut t) = tail.lock() {
            if t.len() == STDERR_TAIL_LINES {
                t.pop_front();
            }
            t.push_back(String::from_utf8_lossy(&line).into_owned());
        }
    }
}

/// argv as a shell would need it quoted, for the log only.
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `result.json` as a program writes it: looser than [`TrialResult`] (EM/F1 may come from
/// `predictions.json` instead; steps may be unknown), with any numeric metrics in
/// `metrics`; other keys are kept.
#[derive(Debug, Deserialize)]
struct ProgramResult {
    #[serde(default = "succeeded")]
    status: Outcome,
    #[serde(rename = "EM", default)]
    em: Option<f64>,
    #[serde(rename = "F1", default)]
    f1: Option<f64>,
    #[serde(default)]
    steps: Option<u64>,
    #[serde(default)]
    train_loss: Option<f64>,
    #[serde(default)]
    train_seconds: Option<f64>,
    #[serde(default)]
    examples_per_second: Option<f64>,
    #[serde(default)]
    metrics: Map<String, Value>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

fn succeeded() -> Outcome {
    Outcome::Succeeded
}

/// After a clean exit: the program's results in the protocol's form, and the exit code.
fn finish(dir: &Path, config: &TrialConfig, format: ResultsFormat) -> Result<i32, String> {
    let reported = match format {
        ResultsFormat::Protocol => read_protocol_result(dir)?,
        ResultsFormat::HfTrainer => read_hf_trainer(dir)?,
    };
    let scored = score(dir, config)?;
    let (em, f1) = match (reported.em.zip(reported.f1), scored) {
        (Some(r), _) => r,
        (None, Some(s)) => s,
        (None, None) => {
            return Err(format!(
                "{}: no EM/F1 and no {} to score; a program reports EM and F1 or writes its predictions (docs/trial-protocol.md)",
                dir.join(files::RESULT).display(),
                files::PREDICTIONS
            ))
        }
    };
    if reported.status == Outcome::Interrupted {
        return Err("result.json says interrupted but the program exited 0".into());
    }
    // Other top-level keys are kept as they are (a program's own notes: its seed, its
    // feature counts); only the `metrics` object holds metrics.
    // (serde's flatten holds only the keys no field took; results_format is ours.)
    let mut details: BTreeMap<String, Value> = reported.other.clone().into_iter().collect();
    details.insert("results_format".into(), format.as_str().into());
    let metrics: Map<String, Value> = program::numeric_metrics(&reported.metrics)
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    if !metrics.is_empty() {
        details.insert("metrics".into(), Value::Object(metrics));
    }
    let result = TrialResult {
        status: reported.status,
        em,
        f1,
        steps: reported.steps.unwrap_or(0),
        train_loss: reported.train_loss,
        train_seconds: reported.train_seconds,
        examples_per_second: reported.examples_per_second,
        details,
    };
    result.write(dir).map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string(&result).map_err(|e| e.to_string())?
    );
    Ok(result.status.exit_code())
}

fn read_protocol_result(dir: &Path) -> Result<ProgramResult, String> {
    let path = dir.join(files::RESULT);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e}; the program exited 0 but wrote no result (docs/trial-protocol.md)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The official metric of the eval set over `predictions.json`, when the program wrote one.
fn score(dir: &Path, config: &TrialConfig) -> Result<Option<(f64, f64)>, String> {
    let path = dir.join(files::PREDICTIONS);
    if !path.exists() {
        return Ok(None);
    }
    let predictions = qa_data::squad::load_predictions(&path).map_err(|e| e.to_string())?;
    let eval = qa_data::squad::Dataset::load(&config.data.eval).map_err(|e| e.to_string())?;
    let s = qa_data::metric::evaluate(&eval, &predictions);
    Ok(Some((s.em, s.f1)))
}

/// A HF Trainer output folder as the protocol's files: `all_results.json` (or
/// `eval_results.json`) for the scores, `eval_predictions.json` as `predictions.json`,
/// `trainer_state.json`'s `log_history` as `metrics.jsonl`.
fn read_hf_trainer(dir: &Path) -> Result<ProgramResult, String> {
    let read = |name: &str| -> Result<Option<Map<String, Value>>, String> {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => match serde_json::from_str(&text) {
                Ok(Value::Object(m)) => Ok(Some(m)),
                Ok(_) => Err(format!("{}: expected a JSON object", path.display())),
                Err(e) => Err(format!("{}: {e}", path.display())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    };
    let results = match read(hf::ALL_RESULTS)? {
        Some(r) => r,
        None => read(hf::EVAL_RESULTS)?.ok_or_else(|| {
            format!(
                "{}: neither {} nor {}: was the program run with --output_dir {{trial_dir}} and --do_eval?",
                dir.display(),
                hf::ALL_RESULTS,
                hf::EVAL_RESULTS
            )
        })?,
    };
    let number = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| results.get(*k).and_then(Value::as_f64))
    };
    let mut metrics = Map::new();
    for (k, v) in &results {
        if v.as_f64().is_some() {
            metrics.insert(k.clone(), v.clone());
        }
    }
    let state = read(hf::TRAINER_STATE)?;
    let steps = state
        .as_ref()
        .and_then(|s| s.get("global_step"))
        .and_then(Value::as_u64);
    if let Some(history) = state
        .as_ref()
        .and_then(|s| s.get("log_history"))
        .and_then(Value::as_array)
    {
        let mut text = String::new();
        for entry in history {
            if let Some(line) = hf_log_line(entry) {
                text.push_str(&serde_json::to_string(&line).map_err(|e| e.to_string())?);
                text.push('\n');
            }
        }
        spec::atomic::write_file(&dir.join(files::METRICS), text.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let predictions = dir.join(hf::PREDICTIONS);
    if predictions.exists() {
        std::fs::copy(&predictions, dir.join(files::PREDICTIONS))
            .map_err(|e| format!("{}: {e}", predictions.display()))?;
    }
    Ok(ProgramResult {
        status: Outcome::Succeeded,
        em: number(&["eval_exact_match", "exact_match", "eval_exact"]),
        f1: number(&["eval_f1", "f1"]),
        steps,
        train_loss: number(&["train_loss"]),
        train_seconds: number(&["train_runtime"]),
        examples_per_second: number(&["train_samples_per_second"]),
        metrics,
        other: Map::new(),
    })
}

/// One `log_history` entry as a metric line: `loss`, `learning_rate`, `grad_norm`, and an
/// evaluation's `eval_exact_match`/`eval_f1` as `eval_em`/`eval_f1`; other numbers kept.
fn hf_log_line(entry: &Value) -> Option<MetricLine> {
    let m = entry.as_object()?;
    let step = m.get("step").and_then(Value::as_u64)?;
    let mut line = MetricLine::at(step);
    line.epoch = m.get("epoch").and_then(Value::as_f64);
    for (k, v) in m {
        let Some(x) = v.as_f64().filter(|x| x.is_finite()) else {
            continue;
        };
        match k.as_str() {
            "step" | "epoch" => {}
            "loss" => line.loss = Some(x),
            "learning_rate" => line.learning_rate = Some(x),
            "grad_norm" => line.grad_norm = Some(x),
            "eval_exact_match" | "eval_exact" => line.eval_em = Some(x),
            "eval_f1" => line.eval_f1 = Some(x),
            other => {
                line.other.insert(other.to_string(), x.into());
            }
        }
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_log_history_becomes_metric_lines() {
        let train = serde_json::json!({"epoch": 0.5, "grad_norm": 2.5, "learning_rate": 3e-5, "loss": 4.2, "step": 10});
        let l = hf_log_line(&train).unwrap();
        assert_eq!(
            (l.step, l.loss, l.learning_rate, l.grad_norm, l.epoch),
            (10, Some(4.2), Some(3e-5), Some(2.5), Some(0.5))
        );
        let eval = serde_json::json!({"epoch": 1.0, "eval_exact_match": 61.0, "eval_f1": 75.5, "eval_runtime": 3.0, "step": 20});
        let l = hf_log_line(&eval).unwrap();
        assert_eq!(l.evaluation(), Some((61.0, 75.5)));
        assert_eq!(l.other.get("eval_runtime"), Some(&Value::from(3.0)));
        assert!(hf_log_line(&serde_json::json!({"train_runtime": 1.0})).is_none());
    }

    #[test]
    fn logged_commands_are_quoted_like_a_shell() {
        let argv = ["python3", "run.py", "a b", "it's", "--lr=3e-05"].map(String::from);
        assert_eq!(
            shell_words(&argv),
            "python3 run.py 'a b' 'it'\\''s' --lr=3e-05"
        );
    }
}
