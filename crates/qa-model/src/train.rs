//! One trial: fine-tune (or train from scratch) a QA model with HF Trainer / `run_qa`
//! semantics, evaluate it with the official metric, write metrics, predictions and an
//! HF-compatible checkpoint.
//!
//! Files written to the output folder (all replaced atomically or appended line by line):
//! - `metrics.jsonl`: one JSON object per logged step (`loss`, `learning_rate`,
//!   `grad_norm`, `examples_per_second`) and per evaluation (`eval_em`, `eval_f1`);
//! - `predictions.json`: `{question id: answer}` of the last evaluation;
//! - `result.json`: the outcome (`status`, `EM`, `F1`, `train_loss`, `examples_per_second`…);
//! - `checkpoint/`: config.json, model.safetensors, tokenizer files.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::{AutodiffModule, Module, ParamId};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor};
use qa_data::decode::DecodeConfig;
use qa_data::features::{build_features, Feature, FeatureConfig, Split};
use qa_data::squad::Dataset;
use qa_data::tokenizer::{BertTokenizer, BertTokenizerOptions};
use serde_json::{json, Value};
use spec::{Precision, TrialConfig};

use crate::checkpoint::{load_model_dir, write_model_files};
use crate::config::ModelConfig;
use crate::data::{batch, labels};
use crate::error::{ModelError, Result};
use crate::eval::{evaluate_model, EvalPadding};
use crate::model::QaModel;
use crate::optim::{linear_schedule, step, AdamW, AdamWConfig};
use crate::presets::preset_config;
use crate::resume::{
    epoch_order, restore, save_train_state, truncate_metrics, Restored, ResumeState,
};
use crate::weights::WeightSource;

/// How a training run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainStatus {
    Succeeded,
    /// The loss became NaN or infinite; training stopped.
    Diverged,
    /// Stopped on request after saving its state (`train_state/`); a rerun resumes.
    Interrupted,
}

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
    spec::atomic::write_dir(&out.join("checkpoint"), |dir| -> Result<()> {
        write_model_files(model, config, tokenizer_dir, dir)?;
        if let (Some(_), Some(vocab)) = (trial.model.preset, &trial.model.vocab) {
            let dst = dir.join("vocab.txt");
            std::fs::copy(vocab, &dst).map_err(|e| ModelError::io(vocab, e))?;
            let casing = json!({"do_lower_case": trial.model.do_lower_case.unwrap_or(true)});
            write_json_atomically(&dir.join("tokenizer_config.json"), &casing)?;
        }
        Ok(())
    })
}

/// Appends JSON lines to metrics.jsonl, flushing each (the runner tails the file).
struct MetricsLog(std::fs::File, PathBuf);

impl MetricsLog {
    fn write(&mut self, v: Value) -> Result<()> {
        writeln!(self.0, "{v}")
            .and_then(|_| self.0.flush())
            .map_err(|e| ModelError::io(&self.1, e))
    }
}

pub(crate) fn write_json_atomically(path: &Path, v: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| ModelError::Invalid(e.to_string()))?;
    Ok(spec::atomic::write_file(path, text.as_bytes())?)
}

/// Ids of biases and LayerNorm parameters: no weight decay for them (HF's grouping).
pub fn no_decay_ids<B: Backend>(m: &QaModel<B>) -> HashSet<ParamId> {
    let mut ids = HashSet::new();
    let mut linear = |l: &burn::nn::Linear<B>| {
        if let Some(b) = &l.bias {
            ids.insert(b.id);
        }
    };
    if let Some(l) = &m.embedding_hidden_mapping_in {
        linear(l);
    }
    linear(&m.qa_outputs);
    for layer in &m.layers {
        for l in [
            &layer.query,
            &layer.key,
            &layer.value,
            &layer.attention_dense,
            &layer.ffn,
            &layer.ffn_output,
        ] {
            linear(l);
        }
    }
    let mut norms = vec![&m.embeddings.layer_norm];
    for layer in &m.layers {
        norms.push(&layer.attention_layer_norm);
        norms.push(&layer.output_layer_norm);
    }
    for n in norms {
        ids.insert(n.weight.id);
        ids.insert(n.bias.id);
    }
    ids
}

/// Mean cross-entropy of start and end logits (HF's `(start_loss + end_loss) / 2`).
pub fn qa_loss<B: Backend>(
    start_logits: Tensor<B, 2>,
    end_logits: Tensor<B, 2>,
    start: Tensor<B, 1, Int>,
    end: Tensor<B, 1, Int>,
) -> Tensor<B, 1> {
    let ce = |logits: Tensor<B, 2>, target: Tensor<B, 1, Int>| {
        let lp = log_softmax(logits, 1);
        lp.gather(1, target.unsqueeze_dim(1)).mean().neg()
    };
    (ce(start_logits, start) + ce(end_logits, end)) / 2.0
}

/// Zeroes the gradient of the padding row of the word embeddings, as `nn.Embedding`'s
/// `padding_idx` does in HF.
fn zero_padding_grad<B: AutodiffBackend>(
    model: &QaModel<B>,
    grads: &mut GradientsParams,
    pad: usize,
) {
    let id = model.embeddings.word_embeddings.weight.id;
    if let Some(g) = grads.remove::<B::InnerBackend, 2>(id) {
        let [n, d] = g.dims();
        let g = if pad < n {
            let device = g.device();
            g.slice_assign([pad..pad + 1, 0..d], Tensor::zeros([1, d], &device))
        } else {
            g
        };
        grads.register(id, g);
    }
}

/// Outcome of [`train`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainResult {
    pub status: TrainStatus,
    #[serde(rename = "EM")]
    pub em: f64,
    #[serde(rename = "F1")]
    pub f1: f64,
    pub train_loss: f64,
    pub examples_per_second: f64,
    pub train_seconds: f64,
    pub steps: usize,
    pub train_features: usize,
    pub eval_features: usize,
}

/// Runs one trial on an autodiff backend and writes its files to `out`.
pub fn train<B: AutodiffBackend>(
    trial: &TrialConfig,
    out: &Path,
    device: &B::Device,
) -> Result<TrainResult> {
    train_until::<B>(trial, out, device, &AtomicBool::new(false))
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
    if t.effective_precision() != Precision::F32 && !cfg!(feature = "cuda") {
        return Err(ModelError::Invalid(format!(
            "train.precision {:?} needs a CUDA build; CPU training is f32",
            t.effective_precision()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| ModelError::io(out, e))?;
    B::seed(device, t.seed);
    let prepared = prepare::<B>(trial, device)?;
    let Prepared {
        mut model,
        config,
        tokenizer,
        tokenizer_dir,
    } = prepared;
    let pad_id = tokenizer.special_ids().pad;

    let train_set = Dataset::load(&trial.data.train)?;
    let eval_set = Dataset::load(&trial.data.eval)?;
    let fc = FeatureConfig {
        max_seq_length: t.max_seq_length,
        doc_stride: t.doc_stride,
    };
    if t.max_seq_length > config.max_position_embeddings {
        return Err(ModelError::Invalid(format!(
            "train.max_seq_length {} exceeds the model's max_position_embeddings {}",
            t.max_seq_length, config.max_position_embeddings
        )));
    }
    let train_features = build_features(&train_set, &tokenizer, fc, Split::Train)?;
    let eval_features = build_features(&eval_set, &tokenizer, fc, Split::Eval)?;
    if train_features.is_empty() {
        return Err(ModelError::Invalid(format!(
            "{}: no training windows (no question has a located answer)",
            trial.data.train.display()
        )));
    }
    let decode = DecodeConfig {
        n_best_size: t.n_best_size,
        max_answer_length: t.max_answer_length,
    };

    // HF: update steps per epoch = batches // accumulation (at least 1).
    let batches_per_epoch = train_features.len().div_ceil(t.batch_size);
    let updates_per_epoch = (batches_per_epoch / t.gradient_accumulation_steps).max(1);
    let total_steps = t
        .max_steps
        .unwrap_or_else(|| (t.epochs * updates_per_epoch as f64).ceil() as usize)
        .max(1);
    let warmup = if t.warmup_steps > 0 {
        t.warmup_steps
    } else {
        (t.warmup_ratio * total_steps as f64).ceil() as usize
    };
    let eval_every = t.eval_steps.unwrap_or(updates_per_epoch);
    tracing::info!(
        "training {} ({} layers, hidden {}) on {} windows, evaluating on {} windows; {total_steps} steps, warmup {warmup}",
        config.arch.qa_class(),
        config.num_hidden_layers,
        config.hidden_size,
        train_features.len(),
        eval_features.len()
    );

    let metrics_path = out.join("metrics.jsonl");
    let state_dir = out.join("train_state");
    let mut opt = AdamW::new(
        AdamWConfig {
            beta1: t.adam_beta1,
            beta2: t.adam_beta2,
            epsilon: t.adam_epsilon,
            weight_decay: t.weight_decay,
        },
        no_decay_ids(&model),
    );
    let state = match restore::<B>(&state_dir, &config, opt.config, device)? {
        Some(Restored {
            model: restored,
            opt: restored_opt,
            state,
        }) => {
            model = restored;
            opt = restored_opt;
            // Dropout masks after the resume point come from a reseeded stream.
            B::seed(device, t.seed.wrapping_add(state.step as u64));
            truncate_metrics(&metrics_path, state.step)?;
            tracing::info!("resuming from step {} (epoch {})", state.step, state.epoch);
            state
        }
        None => {
            let _ = std::fs::remove_file(&metrics_path);
            ResumeState::default()
        }
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .map_err(|e| ModelError::io(&metrics_path, e))?;
    let mut metrics = MetricsLog(file, metrics_path);
    if state.step == 0 {
        // The model's size, for the report's parameters-vs-F1 chart.
        metrics.write(json!({"step": 0, "parameters": model.num_params()}))?;
    }

    let started = Instant::now();
    let mut examples_seen = state.examples_seen;
    let mut loss_sum = state.loss_sum;
    let mut loss_count = state.loss_count;
    let mut window_loss = 0.0f64;
    let mut window_count = 0usize;
    let mut last_eval = None;
    let mut status = TrainStatus::Succeeded;
    let mut step_no = state.step;
    let mut epoch = state.epoch;
    let mut skip_groups = state.groups_done;
    let mut window_start = Instant::now();
    let mut window_examples = 0usize;

    'training: while step_no < total_steps {
        let order = epoch_order(train_features.len(), t.seed, epoch);
        let batches: Vec<&[usize]> = order.chunks(t.batch_size).collect();
        // After a resume, the groups of the first epoch that were already done are skipped.
        let skip = std::mem::take(&mut skip_groups);
        for (group_index, group) in batches
            .chunks(t.gradient_accumulation_steps)
            .enumerate()
            .skip(skip)
        {
            let mut acc = GradientsAccumulator::<QaModel<B>>::new();
            let mut step_loss = 0.0;
            for idx in group {
                let feats: Vec<&Feature> = idx.iter().map(|&i| &train_features[i]).collect();
                let pad_to = t.pad_to_max_length.then_some(t.max_seq_length);
                let input = batch::<B>(&feats, pad_id, pad_to, device);
                let (start, end) = labels::<B>(&feats, device);
                let outp = model.forward(input);
                let loss =
                    qa_loss(outp.start_logits, outp.end_logits, start, end) / group.len() as f64;
                let value: f64 = loss.clone().into_scalar().elem();
                if !value.is_finite() {
                    status = TrainStatus::Diverged;
                    metrics.write(
                        json!({"step": step_no, "epoch": epoch, "loss": value, "diverged": true}),
                    )?;
                    tracing::warn!("loss is {value} at step {step_no}: training diverged");
                    break 'training;
                }
                step_loss += value;
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                acc.accumulate(&model, grads);
                examples_seen += feats.len();
                window_examples += feats.len();
            }
            let mut grads = acc.grads();
            zero_padding_grad(&model, &mut grads, config.pad_token_id);
            let lr = t.learning_rate * linear_schedule(step_no, warmup, total_steps);
            let (updated, grad_norm) =
                step::<B, QaModel<B>>(&mut opt, model, grads, lr, t.max_grad_norm);
            model = updated;
            step_no += 1;
            loss_sum += step_loss;
            loss_count += 1;
            window_loss += step_loss;
            window_count += 1;
            if step_no % t.logging_steps == 0 || step_no == total_steps {
                let secs = window_start.elapsed().as_secs_f64().max(1e-9);
                let eps = window_examples as f64 / secs;
                let elapsed = started.elapsed().as_secs_f64();
                let eta = elapsed / step_no as f64 * (total_steps - step_no) as f64;
                let loss = window_loss / window_count.max(1) as f64;
                metrics.write(json!({
                    "step": step_no, "epoch": epoch as f64 + (step_no as f64 / updates_per_epoch as f64).fract(),
                    "loss": loss, "learning_rate": lr, "grad_norm": grad_norm, "examples_per_second": eps,
                    "elapsed_seconds": elapsed,
                }))?;
                tracing::info!(
                    "step {step_no}/{total_steps} loss {loss:.4} lr {lr:.2e} {eps:.1} ex/s ETA {:.0}s",
                    eta
                );
                window_loss = 0.0;
                window_count = 0;
                window_examples = 0;
                window_start = Instant::now();
            }
            let end_of_run = step_no == total_steps;
            if step_no % eval_every == 0 || end_of_run {
                let valid = model.valid();
                let r = evaluate_model(
                    &valid,
                    &eval_set,
                    &eval_features,
                    t.eval_batch_size,
                    pad_id,
                    EvalPadding::from_flag(t.pad_to_max_length, t.max_seq_length),
                    decode,
                    device,
                )?;
                metrics.write(json!({"step": step_no, "epoch": epoch, "eval_em": r.scores.em, "eval_f1": r.scores.f1}))?;
                tracing::info!(
                    "eval at step {step_no}: EM {:.3} F1 {:.3}",
                    r.scores.em,
                    r.scores.f1
                );
                write_json_atomically(&out.join("predictions.json"), &json!(r.predictions))?;
                last_eval = Some(r);
            }
            // A stop request (SIGTERM from the runner or the scheduler) saves the state like a
            // save step, then ends the run as interrupted; the next run resumes from it.
            let stop_now = stop.load(Ordering::SeqCst) && !end_of_run;
            let save_now = t.save_steps.is_some_and(|every| step_no % every == 0);
            if (save_now || stop_now) && !end_of_run {
                let snapshot = ResumeState {
                    step: step_no,
                    epoch,
                    groups_done: group_index + 1,
                    loss_sum,
                    loss_count,
                    examples_seen,
                    train_seconds: state.train_seconds + started.elapsed().as_secs_f64(),
                };
                save_train_state(out, &model, &config, &opt, &snapshot)?;
                write_checkpoint(
                    out,
                    &model.valid(),
                    &config,
                    trial,
                    tokenizer_dir.as_deref(),
                )?;
            }
            if stop_now {
                status = TrainStatus::Interrupted;
                tracing::warn!("stop requested: state saved at step {step_no}; a rerun resumes");
                break 'training;
            }
            if end_of_run {
                break 'training;
            }
        }
        epoch += 1;
    }
    let train_seconds = state.train_seconds + started.elapsed().as_secs_f64();
    let (em, f1) = last_eval
        .as_ref()
        .map(|r| (r.scores.em, r.scores.f1))
        .unwrap_or((0.0, 0.0));
    let result = TrainResult {
        status,
        em,
        f1,
        train_loss: loss_sum / loss_count.max(1) as f64,
        examples_per_second: examples_seen as f64 / train_seconds.max(1e-9),
        train_seconds,
        steps: step_no,
        train_features: train_features.len(),
        eval_features: eval_features.len(),
    };
    if status == TrainStatus::Interrupted {
        // State saved; no result.json and no final checkpoint until the run completes.
        return Ok(result);
    }
    write_checkpoint(
        out,
        &model.valid(),
        &config,
        trial,
        tokenizer_dir.as_deref(),
    )?;
    let mut v = serde_json::to_value(&result).map_err(|e| ModelError::Invalid(e.to_string()))?;
    if let Value::Object(m) = &mut v {
        m.insert("seed".into(), json!(t.seed));
        m.insert("arch".into(), json!(config.arch));
        m.insert("backend".into(), json!(std::any::type_name::<B>()));
        m.insert("inert_model_config_keys".into(), json!(config.inert_keys()));
    }
    write_json_atomically(&out.join("result.json"), &v)?;
    // Only now is the run complete; until here a kill resumes from the last state.
    let _ = std::fs::remove_dir_all(&state_dir);
    Ok(result)
}
