//! Plan-time checks of everything a run will read, so that a wrong path or a broken file
//! fails `sweep plan` in seconds instead of a trial hours later: datasets load and have
//! questions, vocabularies and model directories are readable, and each trial's model
//! config (a preset's with the real vocabulary, or the folder's config.json) with its
//! `model_config` overrides passes the checks the trial itself makes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use qa_data::squad::Dataset;
use qa_data::tokenizer::{BertTokenizer, BertTokenizerOptions};

use crate::plan::Plan;
use crate::RunnerError;

/// What the checks found (for `sweep plan`'s summary).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckReport {
    /// (path, questions) per dataset.
    pub datasets: Vec<(PathBuf, usize)>,
    pub vocabularies: Vec<PathBuf>,
    pub models: Vec<PathBuf>,
}

/// Checks every distinct file the plan's trials read. Stops at the first problem, naming
/// the variant that uses the file.
pub fn check_inputs(plan: &Plan) -> Result<CheckReport, RunnerError> {
    let mut report = CheckReport::default();
    let mut datasets = BTreeSet::new();
    let mut vocab_sizes = std::collections::BTreeMap::new();
    let mut models = BTreeSet::new();
    for e in &plan.entries {
        let c = &e.trial.config;
        let who = format!("variant {}", e.trial.variant);
        for (key, path) in [("data.train", &c.data.train), ("data.eval", &c.data.eval)] {
            // A program reads its training file in whatever format it likes; the runner
            // only scores predictions against data.eval, which must be SQuAD-shaped.
            if c.is_program() && key == "data.train" {
                if !path.is_file() {
                    return Err(RunnerError::Check {
                        what: format!("{who}: {key}"),
                        message: format!("{} is not a file", path.display()),
                    });
                }
                continue;
            }
            if datasets.insert(path.clone()) {
                let d = Dataset::load(path).map_err(|err| RunnerError::Check {
                    what: format!("{who}: {key}"),
                    message: err.to_string(),
                })?;
                if d.examples.is_empty() {
                    return Err(RunnerError::Check {
                        what: format!("{who}: {key}"),
                        message: format!("{} has no questions", path.display()),
                    });
                }
                report.datasets.push((path.clone(), d.examples.len()));
            }
        }
        if let Some(command) = &c.command {
            check_program(command).map_err(|message| RunnerError::Check {
                what: format!("{who}: command"),
                message,
            })?;
        }
        if let Some(v) = &c.model.vocab {
            let options = BertTokenizerOptions {
                do_lower_case: c.model.do_lower_case.unwrap_or(true),
                ..BertTokenizerOptions::default()
            };
            let size = match vocab_sizes.get(v) {
                Some(n) => *n,
                None => {
                    let t = BertTokenizer::from_vocab_file(v, &options).map_err(|err| {
                        RunnerError::Check {
                            what: format!("{who}: model.vocab"),
                            message: err.to_string(),
                        }
                    })?;
                    report.vocabularies.push(v.clone());
                    vocab_sizes.insert(v.clone(), t.vocab_size());
                    t.vocab_size()
                }
            };
            // The preset's config with this vocabulary and the trial's overrides, checked
            // exactly as the trial will check it.
            if let Some(preset) = c.model.preset {
                c.model_config_for(preset, size, &who)?;
            }
        }
        if let Some(dir) = &c.model.init {
            if models.insert(dir.clone()) {
                check_model_dir(dir).map_err(|message| RunnerError::Check {
                    what: format!("{who}: model.init"),
                    message,
                })?;
                report.models.push(dir.clone());
            }
            // config.json with the trial's overrides, as the trial will read it.
            let config_path = dir.join("config.json");
            spec::model_config::ModelConfig::load(&config_path)
                .and_then(|m| m.with_overrides(&c.model_config, "model_config"))
                .map_err(|e| spec::trial::model_config_error(e, &who))?;
        }
    }
    Ok(report)
}

/// A program trial's program: an executable file, or a name found in `PATH`.
fn check_program(command: &[String]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let Some(program) = command.first() else {
        return Err("empty command".into());
    };
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        if executable(Path::new(program)) {
            return Ok(());
        }
        return Err(format!("{program} is not an executable file"));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|d| executable(&d.join(program))) {
        return Ok(());
    }
    Err(format!("{program} is not in PATH"))
}

fn check_model_dir(dir: &Path) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(format!(
            "{} is not a directory (expected a HF model folder with config.json and weights)",
            dir.display()
        ));
    }
    let has_weights = [
        "model.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
    ]
    .iter()
    .any(|f| dir.join(f).exists());
    if !has_weights {
        return Err(format!(
            "{} has no model.safetensors, model.safetensors.index.json or pytorch_model.bin",
            dir.display()
        ));
    }
    BertTokenizer::from_model_dir(dir).map_err(|e| e.to_string())?;
    Ok(())
}
