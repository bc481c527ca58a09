//! Training-step throughput: one `sweep train` optimizer step (the trainer's own code) on
//! random windows of a preset model, in any precision. Used by `sweep bench-train`
//! (`make bench` on CPU, scripts/gpu-check.sh on CUDA).

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use qa_data::features::Feature;
use qa_data::rng::SplitMix64;
use serde::Serialize;
use spec::{Precision, Preset};

use crate::amp::{self, GradScaler};
use crate::data::batch;
use crate::error::Result;
use crate::model::QaModel;
use crate::optim::no_decay_ids;
use crate::optim::{AdamW, AdamWConfig};
use crate::presets::preset_config;
use crate::step::{for_eval, optimizer_step, StepInputs};
use crate::weights::WeightSource;

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct StepBench {
    pub preset: Preset,
    pub vocab_size: usize,
    pub batch: usize,
    pub seq: usize,
    pub warmup_steps: usize,
    pub timed_steps: usize,
    /// f32, mixed precision (f16 with loss scaling, bf16), or pure half on CUDA backends.
    pub precision: Precision,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepBenchResult {
    pub ms_per_step: f64,
    pub examples_per_second: f64,
    pub parameters: usize,
    /// The first step (kernel compilation and autotuning on CUDA), separately.
    pub first_step_ms: f64,
    /// Process CPU time / wall time over the timed steps (Linux; absent elsewhere).
    pub cores_used: Option<f64>,
    /// Evaluation: the forward pass alone on the same batch, without autodiff
    /// (`sweep predict`'s path).
    pub eval_ms_per_batch: f64,
    pub eval_cores_used: Option<f64>,
}

/// CPU seconds this process has used (user + system), from `/proc/self/stat`.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at ")".
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, in USER_HZ (100) ticks.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Times `f` `warm + timed` times; (seconds of the timed runs, cores used by them).
fn timed(warm: usize, timed: usize, mut f: impl FnMut()) -> (f64, Option<f64>) {
    for _ in 0..warm {
        f();
    }
    let (t, cpu) = (Instant::now(), process_cpu_seconds());
    for _ in 0..timed {
        f();
    }
    let wall = t.elapsed().as_secs_f64();
    let cores = cpu
        .zip(process_cpu_seconds())
        .map(|(a, b)| (b - a) / wall.max(1e-9));
    (wall, cores)
}

/// Times `timed_steps` optimizer steps after `warmup_steps`, through the trainer's own
/// step ([`optimizer_step`]): batching, forward, QA loss, backward, loss scaling, global
/// clipping and AdamW, on random windows of `seq` tokens.
pub fn train_step_throughput<B: AutodiffBackend>(
    b: StepBench,
    device: &B::Device,
) -> Result<StepBenchResult> {
    B::seed(device, 1);
    let config = preset_config(b.preset, false, b.vocab_size)?;
    let mut source = WeightSource::empty(config.arch.prefix());
    let (mut model, _) = QaModel::<B>::build(&config, &mut source, device)?;
    model.autocast = b.precision.autocast().map(amp::dtype);
    let parameters = burn::module::Module::num_params(&model);
    let mut opt = AdamW::new(
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        },
        no_decay_ids(&model, &config)?,
    );
    let mut scaler = b.precision.scales_loss().then(GradScaler::default);
    let (n, seq) = (b.batch, b.seq.max(4));
    let mut rng = SplitMix64::new(7);
    let question = seq / 4;
    let features: Vec<Feature> = (0..n)
        .map(|i| {
            let input_ids = (0..seq)
                .map(|_| 1 + rng.below(b.vocab_size - 1) as u32)
                .collect();
            let start = question + rng.below(seq - question - 4);
            Feature {
                example_index: i,
                window_index: 0,
                input_ids,
                context_start: question,
                context_offsets: (0..seq - question - 1)
                    .map(|k| (k as u32, k as u32 + 1))
                    .collect(),
                label: Some((start, start + 3)),
            }
        })
        .collect();
    let indices: Vec<usize> = (0..n).collect();
    let group = [indices.as_slice()];
    let inputs = StepInputs::<B> {
        features: &features,
        group: &group,
        pad_id: 0,
        pad_to: Some(seq),
        pad_token_id: 0,
        learning_rate: 1e-4,
        max_grad_norm: 1.0,
        dropout_seed: 0,
        dropout_step: 0,
        device,
    };
    let mut first = None;
    let mut slot = Some(model);
    let (secs, cores_used) = timed(b.warmup_steps, b.timed_steps, || {
        let Some(model) = slot.take() else { return };
        let t = Instant::now();
        let (m, _, _) = optimizer_step(model, &mut opt, scaler.as_mut(), &inputs);
        // Wait for the device: read one parameter back.
        let _ = m.qa_outputs.weight.val().into_data();
        first.get_or_insert(t.elapsed().as_secs_f64());
        slot = Some(m);
    });
    let Some(model) = slot else {
        return Err(crate::ModelError::Invalid(
            "the benchmark lost its model".into(),
        ));
    };
    let eval_model = for_eval(&model);
    let refs: Vec<&Feature> = features.iter().collect();
    let (eval_secs, eval_cores_used) = timed(b.warmup_steps, b.timed_steps, || {
        let input = batch::<B::InnerBackend>(&refs, 0, Some(seq), device);
        let out = eval_model.forward(input);
        let _ = out.start_logits.into_data();
    });
    let timed = b.timed_steps.max(1) as f64;
    Ok(StepBenchResult {
        ms_per_step: 1000.0 * secs / timed,
        examples_per_second: (n as f64 * timed) / secs.max(1e-12),
        parameters,
        first_step_ms: 1000.0 * first.unwrap_or(0.0),
        cores_used,
        eval_ms_per_batch: 1000.0 * eval_secs / timed,
        eval_cores_used,
    })
}
