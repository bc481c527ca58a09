//! Program trials: any program (HF `run_qa.py`, a PyTorch script, another trainer) run as a
//! trial. A trial config with `command:` is one; `sweep trial` then supervises that program
//! instead of training with burn (docs/trial-protocol.md). This module is the pure part:
//! the argv placeholders, their expansion (each placeholder stays inside one argv element,
//! never a shell word) and how a program reports its results.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How a program reports its outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResultsFormat {
    /// The trial protocol: `result.json`, `metrics.jsonl`, `predictions.json` in the trial
    /// folder (docs/trial-protocol.md).
    #[default]
    Protocol,
    /// A HF Trainer output folder (`--output_dir {trial_dir}`): `all_results.json` or
    /// `eval_results.json` (`eval_exact_match`, `eval_f1`), `eval_predictions.json`, and
    /// `trainer_state.json`'s `log_history` as curves. An unmodified `run_qa.py` works.
    HfTrainer,
}

impl ResultsFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Protocol => "protocol",
            Self::HfTrainer => "hf-trainer",
        }
    }
}

/// The file in the trial folder that holds every parameter of a program trial
/// (`{params_json}`): the trial config as JSON with the seed and device set, plus
/// `trial_id` and `attempt`.
pub const PARAMS_FILE: &str = "params.json";

/// A placeholder in a `command:` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    /// `{trial_dir}`: the trial folder (absolute), also the program's working directory.
    TrialDir,
    /// `{seed}`: the trial's seed.
    Seed,
    /// `{device}`: `cpu` or `cuda:0` as the program sees it (with `CUDA_VISIBLE_DEVICES`).
    Device,
    /// `{params_json}`: the absolute path of [`PARAMS_FILE`].
    ParamsJson,
    /// `{param:KEY}`: one value: a key of `params:`, else a dotted key of the trial
    /// (`train.learning_rate`, `data.eval`, `model_config.hidden_dropout_prob`).
    Param(String),
}

/// A piece of one argv element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Placeholder(Placeholder),
}

/// The names a placeholder may have, for error messages.
pub const PLACEHOLDERS: &str = "{trial_dir}, {seed}, {device}, {params_json}, {param:KEY}";

/// Splits one argv element into text and placeholders. `{{` and `}}` stand for literal
/// braces; any other brace that does not form a known placeholder is an error.
pub fn parse_arg(arg: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = arg.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|p| p.1) == Some('{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek().map(|p| p.1) == Some('}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let rest = &arg[i + 1..];
                let Some(end) = rest.find('}') else {
                    return Err(format!(
                        "{arg:?}: unclosed '{{' (write {{{{ for a literal brace)"
                    ));
                };
                let name = &rest[..end];
                let placeholder = match name {
                    "trial_dir" => Placeholder::TrialDir,
                    "seed" => Placeholder::Seed,
                    "device" => Placeholder::Device,
                    "params_json" => Placeholder::ParamsJson,
                    _ => match name.strip_prefix("param:") {
                        Some(key) if !key.is_empty() => Placeholder::Param(key.to_string()),
                        _ => {
                            return Err(format!(
                                "{arg:?}: unknown placeholder {{{name}}}; expected one of {PLACEHOLDERS} (write {{{{ for a literal brace)"
                            ))
                        }
                    },
                };
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Placeholder(placeholder));
                // Skip the placeholder's characters.
                for _ in 0..name.chars().count() + 1 {
                    chars.next();
                }
            }
            '}' => {
                return Err(format!(
                    "{arg:?}: a lone '}}' (write }}}} for a literal brace)"
                ))
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// `{param:KEY}`'s value: `params[KEY]`, else the dotted key `KEY` of the trial config
/// (`config` is the config serialized as JSON).
pub fn param_value<'a>(config: &'a Value, key: &str) -> Option<&'a Value> {
    if let Some(v) = config.get("params").and_then(|p| p.get(key)) {
        return Some(v);
    }
    let mut cur = config;
    for part in key.split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

/// A value as one argv element: strings as they are, numbers and booleans as JSON writes
/// them (`0.00003`, `true`), lists and objects as JSON text.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What placeholders expand to for one attempt.
#[derive(Debug, Clone)]
pub struct Expansion<'a> {
    pub trial_dir: &'a str,
    pub seed: u64,
    pub device: &'a str,
    pub params_json: &'a str,
    /// The trial config as JSON.
    pub config: &'a Value,
}

/// Expands every element of `command`; one element in, one element out.
pub fn expand(command: &[String], with: &Expansion<'_>) -> Result<Vec<String>, String> {
    command
        .iter()
        .map(|arg| {
            let mut out = String::new();
            for piece in parse_arg(arg)? {
                match piece {
                    Piece::Text(t) => out.push_str(&t),
                    Piece::Placeholder(p) => {
                        out.push_str(&match p {
                            Placeholder::TrialDir => with.trial_dir.to_string(),
                            Placeholder::Seed => with.seed.to_string(),
                            Placeholder::Device => with.device.to_string(),
                            Placeholder::ParamsJson => with.params_json.to_string(),
                            Placeholder::Param(key) => param_value(with.config, &key)
                                .map(value_text)
                                .ok_or_else(|| format!("{arg:?}: {{param:{key}}} names no key"))?,
                        })
                    }
                }
            }
            Ok(out)
        })
        .collect()
}

/// Checks a `command:` against a trial config (as JSON): not empty, every placeholder known
/// and every `{param:KEY}` naming a key. The error names the element.
pub fn check_command(command: &[String], config: &Value) -> Result<(), String> {
    let Some(program) = command.first() else {
        return Err("an empty list; expected the program and its arguments, e.g. [python3, train.py, --out, \"{trial_dir}\"]".into());
    };
    if program.trim().is_empty() {
        return Err("the program (first element) is empty".into());
    }
    for (i, arg) in command.iter().enumerate() {
        for piece in parse_arg(arg).map_err(|e| format!("element {i}: {e}"))? {
            if let Piece::Placeholder(Placeholder::Param(key)) = piece {
                if param_value(config, &key).is_none() {
                    let mut known: Vec<String> = config
                        .get("params")
                        .and_then(Value::as_object)
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default();
                    known.sort();
                    return Err(format!(
                        "element {i} {arg:?}: {{param:{key}}} is neither a key of params ({}) nor a dotted key of the trial (train.learning_rate, data.eval, …)",
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The numeric metrics of a program's `result.json` `metrics` object (other values are
/// skipped).
pub fn numeric_metrics(m: &Map<String, Value>) -> Vec<(String, f64)> {
    m.iter()
        .filter_map(|(k, v)| v.as_f64().filter(|f| f.is_finite()).map(|f| (k.clone(), f)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_expand_inside_one_element() {
        let config =
            json!({"params": {"lr": 3e-5, "name": "a b; rm -rf /"}, "train": {"batch_size": 4}});
        let with = Expansion {
            trial_dir: "/t/1",
            seed: 7,
            device: "cuda:0",
            params_json: "/t/1/params.json",
            config: &config,
        };
        let cmd: Vec<String> = [
            "python3",
            "--lr={param:lr}",
            "{param:name}",
            "--bs",
            "{param:train.batch_size}",
            "{trial_dir}/out",
            "s{seed}-{device}",
            "{params_json}",
            "{{literal}}",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            expand(&cmd, &with).unwrap(),
            [
                "python3",
                "--lr=0.00003",
                "a b; rm -rf /",
                "--bs",
                "4",
                "/t/1/out",
                "s7-cuda:0",
                "/t/1/params.json",
                "{literal}"
            ]
        );
        assert!(check_command(&cmd, &config).is_ok());
    }

    #[test]
    fn bad_commands_are_named() {
        let config = json!({"params": {"lr": 1}});
        let e = check_command(&["x".into(), "{param:lrr}".into()], &config).unwrap_err();
        assert!(
            e.contains("element 1") && e.contains("lrr") && e.contains("lr"),
            "{e}"
        );
        let e = check_command(&["x".into(), "{trial_folder}".into()], &config).unwrap_err();
        assert!(e.contains("unknown placeholder {trial_folder}"), "{e}");
        assert!(check_command(&[], &config).unwrap_err().contains("empty"));
        assert!(check_command(&["x".into(), "{seed".into()], &config)
            .unwrap_err()
            .contains("unclosed"));
        assert!(check_command(&["x".into(), "a}b".into()], &config)
            .unwrap_err()
            .contains("lone"));
        assert!(check_command(&[" ".into()], &config).is_err());
    }
}
