//! One trial's configuration (YAML):
//!
//! ```yaml
//! model: {init: path/to/hf_dir}            # or {preset: tiny, arch: bert, vocab: path}
//! model_config: {hidden_dropout_prob: 0.1}  # overrides of config.json keys
//! data: {train: path.json, eval: path.json}
//! train: {seed: 1, epochs: 2, learning_rate: 3.0e-5, batch_size: 4, eval_batch_size: 5}
//! ```
//! `train` keys and defaults follow HF `TrainingArguments`/`run_qa`. Unknown keys, wrong
//! types and impossible values are errors naming the key (and line/column for YAML errors).

use std::path::{Path, PathBuf};

use crate::device::Device;
pub use crate::error::SpecError;
pub use crate::model_config::Preset;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// A HF model directory (config.json, weights, tokenizer files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// `bert` or `albert`, for presets (`albert-tiny` implies albert).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// vocab.txt for presets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab: Option<PathBuf>,
    /// Tokenizer lower-casing for presets (HF BertTokenizer default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub do_lower_case: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub train: PathBuf,
    pub eval: PathBuf,
}

/// How a trial computes (HF's `--fp16` / `--bf16` are the mixed-precision ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// Everything in f32 (on CUDA, matmuls may run as TF32).
    F32,
    /// Automatic mixed precision with f16, like HF Trainer `--fp16` (torch.amp): f32 master
    /// weights and AdamW moments, matmuls in f16, softmax/LayerNorm/loss in f32, dynamic
    /// loss scaling (`GradScaler`).
    F16,
    /// Automatic mixed precision with bf16, like `--bf16`: as `f16` without loss scaling.
    Bf16,
    /// Everything in bf16: weights, gradients and AdamW moments (β2 = 0.999 rounds to 1;
    /// small updates vanish). Not HF's `--bf16`; it exists for like-for-like throughput
    /// rows against PyTorch's pure-bf16 step, with a warning. CUDA only.
    PureBf16,
}

/// A half-precision float type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Half {
    F16,
    Bf16,
}

impl Precision {
    pub const ALL: [Precision; 4] = [Self::F32, Self::F16, Self::Bf16, Self::PureBf16];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
            Self::PureBf16 => "pure-bf16",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The half type matmuls run in under mixed precision; `None` for f32 and pure half.
    pub fn autocast(self) -> Option<Half> {
        match self {
            Self::F16 => Some(Half::F16),
            Self::Bf16 => Some(Half::Bf16),
            _ => None,
        }
    }

    /// The element type of a pure-half run (the whole backend in that type).
    pub fn pure_half(self) -> Option<Half> {
        match self {
            Self::PureBf16 => Some(Half::Bf16),
            _ => None,
        }
    }

    /// f16 mixed precision scales the loss (its gradients underflow otherwise); bf16 has
    /// f32's range and does not.
    pub fn scales_loss(self) -> bool {
        self == Self::F16
    }

    /// Whether this precision can run on `device`: pure half needs CUDA; mixed precision
    /// runs anywhere (on CPU, burn-flex stores and multiplies f16/bf16) except bf16 on wgpu
    /// (WGSL has no bfloat16 type). The one place this rule lives.
    pub fn check_device(self, device: Device) -> Result<(), String> {
        if self.pure_half().is_some() && !device.is_cuda() {
            return Err(format!(
                "precision {} runs the whole model in half precision and needs a CUDA device; \
                 use f16 or bf16 (mixed precision, HF's --fp16/--bf16), which also runs on CPU",
                self.as_str()
            ));
        }
        if device.is_wgpu() && self.autocast() == Some(Half::Bf16) {
            return Err(format!(
                "precision bf16 cannot run on {device}: wgpu's shader language (WGSL) has no \
                 bfloat16 type; use f32, or f16 where the adapter supports shader-f16"
            ));
        }
        Ok(())
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn d_seed() -> u64 {
    42
}
fn d_epochs() -> f64 {
    2.0
}
fn d_lr() -> f64 {
    5e-5
}
fn d_batch() -> usize {
    8
}
fn d_one() -> usize {
    1
}
fn d_beta1() -> f64 {
    0.9
}
fn d_beta2() -> f64 {
    0.999
}
fn d_eps() -> f64 {
    1e-8
}
fn d_clip() -> f64 {
    1.0
}
fn d_max_seq() -> usize {
    384
}
fn d_stride() -> usize {
    128
}
fn d_nbest() -> usize {
    20
}
fn d_max_answer() -> usize {
    30
}
fn d_precision() -> Precision {
    Precision::F32
}
fn d_logging() -> usize {
    10
}
fn d_true() -> bool {
    true
}

/// HF `TrainingArguments` / `run_qa` arguments that a trial may set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    #[serde(default = "d_seed")]
    pub seed: u64,
    #[serde(default = "d_epochs")]
    pub epochs: f64,
    /// Overrides `epochs` when set.
    #[serde(default)]
    pub max_steps: Option<usize>,
    #[serde(default = "d_lr")]
    pub learning_rate: f64,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    #[serde(default = "d_batch")]
    pub eval_batch_size: usize,
    #[serde(default = "d_one")]
    pub gradient_accumulation_steps: usize,
    #[serde(default)]
    pub warmup_steps: usize,
    #[serde(default)]
    pub warmup_ratio: f64,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default = "d_beta1")]
    pub adam_beta1: f64,
    #[serde(default = "d_beta2")]
    pub adam_beta2: f64,
    #[serde(default = "d_eps")]
    pub adam_epsilon: f64,
    #[serde(default = "d_clip")]
    pub max_grad_norm: f64,
    #[serde(default = "d_max_seq")]
    pub max_seq_length: usize,
    #[serde(default = "d_stride")]
    pub doc_stride: usize,
    #[serde(default = "d_nbest")]
    pub n_best_size: usize,
    #[serde(default = "d_max_answer")]
    pub max_answer_length: usize,
    #[serde(default = "d_precision")]
    pub precision: Precision,
    /// HF's `--fp16`: the same as `precision: f16` (mixed precision).
    #[serde(default)]
    pub fp16: bool,
    /// Where the trial runs when started by hand (`sweep train`); the runner sets it.
    #[serde(default)]
    pub device: Device,
    /// Evaluate every N optimizer steps (default: at the end of every epoch).
    #[serde(default)]
    pub eval_steps: Option<usize>,
    /// Write a checkpoint every N optimizer steps (always at the end).
    #[serde(default)]
    pub save_steps: Option<usize>,
    #[serde(default = "d_logging")]
    pub logging_steps: usize,
    /// Pad every window to `max_seq_length`, in training and evaluation (run_qa's default).
    /// It changes results, not only speed: HF's QA loss takes the softmax over padding
    /// positions too, and run_qa's decoding ranks padding positions among the top-n
    /// candidates. `false` pads each batch to its longest window (run_qa's
    /// `--pad_to_max_length False`): faster, and answers then depend on `eval_batch_size`.
    #[serde(default = "d_true")]
    pub pad_to_max_length: bool,
}

impl Default for TrainSpec {
    fn default() -> Self {
        // Every field has a serde default; an empty map gives them all.
        serde_json::from_value(Value::Object(Map::new()))
            .unwrap_or_else(|_| unreachable!("all fields have defaults"))
    }
}

impl TrainSpec {
    /// `precision`, with `fp16: true` mapped to f16.
    pub fn effective_precision(&self) -> Precision {
        if self.fp16 {
            Precision::F16
        } else {
            self.precision
        }
    }
}

/// The fields of [`ModelSpec`] and [`DataSpec`], for dotted-key checks in studies (a test
/// keeps them in step with the structs).
pub const MODEL_KEYS: &[&str] = &["init", "preset", "arch", "vocab", "do_lower_case"];
pub const DATA_KEYS: &[&str] = &["train", "eval"];

/// The fields of [`TrainSpec`], read off its serialized defaults.
pub fn train_keys() -> Vec<String> {
    match serde_json::to_value(TrainSpec::default()) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Rewrites a config error about key `k` as an error about `model_config.k` of `origin`.
pub fn model_config_error(e: SpecError, origin: &str) -> SpecError {
    match e {
        SpecError::Config { path, message } => match message
            .strip_prefix("key ")
            .and_then(|m| m.split_once(": "))
        {
            Some((key, rest)) => SpecError::Invalid {
                path: origin.into(),
                key: format!("model_config.{key}"),
                message: rest.to_string(),
            },
            None => SpecError::Invalid {
                path: origin.into(),
                key: "model_config".into(),
                message: format!("{path}: {message}"),
            },
        },
        other => other,
    }
}

/// A YAML file's text, or an error naming the file.
pub(crate) fn read_text(path: &Path) -> Result<String, SpecError> {
    std::fs::read_to_string(path).map_err(|e| SpecError::Parse {
        path: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })
}

/// A whole trial.
///
/// The fields a program trial adds (`command`, `params`, `code`, `results`) are left out of
/// the serialized form when unset, so the ids of trials without them (hashes of that form)
/// are what they were before those fields existed (pinned in runner's `ids` tests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialConfig {
    /// Required for burn trials; a program trial may leave it out or use it for its own
    /// reading (`{param:model.init}`).
    #[serde(default)]
    pub model: ModelSpec,
    /// Overrides of `config.json` keys (HF names).
    #[serde(default)]
    pub model_config: Map<String, Value>,
    pub data: DataSpec,
    #[serde(default)]
    pub train: TrainSpec,
    /// A program trial: this argv (never a shell string) runs instead of burn training,
    /// with placeholders (`crate::program`) expanded per trial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Program-specific parameters: not checked against the burn schema, varied by grids
    /// and ablations like any key (`params.lr`), read with `{param:KEY}` or `{params_json}`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub params: Map<String, Value>,
    /// Files (scripts, configs) whose content enters the trial id: editing the training
    /// script makes new trials instead of reusing old results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code: Vec<PathBuf>,
    /// How the program reports its results (default: the trial protocol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<crate::program::ResultsFormat>,
}

/// The vocabulary size assumed when a preset's config is checked before its vocabulary is
/// read (bert-base-chinese's).
pub const PLANNING_VOCAB_SIZE: usize = 21128;

impl TrialConfig {
    /// The model config of a preset trial: the preset's, with `model_config` applied and
    /// checked. An error names the `model_config.<key>` at fault.
    pub fn model_config_for(
        &self,
        preset: Preset,
        vocab_size: usize,
        origin: &str,
    ) -> Result<crate::model_config::ModelConfig, SpecError> {
        let albert = self.model.arch.as_deref() == Some("albert");
        crate::model_config::preset_config(preset, albert, vocab_size)
            .and_then(|c| c.with_overrides(&self.model_config, "model_config"))
            .map_err(|e| model_config_error(e, origin))
    }

    pub fn from_yaml_file(path: &Path) -> Result<Self, SpecError> {
        Self::from_yaml_str(&read_text(path)?, &path.display().to_string())
    }

    /// Parses and validates; `origin` names the source in errors.
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<Self, SpecError> {
        let config: TrialConfig = serde_yaml::from_str(text).map_err(|e| SpecError::Parse {
            path: origin.into(),
            message: e.to_string(),
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Whether a program (not burn) runs this trial.
    pub fn is_program(&self) -> bool {
        self.command.is_some()
    }

    /// Checks values that types cannot: ranges and combinations.
    pub fn validate(&self, origin: &str) -> Result<(), SpecError> {
        self.validate_program(origin)?;
        if !self.is_program() {
            self.validate_model(origin)?;
        }
        self.validate_train(origin)
    }

    /// A program trial's command and files; the program-only keys on a burn trial.
    fn validate_program(&self, origin: &str) -> Result<(), SpecError> {
        let bad = |key: &str, message: String| SpecError::Invalid {
            path: origin.into(),
            key: key.into(),
            message,
        };
        let Some(command) = &self.command else {
            let only = "is for program trials only (with command:); burn trials use model, model_config and train";
            if !self.params.is_empty() {
                return Err(bad("params", only.into()));
            }
            if !self.code.is_empty() {
                return Err(bad("code", only.into()));
            }
            if self.results.is_some() {
                return Err(bad("results", only.into()));
            }
            return Ok(());
        };
        let json = serde_json::to_value(self).map_err(|e| bad("command", e.to_string()))?;
        crate::program::check_command(command, &json).map_err(|m| bad("command", m))?;
        if let Some(p) = self.code.iter().find(|p| p.as_os_str().is_empty()) {
            return Err(bad("code", format!("{p:?}: an empty path")));
        }
        Ok(())
    }

    fn validate_model(&self, origin: &str) -> Result<(), SpecError> {
        let bad = |key: &str, message: String| SpecError::Invalid {
            path: origin.into(),
            key: key.into(),
            message,
        };
        let m = &self.model;
        match (&m.init, &m.preset) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "model",
                    "give either init (a HF model directory) or preset, not both".into(),
                ))
            }
            (None, None) => return Err(bad(
                "model",
                "expected init: <HF model directory> or preset: tiny|mini|small|base|albert-tiny"
                    .into(),
            )),
            (None, Some(_)) if m.vocab.is_none() => {
                return Err(bad(
                    "model.vocab",
                    "a preset needs vocab: <vocab.txt>".into(),
                ))
            }
            _ => {}
        }
        if let Some(a) = &m.arch {
            if a != "bert" && a != "albert" {
                return Err(bad(
                    "model.arch",
                    format!("expected bert or albert, found {a:?}"),
                ));
            }
        }
        if let Some(preset) = m.preset {
            // The checks a trial makes on its model config, run now: ranges, shapes,
            // combinations. The vocabulary's size is not known without reading it; the
            // planner repeats this with the real one (runner::check).
            self.model_config_for(preset, PLANNING_VOCAB_SIZE, origin)?;
        }
        Ok(())
    }

    fn validate_train(&self, origin: &str) -> Result<(), SpecError> {
        let bad = |key: &str, message: String| SpecError::Invalid {
            path: origin.into(),
            key: key.into(),
            message,
        };
        let t = &self.train;
        let positive = [
            ("train.batch_size", t.batch_size),
            ("train.eval_batch_size", t.eval_batch_size),
            (
                "train.gradient_accumulation_steps",
                t.gradient_accumulation_steps,
            ),
            ("train.max_seq_length", t.max_seq_length),
            ("train.n_best_size", t.n_best_size),
            ("train.max_answer_length", t.max_answer_length),
            ("train.logging_steps", t.logging_steps),
        ];
        for (k, v) in positive {
            if v == 0 {
                return Err(bad(k, "must be at least 1".into()));
            }
        }
        let checks: [(&str, f64, bool); 8] = [
            (
                "train.epochs",
                t.epochs,
                t.epochs > 0.0 && t.epochs.is_finite(),
            ),
            (
                "train.learning_rate",
                t.learning_rate,
                t.learning_rate > 0.0 && t.learning_rate < 1.0,
            ),
            (
                "train.warmup_ratio",
                t.warmup_ratio,
                (0.0..1.0).contains(&t.warmup_ratio),
            ),
            (
                "train.weight_decay",
                t.weight_decay,
                (0.0..1.0).contains(&t.weight_decay),
            ),
            (
                "train.adam_beta1",
                t.adam_beta1,
                (0.0..1.0).contains(&t.adam_beta1),
            ),
            (
                "train.adam_beta2",
                t.adam_beta2,
                (0.0..1.0).contains(&t.adam_beta2),
            ),
            ("train.adam_epsilon", t.adam_epsilon, t.adam_epsilon > 0.0),
            (
                "train.max_grad_norm",
                t.max_grad_norm,
                t.max_grad_norm >= 0.0,
            ),
        ];
        for (k, v, ok) in checks {
            if !ok {
                return Err(bad(k, format!("value {v} is out of range")));
            }
        }
        if t.doc_stride >= t.max_seq_length {
            return Err(bad(
                "train.doc_stride",
                format!(
                    "{} must be smaller than max_seq_length {}",
                    t.doc_stride, t.max_seq_length
                ),
            ));
        }
        if t.max_steps == Some(0) {
            return Err(bad("train.max_steps", "must be at least 1".into()));
        }
        for (k, v) in [
            ("train.eval_steps", t.eval_steps),
            ("train.save_steps", t.save_steps),
        ] {
            if v == Some(0) {
                return Err(bad(k, "must be at least 1".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "model: {preset: tiny, vocab: v.txt}\ndata: {train: a.json, eval: b.json}\n";

    /// Which precision runs where: pure half on CUDA only, bf16 nowhere on wgpu (WGSL has no
    /// bfloat16), everything else anywhere.
    #[test]
    fn precisions_by_device() {
        for device in [Device::Cpu, Device::Cuda(0), Device::Wgpu(0)] {
            for precision in Precision::ALL {
                let allowed = precision.check_device(device).is_ok();
                let expected = match (precision, device) {
                    (Precision::PureBf16, d) => d.is_cuda(),
                    (Precision::Bf16, d) => !d.is_wgpu(),
                    _ => true,
                };
                assert_eq!(allowed, expected, "{precision} on {device}");
            }
        }
        let e = Precision::Bf16.check_device(Device::Wgpu(1)).unwrap_err();
        assert!(e.contains("wgpu:1") && e.contains("bfloat16"), "{e}");
    }

    #[test]
    fn defaults_follow_hf() {
        let c = TrialConfig::from_yaml_str(OK, "t.yaml").unwrap();
        let t = &c.train;
        assert_eq!(
            (t.adam_epsilon, t.weight_decay, t.max_grad_norm),
            (1e-8, 0.0, 1.0)
        );
        assert_eq!(
            (
                t.max_seq_length,
                t.doc_stride,
                t.n_best_size,
                t.max_answer_length
            ),
            (384, 128, 20, 30)
        );
        assert_eq!(t.effective_precision(), Precision::F32);
    }

    #[test]
    fn key_lists_match_the_structs() {
        for k in MODEL_KEYS {
            let v = if *k == "do_lower_case" {
                "true"
            } else if *k == "preset" {
                "tiny"
            } else {
                "x"
            };
            let e = serde_yaml::from_str::<ModelSpec>(&format!("{k}: {v}"));
            assert!(e.is_ok(), "{k}: {e:?}");
        }
        let e = serde_yaml::from_str::<ModelSpec>("nope: 1")
            .unwrap_err()
            .to_string();
        for k in MODEL_KEYS {
            assert!(e.contains(k), "{k} missing from {e}");
        }
        let e = serde_yaml::from_str::<DataSpec>("nope: 1")
            .unwrap_err()
            .to_string();
        assert!(DATA_KEYS.iter().all(|k| e.contains(k)), "{e}");
        let keys = train_keys();
        assert!(
            keys.len() >= 25 && keys.contains(&"max_steps".to_string()),
            "{keys:?}"
        );
    }

    #[test]
    fn fp16_maps_to_f16() {
        let c =
            TrialConfig::from_yaml_str(&format!("{OK}train: {{fp16: true}}\n"), "t.yaml").unwrap();
        assert_eq!(c.train.effective_precision(), Precision::F16);
    }

    #[test]
    fn errors_name_the_key() {
        let e =
            TrialConfig::from_yaml_str(&format!("{OK}train: {{learning_rat: 1.0e-5}}\n"), "t.yaml")
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("t.yaml") && e.contains("learning_rat") && e.contains("line 3"),
            "{e}"
        );
        let e = TrialConfig::from_yaml_str(&format!("{OK}train: {{batch_size: four}}\n"), "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("batch_size"), "{e}");
        let e = TrialConfig::from_yaml_str(&format!("{OK}train: {{doc_stride: 400}}\n"), "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.doc_stride"), "{e}");
        let e = TrialConfig::from_yaml_str(
            "model: {preset: tiny}\ndata: {train: a, eval: b}\n",
            "t.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("model.vocab"), "{e}");
        let e = TrialConfig::from_yaml_str(
            "model: {preset: huge, vocab: v}\ndata: {train: a, eval: b}\n",
            "t.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("huge"), "{e}");
    }
}
