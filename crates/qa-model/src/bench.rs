//! Training-step throughput: forward, QA loss, backward, global clipping and AdamW on a
//! random batch of a preset model — exactly the work of one `sweep train` step. Used by
//! `sweep bench-train` (`make bench` on CPU, scripts/gpu-check.sh on CUDA).

use std::time::Instant;

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData};
use qa_data::rng::SplitMix64;
use serde::Serialize;
use spec::Preset;

use crate::error::Result;
use crate::model::{int_tensor, QaBatch, QaModel};
use crate::optim::{step, AdamW, AdamWConfig};
use crate::presets::preset_config;
use crate::train::{no_decay_ids, qa_loss};
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
}

#[derive(Debug, Clone, Serialize)]
pub struct StepBenchResult {
    pub ms_per_step: f64,
    pub examples_per_second: f64,
    pub parameters: usize,
}

/// Times `timed_steps` optimizer steps after `warmup_steps`.
pub fn train_step_throughput<B: AutodiffBackend>(
    b: StepBench,
    device: &B::Device,
) -> Result<StepBenchResult> {
    B::seed(device, 1);
    let config = preset_config(b.preset, false, b.vocab_size)?;
    let mut source = WeightSource::empty(config.arch.prefix());
    let (mut model, _) = QaModel::<B>::build(&config, &mut source, device)?;
    let parameters = burn::module::Module::num_params(&model);
    let mut opt = AdamW::new(
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        },
        no_decay_ids(&model),
    );
    let (n, seq) = (b.batch, b.seq);
    let mut rng = SplitMix64::new(7);
    let ids: Vec<i64> = (0..n * seq)
        .map(|_| 1 + rng.below(b.vocab_size - 1) as i64)
        .collect();
    let types: Vec<i64> = (0..n * seq)
        .map(|i| i64::from(i % seq >= seq / 4))
        .collect();
    let starts: Vec<i64> = (0..n).map(|_| rng.below(seq) as i64).collect();
    let ends: Vec<i64> = starts
        .iter()
        .map(|&s| (s + 3).min(seq as i64 - 1))
        .collect();
    let input = QaBatch::<B> {
        input_ids: int_tensor(ids, n, seq, device),
        token_type_ids: int_tensor(types, n, seq, device),
        attention_mask: int_tensor(vec![1; n * seq], n, seq, device),
    };
    let s = Tensor::<B, 1, Int>::from_data(TensorData::new(starts, [n]), device);
    let e = Tensor::<B, 1, Int>::from_data(TensorData::new(ends, [n]), device);
    let mut secs = 0.0;
    for i in 0..b.warmup_steps + b.timed_steps {
        let t = Instant::now();
        let out = model.forward(input.clone());
        let loss = qa_loss(out.start_logits, out.end_logits, s.clone(), e.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let (m, _) = step::<B, QaModel<B>>(&mut opt, model, grads, 1e-4, 1.0);
        model = m;
        // Wait for the device: read one parameter back.
        let _ = model.qa_outputs.weight.val().into_data();
        if i >= b.warmup_steps {
            secs += t.elapsed().as_secs_f64();
        }
    }
    let timed = b.timed_steps.max(1) as f64;
    Ok(StepBenchResult {
        ms_per_step: 1000.0 * secs / timed,
        examples_per_second: (n as f64 * timed) / secs.max(1e-12),
        parameters,
    })
}
