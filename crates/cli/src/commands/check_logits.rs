//! `sweep check-logits`: run a checkpoint on recorded inputs and compare its logits with
//! recorded ones (HF's, from tools/make_model_fixtures.py). Used to validate a device
//! (e.g. `--device cuda:0`) against the CPU/HF reference where no Rust toolchain exists.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use qa_model::checkpoint::load_model_dir;
use qa_model::model::{int_tensor, QaBatch};
use serde::Deserialize;

use crate::commands::device;
use crate::with_f32_backend;

#[derive(Debug, Args)]
pub struct CheckLogitsArgs {
    /// HF model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// JSON with input_ids, token_type_ids, attention_mask, start_logits, end_logits.
    #[arg(long)]
    pub reference: PathBuf,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Fail when the largest absolute difference exceeds this.
    #[arg(long, default_value_t = 1e-4)]
    pub tolerance: f64,
    /// f32, f16/bf16 (mixed precision: the matmuls in half), or pure-bf16 (CUDA).
    #[arg(long, default_value = "f32", value_parser = crate::commands::bench_train::parse_precision)]
    pub precision: spec::Precision,
}

#[derive(Deserialize)]
struct Reference {
    input_ids: Vec<Vec<i64>>,
    token_type_ids: Vec<Vec<i64>>,
    attention_mask: Vec<Vec<i64>>,
    start_logits: Vec<Vec<f32>>,
    end_logits: Vec<Vec<f32>>,
}

pub fn run(args: &CheckLogitsArgs) -> anyhow::Result<()> {
    let dev = device::parse(&args.device)?;
    let text = std::fs::read(&args.reference)
        .with_context(|| format!("reading {}", args.reference.display()))?;
    let r: Reference = serde_json::from_slice(&text)
        .with_context(|| format!("parsing {}", args.reference.display()))?;
    let rows = r.input_ids.len();
    let cols = r.input_ids.first().map_or(0, Vec::len);
    let flat = |v: &Vec<Vec<i64>>| v.iter().flatten().copied().collect::<Vec<i64>>();
    let (start, end) = with_f32_backend!(dev, args.precision, |B, d| {
        let (mut model, _, _) = load_model_dir::<B>(&args.model, &Default::default(), &d)?;
        model.autocast = args.precision.autocast().map(qa_model::amp::dtype);
        let out = model.forward(QaBatch {
            input_ids: int_tensor::<B>(flat(&r.input_ids), rows, cols, &d),
            token_type_ids: int_tensor::<B>(flat(&r.token_type_ids), rows, cols, &d),
            attention_mask: int_tensor::<B>(flat(&r.attention_mask), rows, cols, &d),
            dropout_key: 0,
        });
        let read = |t: burn::tensor::Tensor<B, 2>| {
            t.into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("cannot read logits: {e:?}"))
        };
        anyhow::Ok((read(out.start_logits)?, read(out.end_logits)?))
    })?;
    let expected: Vec<f32> = r
        .start_logits
        .iter()
        .chain(&r.end_logits)
        .flatten()
        .copied()
        .collect();
    let got: Vec<f32> = start.into_iter().chain(end).collect();
    let max = expected
        .iter()
        .zip(&got)
        .map(|(a, b)| f64::from((a - b).abs()))
        .fold(0.0f64, f64::max);
    let ok = expected.len() == got.len() && max <= args.tolerance;
    println!(
        "{}",
        serde_json::json!({"model": args.model, "device": dev.to_string(),
            "precision": args.precision.as_str(), "backend": qa_model::backend::backend_name(dev),
            "max_abs_diff": max, "tolerance": args.tolerance, "ok": ok})
    );
    if !ok {
        anyhow::bail!("logits differ by {max:e} (tolerance {:e})", args.tolerance);
    }
    Ok(())
}
