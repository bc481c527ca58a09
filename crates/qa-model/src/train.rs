//! One trial: fine-tune (or train from scratch) a QA model with HF Trainer / `run_qa`
//! semantics, evaluate it with the official metric, write metrics, predictions and an
//! HF-compatible checkpoint.
//!
//! Files written to the output folder (`spec::protocol::files`; all replaced whole or
//! appended line by line):
//! - `metrics.jsonl`: one JSON object per logged step (`loss`, `learning_rate`,
//!   `grad_norm`, `examples_per_second`, `loss_scale` under f16) and per evaluation
//!   (`eval_em`, `eval_f1`);
//! - `predictions.json`: `{question id: answer}` of the last evaluation;
//! - `result.json`: the outcome (`status`, `EM`, `F1`, `train_loss`, `examples_per_second`…);
//! - `checkpoint/`: config.json, model.safetensors (f32 even under mixed precision),
//!   tokenizer files;
//! - `train_state/`: what a resumed run continues from.
//!
//! The run is split the way the loop reads: [`StepPlan`] (steps, warmup, evaluation
//! points), one optimizer step (`crate::step`, where precision lives), evaluation and
//! checkpointing ([`Run`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::backend::{AutodiffBackend, Backend};
use qa_data::decode::DecodeConfig;
use qa_data::features::{build_features, Feature, FeatureConfig, Split};
use qa_data::squad::Dataset;
use qa_data::tokenizer::{BertTokenizer, BertTokenizerOptions};
use serde_json::json;
use spec::protocol::{files, MetricLine, MetricsFile, Outcome, TrialResult};
use spec::{TrainSpec, TrialConfig};

use crate::amp::{self, GradScaler};
use crate::checkpoint::{load_model_dir, write_model_files};
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::eval::{evaluate_model, EvalPadding, EvalResult};
use crate::model::QaModel;
use crate::optim::{linear_schedule, no_decay_ids, AdamW, AdamWConfig};
use crate::presets::preset_config;
use crate::resume::{epoch_order, restore, save_train_state, Restored, ResumeState};
use crate::step::{for_eval, optimizer_step, StepInputs, StepOutcome, MAX_CONSECUTIVE_OVERFLOWS};
use crate::weights::WeightSource;

/// How a training run ended: the protocol's [`Outcome`] (`Interrupted`: stopped on request
/// after saving its state in `train_state/`; a rerun resumes).
pub use spec::protocol::Outcome as TrainStatus;

/// The model, its config and where its tokenizer files live, ready to train or predict.
#[derive(Debug)]
pub struct Prepared<B: Backend> {
    pub model: QaModel<B>,
    pub config: ModelConfig,
    pub tokenizer: BertTokenizer,
    /// Folder whose tokenizer files a checkpoint copies (`None` for presets, whose
    /// checkpoint gets their vocab.txt and casing written instead).
    pub tokenizer_dir: Option<PathBuf>,
}

/// Tokenizer and model of a trial: a HF directory (`model.init`) or a preset with a vocab.
/// The backend must already be seeded (initialisation draws from its RNG).
pub fn prepare<B: Backend>(trial: &TrialConfig, device: &B::Device) -> Result<Prepared<B>> {
    let overrides = &trial.model_config;
    if let Some(dir) = &trial.model.init {
        let tokenizer = BertTokenizer::from_model_dir(dir)?;
        let (model, config, _) = load_model_dir(dir, overrides, device)?;
        return Ok(Prepared {
            model,
            config,
            tokenizer,
            tokenizer_dir: Some(dir.clone()),
        });
    }
    let (Some(preset), Some(vocab)) = (trial.model.preset, &trial.model.vocab) else {
        return Err(ModelError::Invalid(
            "model: expected init or preset + vocab".into(),
        ));
    };
    let options = BertTokenizerOptions {
        do_lower_case: trial.model.do_lower_case.unwrap_or(true),
        ..BertTokenizerOptions::default()
    };
    let tokenizer = BertTokenizer::from_vocab_file(vocab, &options)?;
    let albert = trial.model.arch.as_deref() == Some("albert");
    let config = preset_config(preset, albert, tokenizer.vocab_size())?
        .with_overrides(overrides, "model_config")?;
    let mut source = WeightSource::empty(config.arch.prefix());
    let (model, _) = QaModel::build(&config, &mut source, device)?;
    Ok(Prepared {
        model,
        config,
        tokenizer,
        tokenizer_dir: None,
    })
}

/// Writes `out/checkpoint`: the HF directory, plus for presets their vocab.txt and casing,
/// so `sweep predict` and transformers read it back.
fn write_checkpoint<B: Backend>(
    out: &Path,
    model: &QaModel<B>,
    config: &ModelConfig,
    trial: &TrialConfig,
    tokenizer_dir: Option<&Path>,
) -> Result<()> {
    spec::atomic::write_dir(&out.join(files::CHECKPOINT), |dir| -> Result<()> {
        write_model_files(model, config, tokenizer_dir, dir)?;
        if let (Some(_), Some(vocab)) = (trial.model.preset, &trial.model.vocab) {
            let dst = dir.join("vocab.txt");
            std::fs::copy(vocab, &dst).map_err(|e| ModelError::io(vocab, e))?;
            let casing = json!({"do_lower_case": trial.model.do_lower_case.unwrap_or(true)});
            spec::atomic::write_json(&dir.join("tokenizer_config.json"), &casing)?;
        }
        Ok(())
    })
}

/// `metrics.jsonl` (the runner tails it), with errors that name it.
struct MetricsLog(MetricsFile);

impl MetricsLog {
    fn write(&mut self, line: &MetricLine) -> Result<()> {
        self.0
            .write(line)
            .map_err(|e| ModelError::io(self.0.path(), e))
    }
}

/// Outcome of [`train`]: the protocol's `result.json` ([`TrialResult`]).
pub use spec::protocol::TrialResult as TrainResult;

/// Steps, warmup and evaluation points of a run, with HF Trainer's arithmetic: update steps
/// per epoch = ⌊batches / accumulation⌋ (at least 1), total = `max_steps` or
/// ⌈epochs × updates per epoch⌉, warmup = `warmup_steps` or ⌈warmup_ratio × total⌉.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepPlan {
    pub updates_per_epoch: usize,
    pub total_steps: usize,
    pub warmup_steps: usize,
    /// Evaluate every this many steps (default: once per epoch), and at the end.
    pub eval_every: usize,
}

impl StepPlan {
    pub fn new(t: &TrainSpec, train_features: usize) -> Self {
        let batches_per_epoch = train_features.div_ceil(t.batch_size.max(1));
        let updates_per_epoch = (batches_per_epoch / t.gradient_accumulation_steps.max(1)).max(1);
        let total_steps = t
            .max_steps
            .unwrap_or_else(|| (t.epochs * updates_per_epoch as f64).ceil() as usize)
            .max(1);
        let warmup_steps = if t.warmup_steps > 0 {
            t.warmup_steps
        } else {
            (t.warmup_ratio * total_steps as f64).ceil() as usize
        };
        Self {
            updates_per_epoch,
            total_steps,
            warmup_steps,
            eval_every: t.eval_steps.unwrap_or(updates_per_epoch),
        }
    }

    pub fn evaluates_at(&self, step: usize) -> bool {
        step.is_multiple_of(self.eval_every) || step == self.total_steps
    }
}

/// A trial's data: both sets and their windows.
struct TrialData {
    eval_set: Dataset,
    train_features: Vec<Feature>,
    eval_features: Vec<Feature>,
}

impl TrialData {
    fn load(trial: &TrialConfig, tokenizer: &BertTokenizer, config: &ModelConfig) -> Result<Self> {
        let t = &trial.train;
        if t.max_seq_length > config.max_position_embeddings {
            return Err(ModelError::Invalid(format!(
                "train.max_seq_length {} exceeds the model's max_position_embeddings {}",
                t.max_seq_length, config.max_position_embeddings
            )));
        }
        let train_set = Dataset::load(&trial.data.train)?;
        let eval_set = Dataset::load(&trial.data.eval)?;
        let fc = FeatureConfig {
            max_seq_length: t.max_seq_length,
            doc_stride: t.doc_stride,
        };
        let train_features = build_features(&train_set, tokenizer, fc, Split::Train)?;
        let eval_features = build_features(&eval_set, tokenizer, fc, Split::Eval)?;
        if train_features.is_empty() {
            return Err(ModelError::Invalid(format!(
                "{}: no training windows (no question has a located answer)",
                trial.data.train.display()
            )));
        }
        Ok(Self {
            eval_set,
            train_features,
            eval_features,
        })
    }
}

/// Runs one trial on an autodiff backend and writes its files to `out`.
pub fn train<B: AutodiffBackend>(
    trial: &TrialConfig,
    out: &Path,
    device: &B::Device,
) -> Result<TrainResult> {
    train_until::<B>(trial, out, device, &AtomicBool::new(false))
}

/// What one run carries from step to step, besides the model and the optimizer.
struct Run<'a> {
    trial: &'a TrialConfig,
    out: &'a Path,
    plan: StepPlan,
    config: ModelConfig,
    tokenizer_dir: Option<PathBuf>,
    pad_id: u32,
    metrics: MetricsLog,
    state: ResumeState,
    scaler: Option<GradScaler>,
    /// f16 overflow steps in a row (divergence after [`MAX_CONSECUTIVE_OVERFLOWS`]).
    overflows: u32,
    skipped: usize,
    started: Instant,
    train_seconds_before: f64,
    window: LogWindow,
    last_eval: Option<EvalResult>,
}

/// The steps since the last logged line.
struct LogWindow {
    loss: f64,
    steps: usize,
    examples: usize,
    started: Instant,
}

impl LogWindow {
    fn new() -> Self {
        Self {
            loss: 0.0,
            steps: 0,
            examples: 0,
            started: Instant::now(),
        }
    }
}

/// A fresh AdamW (HF's decay groups) for `model`, or, when `out/train_state` holds a saved
/// state, the model, optimizer and counters saved there.
fn new_or_resumed<B: AutodiffBackend>(
    model: QaModel<B>,
    config: &ModelConfig,
    t: &TrainSpec,
    precision: spec::Precision,
    out: &Path,
    device: &B::Device,
) -> Result<(QaModel<B>, AdamW<B::InnerBackend>, ResumeState)> {
    let opt = AdamW::new(
        AdamWConfig {
            beta1: t.adam_beta1,
            beta2: t.adam_beta2,
            epsilon: t.adam_epsilon,
            weight_decay: t.weight_decay,
        },
        no_decay_ids(&model, config)?,
    );
    match restore::<B>(&out.join(files::TRAIN_STATE), config, opt.config, device)? {
        Some(Restored {
            model: mut restored,
            opt: restored_opt,
            state,
        }) => {
            restored.autocast = precision.autocast().map(amp::dtype);
            // On flex the dropout masks are keyed by (seed, step), so a resumed run draws
            // the ones the uninterrupted run would have; burn's dropout (other backends)
            // continues from a reseeded stream.
            B::seed(device, t.seed.wrapping_add(state.step as u64));
            tracing::info!("resuming from step {} (epoch {})", state.step, state.epoch);
            Ok((restored, restored_opt, state))
        }
        None => Ok((model, opt, ResumeState::default())),
    }
}

/// [`train`] that also stops, after saving its state, once `stop` is set (checked after
/// every optimizer step). A stopped run returns [`TrainStatus::Interrupted`] and writes no
/// `result.json`.
pub fn train_until<B: AutodiffBackend>(
    trial: &TrialConfig,
    out: &Path,
    device: &B::Device,
    stop: &AtomicBool,
) -> Result<TrainResult> {
    let t = &trial.train;
    let precision = t.effective_precision();
    if precision.pure_half().is_some() {
        tracing::warn!(
            "precision {precision}: weights, gradients and AdamW moments all in half precision \
             (ε = {} may underflow, small updates vanish); this is not HF's --fp16/--bf16, \
             which precision f16/bf16 (mixed precision) is",
            t.adam_epsilon
        );
    }
    std::fs::create_dir_all(out).map_err(|e| ModelError::io(out, e))?;
    B::seed(device, t.seed);
    let Prepared {
        mut model,
        config,
        tokenizer,
        tokenizer_dir,
    } = prepare::<B>(trial, device)?;
    model.autocast = precision.autocast().map(amp::dtype);
    let pad_id = tokenizer.special_ids().pad;
    let data = TrialData::load(trial, &tokenizer, &config)?;
    let plan = StepPlan::new(t, data.train_features.len());
    tracing::info!(
        "training {} ({} layers, hidden {}, precision {precision}) on {} windows, evaluating on {} windows; {} steps, warmup {}",
        config.arch.qa_class(),
        config.num_hidden_layers,
        config.hidden_size,
        data.train_features.len(),
        data.eval_features.len(),
        plan.total_steps,
        plan.warmup_steps
    );

    let (model, mut opt, state) = new_or_resumed::<B>(model, &config, t, precision, out, device)?;
    let resumed_step = (state.step > 0).then_some(state.step as u64);
    let metrics = MetricsFile::open(out, resumed_step)
        .map_err(|e| ModelError::io(out.join(files::METRICS), e))?;
    let mut run = Run {
        trial,
        out,
        plan,
        config,
        tokenizer_dir,
        pad_id,
        metrics: MetricsLog(metrics),
        scaler: precision
            .scales_loss()
            .then(|| state.scaler.unwrap_or_default()),
        train_seconds_before: state.train_seconds,
        state,
        overflows: 0,
        skipped: 0,
        started: Instant::now(),
        window: LogWindow::new(),
        last_eval: None,
    };
    if run.state.step == 0 {
        // The model's size, for the report's parameters-vs-F1 chart, and the planned steps,
        // for the live view's time left.
        let mut line = MetricLine::at(0);
        line.other
            .insert("parameters".into(), json!(model.num_params()));
        line.other
            .insert("total_steps".into(), json!(plan.total_steps));
        run.metrics.write(&line)?;
    }
    let (model, status) = run.train_loop(model, &mut opt, &data, stop, device)?;
    run.finish(&model, status, &data, precision)
}

impl Run<'_> {
    /// The epochs from the current state to the plan's last step (or a divergence, or a stop
    /// request after saving the state): one optimizer step per group of batches, with the
    /// evaluations and saves the plan and `save_steps` ask for.
    fn train_loop<B: AutodiffBackend>(
        &mut self,
        mut model: QaModel<B>,
        opt: &mut AdamW<B::InnerBackend>,
        data: &TrialData,
        stop: &AtomicBool,
        device: &B::Device,
    ) -> Result<(QaModel<B>, TrainStatus)> {
        let t = &self.trial.train;
        let plan = self.plan;
        let pad_id = self.pad_id;
        let decode = DecodeConfig {
            n_best_size: t.n_best_size,
            max_answer_length: t.max_answer_length,
        };
        let pad_to = t.pad_to_max_length.then_some(t.max_seq_length);
        let mut status = TrainStatus::Succeeded;
        let mut skip_groups = self.state.groups_done;
        'training: while self.state.step < plan.total_steps {
            let epoch = self.state.epoch;
            let order = epoch_order(data.train_features.len(), t.seed, epoch);
            let batches: Vec<&[usize]> = order.chunks(t.batch_size).collect();
            // After a resume, the groups of the first epoch that were already done are skipped.
            let skip = std::mem::take(&mut skip_groups);
            for (group_index, group) in batches
                .chunks(t.gradient_accumulation_steps)
                .enumerate()
                .skip(skip)
            {
                let lr = t.learning_rate
                    * linear_schedule(self.state.applied(), plan.warmup_steps, plan.total_steps);
                let inputs = StepInputs::<B> {
                    features: &data.train_features,
                    group,
                    pad_id,
                    pad_to,
                    pad_token_id: self.config.pad_token_id,
                    learning_rate: lr,
                    max_grad_norm: t.max_grad_norm,
                    dropout_seed: t.seed,
                    dropout_step: self.state.step as u64,
                    device,
                };
                let (updated, outcome, examples) =
                    optimizer_step(model, opt, self.scaler.as_mut(), &inputs);
                model = updated;
                if !self.record_step(outcome, examples, lr)? {
                    status = TrainStatus::Diverged;
                    break 'training;
                }
                let step = self.state.step;
                let end_of_run = step == plan.total_steps;
                if plan.evaluates_at(step) {
                    self.evaluate(&for_eval(&model), data, decode, device)?;
                }
                // A stop request (SIGTERM from the runner or the scheduler) saves the state like a
                // save step, then ends the run as interrupted; the next run resumes from it.
                let stop_now = stop.load(Ordering::SeqCst) && !end_of_run;
                let save_now = t.save_steps.is_some_and(|every| step.is_multiple_of(every));
                if (save_now || stop_now) && !end_of_run {
                    self.state.groups_done = group_index + 1;
                    self.save(&model, opt)?;
                }
                if stop_now {
                    status = TrainStatus::Interrupted;
                    tracing::warn!("stop requested: state saved at step {step}; a rerun resumes");
                    break 'training;
                }
                if end_of_run {
                    break 'training;
                }
            }
            self.state.epoch += 1;
        }
        Ok((model, status))
    }

    /// Counts a step's outcome and logs it; false when the run diverged.
    fn record_step(&mut self, outcome: StepOutcome, examples: usize, lr: f64) -> Result<bool> {
        let step = self.state.step;
        let (loss, grad_norm) = match outcome {
            StepOutcome::Diverged { loss } => {
                self.metrics.write(&MetricLine {
                    epoch: Some(self.state.epoch as f64),
                    loss: Some(loss).filter(|l| l.is_finite()),
                    diverged: true,
                    ..MetricLine::at(step as u64)
                })?;
                tracing::warn!("loss is {loss} at step {step}: training diverged");
                return Ok(false);
            }
            StepOutcome::Skipped { loss, grad_norm } => {
                self.skipped += 1;
                self.overflows += 1;
                let scale = self.scaler.map_or(1.0, |s| s.scale);
                tracing::info!(
                    "step {}: inf/NaN gradients under loss scaling; update skipped, scale now {scale}",
                    step + 1
                );
                if self.overflows >= MAX_CONSECUTIVE_OVERFLOWS {
                    self.metrics.write(&MetricLine {
                        epoch: Some(self.state.epoch as f64),
                        loss: Some(loss).filter(|l| l.is_finite()),
                        loss_scale: Some(scale),
                        diverged: true,
                        ..MetricLine::at(step as u64)
                    })?;
                    tracing::warn!(
                        "{} optimizer steps in a row overflowed in f16 (scale {scale}): training diverged",
                        self.overflows
                    );
                    return Ok(false);
                }
                (loss, grad_norm)
            }
            StepOutcome::Applied { loss, grad_norm } => {
                self.overflows = 0;
                self.state.applied_steps = Some(self.state.applied() + 1);
                (loss, grad_norm)
            }
        };
        self.state.step += 1;
        self.state.examples_seen += examples;
        self.window.examples += examples;
        if loss.is_finite() {
            self.state.loss_sum += loss;
            self.state.loss_count += 1;
            self.window.loss += loss;
            self.window.steps += 1;
        }
        let step = self.state.step;
        let plan = self.plan;
        if step.is_multiple_of(self.trial.train.logging_steps) || step == plan.total_steps {
            let secs = self.window.started.elapsed().as_secs_f64().max(1e-9);
            let eps = self.window.examples as f64 / secs;
            let elapsed = self.started.elapsed().as_secs_f64();
            let eta = elapsed / step.max(1) as f64 * (plan.total_steps - step) as f64;
            let loss = self.window.loss / self.window.steps.max(1) as f64;
            let epoch =
                self.state.epoch as f64 + (step as f64 / plan.updates_per_epoch as f64).fract();
            self.metrics.write(&MetricLine {
                epoch: Some(epoch),
                elapsed_seconds: Some(elapsed),
                loss: Some(loss).filter(|l| l.is_finite()),
                learning_rate: Some(lr),
                grad_norm: Some(grad_norm).filter(|g| g.is_finite()),
                examples_per_second: Some(eps),
                loss_scale: self.scaler.map(|s| s.scale),
                ..MetricLine::at(step as u64)
            })?;
            tracing::info!(
                "step {step}/{} loss {loss:.4} lr {lr:.2e} {eps:.1} ex/s ETA {eta:.0}s",
                plan.total_steps
            );
            self.window = LogWindow::new();
        }
        Ok(true)
    }

    /// Evaluates like run_qa, logs EM/F1 and writes predictions.json.
    fn evaluate<B: Backend>(
        &mut self,
        model: &QaModel<B>,
        data: &TrialData,
        decode: DecodeConfig,
        device: &B::Device,
    ) -> Result<()> {
        let t = &self.trial.train;
        let r = evaluate_model(
            model,
            &data.eval_set,
            &data.eval_features,
            t.eval_batch_size,
            self.pad_id,
            EvalPadding::from_flag(t.pad_to_max_length, t.max_seq_length),
            decode,
            device,
        )?;
        let step = self.state.step;
        self.metrics.write(&MetricLine {
            epoch: Some(self.state.epoch as f64),
            eval_em: Some(r.scores.em),
            eval_f1: Some(r.scores.f1),
            ..MetricLine::at(step as u64)
        })?;
        tracing::info!(
            "eval at step {step}: EM {:.3} F1 {:.3}",
            r.scores.em,
            r.scores.f1
        );
        spec::atomic::write_json(&self.out.join(files::PREDICTIONS), &json!(r.predictions))?;
        self.last_eval = Some(r);
        Ok(())
    }

    /// Saves `train_state/` and `checkpoint/` (each staged and swapped in whole).
    fn save<B: AutodiffBackend>(
        &mut self,
        model: &QaModel<B>,
        opt: &AdamW<B::InnerBackend>,
    ) -> Result<()> {
        self.state.train_seconds = self.train_seconds_before + self.started.elapsed().as_secs_f64();
        self.state.scaler = self.scaler;
        save_train_state(self.out, model, &self.config, opt, &self.state)?;
        self.write_checkpoint(model)
    }

    /// `checkpoint/`: the model as a HF directory (f32 weights, config, tokenizer).
    fn write_checkpoint<B: AutodiffBackend>(&self, model: &QaModel<B>) -> Result<()> {
        write_checkpoint(
            self.out,
            &for_eval(model),
            &self.config,
            self.trial,
            self.tokenizer_dir.as_deref(),
        )
    }

    /// Writes the final checkpoint and `result.json` (not for an interrupted run, whose
    /// saved state a rerun resumes), and removes the resume state.
    fn finish<B: AutodiffBackend>(
        self,
        model: &QaModel<B>,
        status: TrainStatus,
        data: &TrialData,
        precision: spec::Precision,
    ) -> Result<TrainResult> {
        let train_seconds = self.train_seconds_before + self.started.elapsed().as_secs_f64();
        let (em, f1) = self
            .last_eval
            .as_ref()
            .map(|r| (r.scores.em, r.scores.f1))
            .unwrap_or((0.0, 0.0));
        let mut result = TrialResult {
            status,
            em,
            f1,
            steps: self.state.step as u64,
            train_loss: Some(self.state.loss_sum / self.state.loss_count.max(1) as f64),
            train_seconds: Some(train_seconds),
            examples_per_second: Some(self.state.examples_seen as f64 / train_seconds.max(1e-9)),
            details: Default::default(),
        };
        let details = [
            ("train_features", json!(data.train_features.len())),
            ("eval_features", json!(data.eval_features.len())),
            ("precision", json!(precision.to_string())),
            ("skipped_steps", json!(self.skipped)),
            ("seed", json!(self.trial.train.seed)),
            ("arch", json!(self.config.arch)),
            ("backend", json!(std::any::type_name::<B>())),
            ("inert_model_config_keys", json!(self.config.inert_keys())),
        ];
        result
            .details
            .extend(details.into_iter().map(|(k, v)| (k.to_string(), v)));
        if status == Outcome::Interrupted {
            return Ok(result);
        }
        self.write_checkpoint(model)?;
        result.write(self.out)?;
        // Only now is the run complete; until here a kill resumes from the last state.
        let _ = std::fs::remove_dir_all(self.out.join(files::TRAIN_STATE));
        Ok(result)
    }
}
