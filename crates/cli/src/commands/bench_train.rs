//! `sweep bench-train`: training-step throughput of a preset on a device (see
//! `qa_model::bench`). Prints one JSON object; `make bench` and scripts/gpu-check.sh use it.

use clap::Args;
use qa_model::bench::{train_step_throughput, StepBench};
use spec::{Precision, Preset};

use crate::commands::device;
use crate::with_backend;

#[derive(Debug, Args)]
pub struct BenchTrainArgs {
    #[arg(long, value_parser = parse_preset, default_value = "tiny")]
    pub preset: Preset,
    #[arg(long, default_value_t = 21128)]
    pub vocab_size: usize,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    #[arg(long, default_value_t = 128)]
    pub seq: usize,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// f32; f16 or bf16 (mixed precision, as HF's --fp16/--bf16); pure-bf16
    /// (everything in bf16, CUDA only).
    #[arg(long, value_parser = parse_precision, default_value = "f32")]
    pub precision: Precision,
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| format!("{s:?}: expected tiny, mini, small, base or albert-tiny"))
}

pub(crate) fn parse_precision(s: &str) -> Result<Precision, String> {
    Precision::parse(s)
        .ok_or_else(|| format!("{s:?}: expected f32, f16, bf16 (mixed precision), or pure-bf16"))
}

pub fn run(args: &BenchTrainArgs) -> anyhow::Result<()> {
    let dev = device::parse(&args.device)?;
    let b = StepBench {
        preset: args.preset,
        vocab_size: args.vocab_size,
        batch: args.batch,
        seq: args.seq,
        warmup_steps: args.warmup,
        timed_steps: args.steps,
        precision: args.precision,
    };
    let r = with_backend!(dev, args.precision, |B, d| train_step_throughput::<
        burn::backend::Autodiff<B>,
    >(b, &d))?;
    let backend = qa_model::backend::backend_name(dev);
    let mut v = serde_json::to_value(&r)?;
    if let serde_json::Value::Object(m) = &mut v {
        m.insert("backend".into(), backend.into());
        m.insert("device".into(), dev.to_string().into());
        m.insert("preset".into(), serde_json::to_value(args.preset)?);
        m.insert("precision".into(), args.precision.as_str().into());
        m.insert("batch".into(), args.batch.into());
        m.insert("seq".into(), args.seq.into());
        m.insert("vocab".into(), args.vocab_size.into());
    }
    println!("{v}");
    Ok(())
}
