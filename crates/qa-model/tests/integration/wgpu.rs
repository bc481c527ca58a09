//! burn's GPU code path without a GPU: the wgpu backend (fusion, CubeCL kernels, autodiff;
//! WGSL instead of CUDA's codegen) on the first wgpu adapter, lavapipe in CI. The CPU
//! backend takes our fused flex kernels; a GPU takes burn's generic ops, so this is the
//! code a CUDA trial runs, compared with HF's logits and with flex.
//!
//! Built only with `--features wgpu` (`make test-wgpu`); without an adapter every test
//! fails and says what to install.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::backend::Autodiff;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, ElementConversion, Int, Tensor, TensorData};
use qa_model::backend::{wgpu_adapters, CpuBackend, WgpuBackend, WgpuUnfused};
use qa_model::checkpoint::{load_model_dir, save_model_dir};
use qa_model::model::qa_loss;
use qa_model::train::{train, train_until, TrainStatus};
use serde_json::{json, Map, Value};
use spec::TrialConfig;

use crate::parity::{batch, expected, fixture, max_diff_on};

/// lavapipe spreads one kernel over every core: tests take turns, as trials on one GPU do.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `wgpu:0`, or a failure that says what is missing.
fn device() -> burn::backend::wgpu::WgpuDevice {
    // wgpu warns on every start when the variable is unset (it is, under CI's sudo-less shells).
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let adapter = wgpu_adapters::adapter(0).unwrap_or_else(|e| {
        panic!("these tests need a wgpu adapter (Debian: apt install mesa-vulkan-drivers): {e}")
    });
    eprintln!(
        "wgpu:0 = {} ({}, {})",
        adapter.name, adapter.kind, adapter.driver
    );
    adapter.device.unwrap()
}

const FIXTURES: [&str; 4] = [
    "bert-tiny",
    "albert-tiny",
    "bert-tiny-legacy",
    "bert-aligned",
];

/// HF's logits on wgpu, fused and unfused: the same 1e-4 as on CPU.
#[test]
fn wgpu_logits_match_hf_with_and_without_fusion() {
    let _turn = serial();
    let device = device();
    for name in FIXTURES {
        let dir = fixture(name);
        let e = expected(&dir);
        let (fused, _, _) = load_model_dir::<WgpuBackend>(&dir, &Map::new(), &device).unwrap();
        let (unfused, _, _) = load_model_dir::<WgpuUnfused>(&dir, &Map::new(), &device).unwrap();
        let d_fused = max_diff_on(&fused, &e, &device);
        let d_unfused = max_diff_on(&unfused, &e, &device);
        eprintln!("{name}: max |logit diff| vs HF: fused {d_fused:e}, unfused {d_unfused:e}");
        assert!(d_fused < 1e-4, "{name} fused: {d_fused}");
        assert!(d_unfused < 1e-4, "{name} unfused: {d_unfused}");
    }
}

/// Every parameter's gradient, in the module's visiting order.
struct CollectGrads<'a> {
    grads: &'a GradientsParams,
    out: Vec<Vec<f32>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for CollectGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let g = self
            .grads
            .get::<B::InnerBackend, D>(param.id)
            .map(|g| g.into_data().convert::<f32>().to_vec::<f32>().unwrap())
            .unwrap_or_default();
        self.out.push(g);
    }
}

fn no_dropout() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("hidden_dropout_prob".into(), json!(0.0));
    m.insert("attention_probs_dropout_prob".into(), json!(0.0));
    m
}

/// One loss and backward pass of a fixture on `B`: the loss and every gradient.
fn one_step<B: AutodiffBackend>(dir: &Path, device: &B::Device) -> (f32, Vec<Vec<f32>>) {
    let (model, _, _) = load_model_dir::<B>(dir, &no_dropout(), device).unwrap();
    let e = expected(dir);
    let (rows, cols) = (e.input_ids.len(), e.input_ids[0].len());
    let starts: Vec<i64> = (0..rows).map(|r| ((3 * r + 1) % cols) as i64).collect();
    let ends: Vec<i64> = starts
        .iter()
        .map(|s| (s + 2).min(cols as i64 - 1))
        .collect();
    let out = model.forward(batch(&e, device));
    let loss = qa_loss(
        out.start_logits,
        out.end_logits,
        Tensor::<B, 1, Int>::from_data(TensorData::new(starts, [rows]), device),
        Tensor::<B, 1, Int>::from_data(TensorData::new(ends, [rows]), device),
    );
    let value: f32 = loss.clone().into_scalar().elem();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut collect = CollectGrads {
        grads: &grads,
        out: Vec::new(),
    };
    model.visit(&mut collect);
    (value, collect.out)
}

/// The gradients of one training step on wgpu against flex's (whose fused kernels have their
/// own backward). Both sum in f32 in different orders (tiled GPU matmuls and reductions
/// against gemm's blocks): each gradient may differ by a few f32 roundings of its largest
/// entry, so the bound is 1e-4 of that, plus 1e-7 for gradients that are zero in exact
/// arithmetic (the attention key's bias: softmax ignores a constant per row) and come out
/// as rounding noise (~1e-9) on both sides. Measured: docs/gpu.md.
#[test]
fn wgpu_gradients_match_flex() {
    let _turn = serial();
    let device = device();
    for name in ["bert-tiny", "albert-tiny"] {
        let dir = fixture(name);
        let (loss_cpu, cpu) = one_step::<Autodiff<CpuBackend>>(&dir, &Default::default());
        for (label, (loss, gpu)) in [
            ("fused", one_step::<Autodiff<WgpuBackend>>(&dir, &device)),
            ("unfused", one_step::<Autodiff<WgpuUnfused>>(&dir, &device)),
        ] {
            assert_eq!(cpu.len(), gpu.len(), "{name}: parameter count");
            assert!(
                (loss - loss_cpu).abs() < 1e-5,
                "{name} {label}: loss {loss} vs {loss_cpu}"
            );
            let mut worst = 0.0f32;
            for (i, (g_cpu, g_gpu)) in cpu.iter().zip(&gpu).enumerate() {
                assert_eq!(g_cpu.len(), g_gpu.len(), "{name} {label}: parameter {i}");
                let scale = g_cpu.iter().fold(1e-6f32, |m, x| m.max(x.abs()));
                let diff = max_abs_diff_f32(g_cpu, g_gpu);
                assert!(
                    diff.is_finite() && diff <= 1e-4 * scale + 1e-7,
                    "{name} {label}: parameter {i}: max |grad diff| {diff:e}, largest |grad| {scale:e}"
                );
                if scale > 1e-4 {
                    worst = worst.max(diff / scale);
                }
            }
            eprintln!(
                "{name} {label}: loss {loss} vs flex {loss_cpu}; {} gradients, worst difference \
                 relative to the gradient's largest entry {worst:e} (gradients above 1e-4)",
                gpu.len()
            );
        }
    }
}

/// A synthetic train/eval set, its vocab, and a tiny BERT's initial weights saved as a HF
/// directory, so every backend starts from the same weights (each would draw its own).
fn tiny_start(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (train_path, eval_path, vocab) = crate::training::synthetic(dir, 240, 40);
    let preset = TrialConfig::from_yaml_str(
        &format!(
            "model: {{preset: tiny, vocab: {}}}\ndata: {{train: {}, eval: {}}}\n",
            vocab.display(),
            train_path.display(),
            eval_path.display()
        ),
        "preset.yaml",
    )
    .unwrap();
    let init = dir.join("init");
    let prepared = qa_model::train::prepare::<CpuBackend>(&preset, &Default::default()).unwrap();
    save_model_dir(&prepared.model, &prepared.config, None, &init).unwrap();
    std::fs::copy(&vocab, init.join("vocab.txt")).unwrap();
    std::fs::write(
        init.join("tokenizer_config.json"),
        r#"{"do_lower_case": true}"#,
    )
    .unwrap();
    (train_path, eval_path, init)
}

fn lockstep_trial(train: &Path, eval: &Path, init: &Path, extra: &str) -> TrialConfig {
    TrialConfig::from_yaml_str(
        &format!(
            "model: {{init: {}}}\nmodel_config: {{hidden_dropout_prob: 0.0, \
             attention_probs_dropout_prob: 0.0}}\ndata: {{train: {}, eval: {}}}\n\
             train: {{seed: 5, batch_size: 8, eval_batch_size: 32, max_seq_length: 64, \
             doc_stride: 16, learning_rate: 1.0e-3, warmup_steps: 5, logging_steps: 1, \
             eval_steps: 1000{extra}}}\n",
            init.display(),
            train.display(),
            eval.display()
        ),
        "lockstep.yaml",
    )
    .unwrap()
}

/// The loss of every step, from the run's metrics.jsonl.
fn step_losses(out: &Path) -> Vec<f64> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["step"].as_u64().is_some_and(|s| s > 0))
        .filter_map(|v| v["loss"].as_f64())
        .collect()
}

/// The weights of a run's checkpoint, every tensor in name order, as f32.
fn checkpoint_weights(out: &Path) -> Vec<f32> {
    let bytes = std::fs::read(out.join("checkpoint/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    names
        .iter()
        .flat_map(|n| {
            st.tensor(n)
                .unwrap()
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

fn max_abs_diff_f32(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// 50 steps from the same weights, dropout off: the loss on wgpu follows flex's step by step
/// (fused and unfused), and a second fused run in the same process (every autotune and
/// fusion cache now hit, burn #5352/#5079) repeats the first.
#[test]
fn wgpu_training_follows_flex_step_by_step() {
    let _turn = serial();
    let device = device();
    let dir = std::env::temp_dir().join(format!("qa-wgpu-lockstep-{}", std::process::id()));
    let (train_path, eval_path, init) = tiny_start(&dir);
    let cfg = lockstep_trial(&train_path, &eval_path, &init, ", max_steps: 50");
    let flex = train::<Autodiff<CpuBackend>>(&cfg, &dir.join("flex"), &Default::default()).unwrap();
    let fused = train::<Autodiff<WgpuBackend>>(&cfg, &dir.join("fused"), &device).unwrap();
    let again = train::<Autodiff<WgpuBackend>>(&cfg, &dir.join("again"), &device).unwrap();
    let unfused = train::<Autodiff<WgpuUnfused>>(&cfg, &dir.join("unfused"), &device).unwrap();
    let reference = step_losses(&dir.join("flex"));
    assert_eq!(reference.len(), 50, "one loss per step");
    for (label, result, out) in [
        ("fused", &fused, "fused"),
        ("fused again", &again, "again"),
        ("unfused", &unfused, "unfused"),
    ] {
        let losses = step_losses(&dir.join(out));
        assert_eq!(losses.len(), 50, "{label}: one loss per step");
        assert!(losses.iter().all(|l| l.is_finite()), "{label}: {losses:?}");
        let first10 = max_abs_diff(&losses[..10], &reference[..10]);
        let all = max_abs_diff(&losses, &reference);
        eprintln!(
            "{label}: loss at step 1 {:.6} (flex {:.6}); max |loss diff| steps 1-10 {first10:e}, \
             1-50 {all:e}; F1 {:.2} (flex {:.2})",
            losses[0], reference[0], result.f1, flex.f1
        );
        assert!(first10 < 1e-4, "{label}: steps 1-10 differ by {first10}");
        assert!(all < 2e-3, "{label}: steps 1-50 differ by {all}");
        let weights = checkpoint_weights(&dir.join(out));
        assert!(
            weights.iter().all(|w| w.is_finite()),
            "{label}: weights not finite"
        );
    }
    assert_eq!(
        step_losses(&dir.join("fused")),
        step_losses(&dir.join("again")),
        "a second identical run on wgpu gives other losses"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A wgpu run stopped after its first step and resumed ends with the weights of the
/// uninterrupted run (dropout off: off flex, dropout masks come from burn's RNG).
#[test]
fn wgpu_resumed_run_ends_with_the_uninterrupted_weights() {
    let _turn = serial();
    let device = device();
    let dir = std::env::temp_dir().join(format!("qa-wgpu-resume-{}", std::process::id()));
    let (train_path, eval_path, init) = tiny_start(&dir);
    let cfg = lockstep_trial(
        &train_path,
        &eval_path,
        &init,
        ", max_steps: 12, save_steps: 4",
    );
    type B = Autodiff<WgpuBackend>;
    let whole = train::<B>(&cfg, &dir.join("whole"), &device).unwrap();
    let out = dir.join("resumed");
    let stop = std::sync::atomic::AtomicBool::new(true);
    let first = train_until::<B>(&cfg, &out, &device, &stop).unwrap();
    assert_eq!((first.status, first.steps), (TrainStatus::Interrupted, 1));
    let rest = train::<B>(&cfg, &out, &device).unwrap();
    assert_eq!(
        (rest.status, rest.steps),
        (TrainStatus::Succeeded, whole.steps)
    );
    let a = checkpoint_weights(&dir.join("whole"));
    let b = checkpoint_weights(&out);
    let diff = max_abs_diff_f32(&a, &b);
    eprintln!("resumed vs uninterrupted on wgpu: max |weight diff| {diff:e}");
    assert_eq!(a.len(), b.len());
    assert!(
        diff == 0.0,
        "the resumed run ends with other weights ({diff:e})"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// burn #5122 (fusion gives wrong rows for narrow `[N, 1]` heads on CUDA): our QA head is
/// `[b, s, 2]` split into two `[b, s]` logit rows, then a log-softmax over the sequence. Both
/// layouts, fused, against flex.
#[test]
fn burn_5122_narrow_heads_are_right_under_fusion() {
    let _turn = serial();
    let device = device();
    let cpu = Default::default();
    for outputs in [1usize, 2] {
        let x = Tensor::<CpuBackend, 3>::random([4, 37, 16], Distribution::Normal(0.0, 1.0), &cpu);
        let w =
            Tensor::<CpuBackend, 2>::random([16, outputs], Distribution::Normal(0.0, 0.2), &cpu);
        let b = Tensor::<CpuBackend, 1>::random([outputs], Distribution::Normal(0.0, 0.2), &cpu);
        let head =
            |x: Tensor<WgpuBackend, 3>, w: Tensor<WgpuBackend, 2>, b: Tensor<WgpuBackend, 1>| {
                let y = x.matmul(w.unsqueeze()) + b.unsqueeze();
                (0..outputs)
                    .map(|k| log_softmax(y.clone().narrow(2, k, 1).squeeze_dim::<2>(2), 1))
                    .collect::<Vec<_>>()
            };
        let want = {
            let y = x.clone().matmul(w.clone().unsqueeze()) + b.clone().unsqueeze();
            (0..outputs)
                .map(|k| log_softmax(y.clone().narrow(2, k, 1).squeeze_dim::<2>(2), 1))
                .collect::<Vec<_>>()
        };
        let to_gpu3 =
            |t: &Tensor<CpuBackend, 3>| Tensor::<WgpuBackend, 3>::from_data(t.to_data(), &device);
        let got = head(
            to_gpu3(&x),
            Tensor::from_data(w.to_data(), &device),
            Tensor::from_data(b.to_data(), &device),
        );
        for (k, (g, w)) in got.into_iter().zip(want).enumerate() {
            let g: Vec<f32> = g.into_data().to_vec().unwrap();
            let w: Vec<f32> = w.into_data().to_vec().unwrap();
            let d = max_abs_diff_f32(&g, &w);
            eprintln!("[N, {outputs}] head, output {k}: max |diff| vs flex {d:e}");
            assert!(d < 1e-5, "[N, {outputs}] head, output {k}: {d}");
        }
    }
}

/// burn #5257 (fusion + autotune give wrong results for a second, differently shaped call on
/// wgpu): the same batch before and after a shorter one gives the same logits, and both HF's.
#[test]
fn burn_5257_repeated_and_reshaped_forwards_agree() {
    let _turn = serial();
    let device = device();
    let dir = fixture("bert-tiny");
    let e = expected(&dir);
    let (model, _, _) = load_model_dir::<WgpuBackend>(&dir, &Map::new(), &device).unwrap();
    let logits = |b: qa_model::model::QaBatch<WgpuBackend>| -> Vec<f32> {
        let out = model.forward(b);
        let mut v: Vec<f32> = out.start_logits.into_data().to_vec().unwrap();
        v.extend(out.end_logits.into_data().to_vec::<f32>().unwrap());
        v
    };
    let first = logits(batch(&e, &device));
    let full = batch(&e, &device);
    let cols = e.input_ids[0].len();
    let shorter = qa_model::model::QaBatch {
        input_ids: full.input_ids.narrow(1, 0, cols - 3),
        token_type_ids: full.token_type_ids.narrow(1, 0, cols - 3),
        attention_mask: full.attention_mask.narrow(1, 0, cols - 3),
        dropout_key: 0,
    };
    let _ = logits(shorter);
    let second = logits(batch(&e, &device));
    let d = max_abs_diff_f32(&first, &second);
    eprintln!("same batch before and after a shorter one: max |diff| {d:e}");
    assert!(d <= 1e-6, "the second call differs by {d}");
    assert!(max_diff_on(&model, &e, &device) < 1e-4);
}

/// burn #4949 (f16 + autotune gave NaN): f16 mixed precision gives finite logits within
/// f16's tolerance of HF's (2e-3, as on CPU). Needs an adapter with shader-f16 (lavapipe has
/// it); `sweep` refuses f16 on adapters without.
#[test]
fn burn_4949_f16_autocast_is_finite_where_the_adapter_has_f16() {
    let _turn = serial();
    let device = device();
    let adapter = wgpu_adapters::adapter(0).unwrap();
    if !adapter.shader_f16 {
        eprintln!(
            "{} has no shader-f16: the CLI refuses f16 on it",
            adapter.name
        );
        return;
    }
    for name in ["bert-tiny", "albert-tiny"] {
        let dir = fixture(name);
        let (mut model, _, _) = load_model_dir::<WgpuBackend>(&dir, &Map::new(), &device).unwrap();
        model.autocast = Some(qa_model::amp::dtype(spec::Half::F16));
        let d = max_diff_on(&model, &expected(&dir), &device);
        eprintln!("{name} f16 autocast on wgpu: max |logit diff| vs HF {d:e}");
        assert!(d.is_finite() && d < 2e-3, "{name}: {d}");
    }
}
