//! Training-step throughput on the CPU backend, for `make bench` (tools/bench_train.py puts
//! it next to PyTorch + transformers doing the same steps in the same run).
//!
//! Usage: bench_train PRESET VOCAB_SIZE BATCH SEQ WARMUP_STEPS TIMED_STEPS [cpu|cuda] [f32|f16|bf16]
//! One step = forward, QA loss, backward, global clipping, AdamW — what `sweep train` does.
//! Prints one JSON object.

use std::time::Instant;

use burn::backend::Autodiff;
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use qa_model::backend::{CpuBackend, CPU_BACKEND_NAME};
use qa_model::model::{int_tensor, QaBatch, QaModel};
use qa_model::optim::{step, AdamW, AdamWConfig};
use qa_model::presets::preset_config;
use qa_model::train::{no_decay_ids, qa_loss};
use qa_model::weights::WeightSource;
use spec::Preset;

// The same allocator as the `sweep` binary, so the numbers are what users get.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    // As `sweep` does (crates/cli/src/alloc.rs): keep freed memory instead of returning it.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        return Err("run with MIMALLOC_PURGE_DELAY=-1 (tools/bench_train.py sets it), as sweep configures mimalloc".into());
    }
    let device = a.get(7).map(String::as_str).unwrap_or("cpu");
    let precision = a.get(8).map(String::as_str).unwrap_or("f32");
    match (device, precision) {
        ("cpu", "f32") => run::<Autodiff<CpuBackend>>(&a, Default::default(), CPU_BACKEND_NAME),
        #[cfg(feature = "cuda")]
        ("cuda", "f32") => {
            run::<Autodiff<burn::backend::Cuda<f32>>>(&a, Default::default(), "cuda-f32")
        }
        #[cfg(feature = "cuda")]
        ("cuda", "f16") => run::<Autodiff<burn::backend::Cuda<burn::tensor::f16>>>(
            &a,
            Default::default(),
            "cuda-f16",
        ),
        #[cfg(feature = "cuda")]
        ("cuda", "bf16") => run::<Autodiff<burn::backend::Cuda<burn::tensor::bf16>>>(
            &a,
            Default::default(),
            "cuda-bf16",
        ),
        _ => Err(format!("unsupported device/precision {device}/{precision} in this build").into()),
    }
}

fn run<B: burn::tensor::backend::AutodiffBackend>(
    a: &[String],
    device: B::Device,
    backend_name: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    if a.len() < 7 {
        return Err(
            "usage: bench_train PRESET VOCAB_SIZE BATCH SEQ WARMUP_STEPS TIMED_STEPS".into(),
        );
    }
    let preset: Preset = serde_json::from_value(serde_json::Value::String(a[1].clone()))?;
    let (vocab, batch, seq, warm, timed): (usize, usize, usize, usize, usize) = (
        a[2].parse()?,
        a[3].parse()?,
        a[4].parse()?,
        a[5].parse()?,
        a[6].parse()?,
    );
    B::seed(&device, 1);
    let config = preset_config(preset, false, vocab)?;
    let mut source = WeightSource::empty(config.arch.prefix());
    let (mut model, _) = QaModel::<B>::build(&config, &mut source, &device)?;
    let mut opt = AdamW::new(
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        },
        no_decay_ids(&model),
    );
    let mut rng = qa_data::rng::SplitMix64::new(7);
    let ids: Vec<i64> = (0..batch * seq)
        .map(|_| 1 + rng.below(vocab - 1) as i64)
        .collect();
    let types: Vec<i64> = (0..batch * seq)
        .map(|i| i64::from(i % seq >= seq / 4))
        .collect();
    let starts: Vec<i64> = (0..batch).map(|_| rng.below(seq) as i64).collect();
    let ends: Vec<i64> = starts
        .iter()
        .map(|&s| (s + 3).min(seq as i64 - 1))
        .collect();
    let input = QaBatch::<B> {
        input_ids: int_tensor(ids, batch, seq, &device),
        token_type_ids: int_tensor(types, batch, seq, &device),
        attention_mask: int_tensor(vec![1; batch * seq], batch, seq, &device),
    };
    let s = Tensor::<B, 1, Int>::from_data(TensorData::new(starts, [batch]), &device);
    let e = Tensor::<B, 1, Int>::from_data(TensorData::new(ends, [batch]), &device);
    let mut secs = 0.0;
    for i in 0..warm + timed {
        let t = Instant::now();
        let out = model.forward(input.clone());
        let loss = qa_loss(out.start_logits, out.end_logits, s.clone(), e.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let (m, _) = step::<B, QaModel<B>>(&mut opt, model, grads, 1e-4, 1.0);
        model = m;
        // Wait for the work: read one parameter back.
        let _ = model.qa_outputs.weight.val().into_data();
        if i >= warm {
            secs += t.elapsed().as_secs_f64();
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "backend": backend_name, "preset": a[1], "batch": batch, "seq": seq, "vocab": vocab,
            "steps": timed, "ms_per_step": 1000.0 * secs / timed as f64,
            "examples_per_second": (batch * timed) as f64 / secs,
        })
    );
    Ok(())
}
