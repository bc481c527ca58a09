//! AdamW, the linear warmup/decay schedule and global gradient-norm clipping with the
//! semantics of `torch.optim.AdamW` + HF Trainer, which burn 0.21's defaults do not have
//! (its AdamW uses ε = 1e-5 and weight decay 1e-4, has no parameter groups, and its clipping
//! is per tensor). Biases and LayerNorm weights get no weight decay, like HF.

use std::collections::{HashMap, HashSet};

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};

use crate::config::ModelConfig;
use crate::error::Result;
use crate::model::QaModel;
use crate::nn::{LayerNorm, ParamWalker};

/// HF `get_linear_schedule_with_warmup`: the multiplier of the base learning rate at
/// optimizer step `step` (0-based; HF's first update uses `lambda(0)`, i.e. 0 with warmup).
pub fn linear_schedule(step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return step as f64 / warmup.max(1) as f64;
    }
    ((total.saturating_sub(step)) as f64 / total.saturating_sub(warmup).max(1) as f64).max(0.0)
}

/// Optimizer hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
}

/// AdamW state: step count and first/second moments per parameter (flattened).
#[derive(Debug)]
pub struct AdamW<B: Backend> {
    pub config: AdamWConfig,
    pub step: usize,
    moments: HashMap<ParamId, (Tensor<B, 1>, Tensor<B, 1>)>,
    no_decay: HashSet<ParamId>,
}

impl<B: Backend> AdamW<B> {
    pub fn new(config: AdamWConfig, no_decay: HashSet<ParamId>) -> Self {
        Self {
            config,
            step: 0,
            moments: HashMap::new(),
            no_decay,
        }
    }
}

impl<B: Backend> AdamW<B> {
    /// Moments as host tensors named `exp_avg.NAME` / `exp_avg_sq.NAME` (burn layout,
    /// flattened); `names` maps parameter ids to HF names.
    pub fn export_moments(
        &self,
        names: &HashMap<ParamId, String>,
    ) -> crate::error::Result<std::collections::BTreeMap<String, crate::weights::HostTensor>> {
        let mut out = std::collections::BTreeMap::new();
        for (id, (m, v)) in &self.moments {
            let Some(name) = names.get(id) else { continue };
            out.insert(format!("exp_avg.{name}"), crate::nn::to_host(m.clone())?);
            out.insert(format!("exp_avg_sq.{name}"), crate::nn::to_host(v.clone())?);
        }
        Ok(out)
    }

    /// Restores moments saved by [`Self::export_moments`]; `ids` maps HF names to the
    /// current model's parameter ids.
    pub fn import_moments(
        &mut self,
        tensors: &HashMap<String, crate::weights::HostTensor>,
        ids: &HashMap<String, ParamId>,
        device: &B::Device,
    ) {
        for (name, id) in ids {
            let (Some(m), Some(v)) = (
                tensors.get(&format!("exp_avg.{name}")),
                tensors.get(&format!("exp_avg_sq.{name}")),
            ) else {
                continue;
            };
            let t = |h: &crate::weights::HostTensor| {
                Tensor::<B, 1>::from_data(
                    burn::tensor::TensorData::new(h.data.clone(), [h.data.len()]),
                    device,
                )
            };
            self.moments.insert(*id, (t(m), t(v)));
        }
    }
}

struct SumSquares<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    total: Option<Tensor<B::InnerBackend, 1>>,
    /// The sum of the gradients the fused kernel took (flex).
    fused_total: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SumSquares<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            if let Some(s) = crate::fused::sum_squares(&g) {
                self.fused_total += s;
                return;
            }
            let s = g.powi_scalar(2).sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

/// The L2 norm of all gradients together (`torch.nn.utils.clip_grad_norm_`'s total norm).
pub fn global_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &GradientsParams,
) -> f64 {
    let mut v = SumSquares::<B> {
        grads,
        total: None,
        fused_total: 0.0,
    };
    model.visit(&mut v);
    let tensor_total = v.total.map_or(0.0, |t| t.into_scalar().elem::<f64>());
    (tensor_total + v.fused_total).sqrt()
}

struct Stepper<'a, B: AutodiffBackend> {
    opt: &'a mut AdamW<B::InnerBackend>,
    grads: &'a mut GradientsParams,
    lr: f64,
    grad_scale: f64,
}

impl<B: AutodiffBackend> ModuleMapper<B> for Stepper<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<B::InnerBackend, D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let c = self.opt.config;
        let t = self.opt.step as i32;
        let shape = grad.dims();
        let n: usize = shape.iter().product();
        let decay = if self.opt.no_decay.contains(&id) {
            0.0
        } else {
            c.weight_decay
        };
        let fused = crate::fused::adamw(
            tensor.inner().reshape([n]),
            grad.reshape([n]),
            self.opt.moments.remove(&id),
            &crate::fused::AdamWStep {
                lr: self.lr,
                beta1: c.beta1,
                beta2: c.beta2,
                epsilon: c.epsilon,
                weight_decay: decay,
                step: t,
                grad_scale: self.grad_scale,
            },
        );
        let (p, grad, moments) = match fused {
            Ok([p, m, v]) => {
                self.opt.moments.insert(id, (m, v));
                let updated = Tensor::from_inner(p.reshape(shape)).require_grad();
                return Param::from_mapped_value(id, updated, mapper);
            }
            Err(inputs) => inputs,
        };
        // The same arithmetic in tensor ops (backends without the fused kernel).
        let g = grad * self.grad_scale;
        let mut p = p;
        if decay > 0.0 {
            p = p * (1.0 - self.lr * decay);
        }
        let (m, v) = moments.unwrap_or_else(|| (g.zeros_like(), g.zeros_like()));
        let m = m * c.beta1 + g.clone() * (1.0 - c.beta1);
        let v = v * c.beta2 + g.powi_scalar(2) * (1.0 - c.beta2);
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2 = 1.0 - c.beta2.powi(t);
        let denom = v.clone().sqrt() / bias2.sqrt() + c.epsilon;
        let p = p - m.clone() / denom * (self.lr / bias1);
        self.opt.moments.insert(id, (m, v));
        let updated = Tensor::from_inner(p.reshape(shape)).require_grad();
        Param::from_mapped_value(id, updated, mapper)
    }
}

/// What [`step`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// The global norm of the (unscaled) gradients before clipping; inf/NaN on overflow.
    pub grad_norm: f64,
    /// False when the gradients held inf/NaN under loss scaling: the update was skipped
    /// (`GradScaler.step`), the parameters and AdamW's step count are unchanged.
    pub applied: bool,
}

/// One optimizer update with learning rate `lr`, after global clipping to `max_grad_norm`
/// (0 disables clipping). `loss_scale` is the factor the loss was multiplied by (1 without
/// loss scaling): the gradients are unscaled before clipping, and with a scale other than 1
/// an update whose gradients hold inf/NaN is skipped, as `torch.amp.GradScaler` does.
pub fn step<B: AutodiffBackend, M: AutodiffModule<B>>(
    opt: &mut AdamW<B::InnerBackend>,
    model: M,
    mut grads: GradientsParams,
    lr: f64,
    max_grad_norm: f64,
    loss_scale: f64,
) -> (M, StepReport) {
    let norm = global_grad_norm::<B, M>(&model, &grads) / loss_scale;
    if loss_scale != 1.0 && !norm.is_finite() {
        return (
            model,
            StepReport {
                grad_norm: norm,
                applied: false,
            },
        );
    }
    // torch: clip_coef = max_norm / (total_norm + 1e-6), clamped to at most 1.
    let clip = if max_grad_norm > 0.0 {
        (max_grad_norm / (norm + 1e-6)).min(1.0)
    } else {
        1.0
    };
    opt.step += 1;
    let mut s = Stepper::<B> {
        opt,
        grads: &mut grads,
        lr,
        grad_scale: clip / loss_scale,
    };
    (
        model.map(&mut s),
        StepReport {
            grad_norm: norm,
            applied: true,
        },
    )
}

/// The parameters HF Trainer exempts from weight decay (`Trainer.get_decay_parameter_names`):
/// every bias and every LayerNorm parameter, found by walking the model's parameters (the
/// walk that names them for checkpoints and optimizer state).
pub fn no_decay_ids<B: Backend>(
    model: &QaModel<B>,
    config: &ModelConfig,
) -> Result<HashSet<ParamId>> {
    struct NoDecay(HashSet<ParamId>);
    impl<B: Backend> ParamWalker<B> for NoDecay {
        fn linear(&mut self, _: String, l: &burn::nn::Linear<B>) -> Result<()> {
            if let Some(b) = &l.bias {
                self.0.insert(b.id);
            }
            Ok(())
        }
        fn layer_norm(&mut self, _: String, n: &LayerNorm<B>) -> Result<()> {
            self.0.insert(n.weight.id);
            self.0.insert(n.bias.id);
            Ok(())
        }
        fn embedding(&mut self, _: String, _: &burn::nn::Embedding<B>) -> Result<()> {
            Ok(())
        }
    }
    let mut walker = NoDecay(HashSet::new());
    model.walk(config, &mut walker)?;
    Ok(walker.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_matches_hf() {
        // No warmup: full rate at step 0, linear to 0 at the end.
        assert_eq!(linear_schedule(0, 0, 10), 1.0);
        assert_eq!(linear_schedule(5, 0, 10), 0.5);
        assert_eq!(linear_schedule(10, 0, 10), 0.0);
        // Warmup: HF's first update has rate 0.
        assert_eq!(linear_schedule(0, 4, 10), 0.0);
        assert_eq!(linear_schedule(2, 4, 10), 0.5);
        assert_eq!(linear_schedule(4, 4, 10), 1.0);
        assert_eq!(linear_schedule(7, 4, 10), 0.5);
    }

    /// HF Trainer's rule by name: no decay for every `*.bias` and every LayerNorm parameter
    /// (BERT's `LayerNorm`, ALBERT's `LayerNorm` and `full_layer_layer_norm`); every other
    /// parameter decays.
    #[test]
    fn no_decay_is_every_bias_and_layer_norm_parameter() {
        use crate::backend::CpuBackend;
        use crate::nn::ParamNames;
        use crate::weights::WeightSource;
        use spec::Preset;
        for (preset, albert) in [(Preset::Tiny, false), (Preset::AlbertTiny, true)] {
            let config = crate::presets::preset_config(preset, albert, 64).unwrap();
            let mut source = WeightSource::empty(config.arch.prefix());
            let (model, _) =
                QaModel::<CpuBackend>::build(&config, &mut source, &Default::default()).unwrap();
            let exempt = no_decay_ids(&model, &config).unwrap();
            let mut names = ParamNames::default();
            model.walk(&config, &mut names).unwrap();
            let mut decayed = 0;
            for (id, name) in &names.names {
                let by_name = name.ends_with(".bias")
                    || name.contains("layer_norm.")
                    || name.contains("LayerNorm.");
                assert_eq!(exempt.contains(id), by_name, "{preset:?}: {name}");
                decayed += usize::from(!by_name);
            }
            assert!(decayed > 0 && !exempt.is_empty(), "{preset:?}");
            assert_eq!(exempt.len() + decayed, names.names.len(), "{preset:?}");
        }
    }
}

#[cfg(test)]
mod torch_parity {
    use std::collections::HashSet;

    use burn::backend::Autodiff;
    use burn::module::Param;
    use burn::nn::Linear;
    use burn::optim::GradientsParams;
    use burn::tensor::{Tensor, TensorData};

    use super::*;
    use crate::backend::CpuBackend;

    type B = Autodiff<CpuBackend>;
    type I = CpuBackend;

    /// Values printed by torch 2.15: AdamW(lr per step 0.1/0.05/0.02, weight_decay 0.01 for
    /// the weight, 0 for the bias) after clip_grad_norm_(max_norm=1) on three steps.
    #[test]
    fn three_steps_match_torch_adamw_with_global_clipping() {
        let device = Default::default();
        let w0 = Tensor::<B, 2>::from_data(
            TensorData::new(vec![0.1f32, -0.2, 0.3, 0.4, 0.5, -0.6], [2, 3]),
            &device,
        );
        let b0 = Tensor::<B, 1>::from_data(TensorData::new(vec![0.01f32, -0.02], [2]), &device);
        // burn Linear stores [in, out]; keep torch's [out, in] = [2, 3] as a 2-D param.
        let mut linear = Linear {
            weight: Param::from_tensor(w0.require_grad()),
            bias: Some(Param::from_tensor(b0.require_grad())),
        };
        let bias_id = linear.bias.as_ref().unwrap().id;
        let mut opt = AdamW::<I>::new(
            AdamWConfig {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
                weight_decay: 0.01,
            },
            HashSet::from([bias_id]),
        );
        let expected_norms = [2.844292640686035, 5.68858528137207, 8.532877922058105];
        for (t, lr) in [0.1, 0.05, 0.02].into_iter().enumerate() {
            let k = (t + 1) as f32;
            let gw = vec![1.0, -2.0, 0.5, 0.3, 0.0, -1.5]
                .into_iter()
                .map(|x: f32| x * k)
                .collect::<Vec<_>>();
            let gb = vec![0.7f32 * k, -0.1 * k];
            let mut grads = GradientsParams::new();
            grads.register::<I, 2>(
                linear.weight.id,
                Tensor::from_data(TensorData::new(gw, [2, 3]), &device),
            );
            grads.register::<I, 1>(
                bias_id,
                Tensor::from_data(TensorData::new(gb, [2]), &device),
            );
            let (m, r) = step::<B, Linear<B>>(&mut opt, linear, grads, lr, 1.0, 1.0);
            linear = m;
            assert!(r.applied);
            assert!(
                (r.grad_norm - expected_norms[t]).abs() < 1e-5,
                "norm {}",
                r.grad_norm
            );
        }
        let w: Vec<f32> = linear.weight.val().into_data().to_vec().unwrap();
        let b: Vec<f32> = linear.bias.unwrap().val().into_data().to_vec().unwrap();
        let tw = [
            -0.0700899288058281,
            -0.02974015101790428,
            0.12957026064395905,
            0.22940030694007874,
            0.4991503953933716,
            -0.4290604889392853,
        ];
        let tb = [-0.15999998152256012, 0.1499999314546585];
        for (a, e) in w.iter().zip(tw).chain(b.iter().zip(tb)) {
            assert!((*a as f64 - e).abs() < 1e-6, "{a} vs {e}");
        }
    }

    /// With the loss scaled by 1024 (gradients ×1024) and `loss_scale` 1024, the update is
    /// the unscaled one; gradients holding inf are skipped and change nothing.
    #[test]
    fn loss_scaling_unscales_and_skips_overflow() {
        let device = Default::default();
        let make = || Linear {
            weight: Param::from_tensor(
                Tensor::<B, 2>::from_data(
                    TensorData::new(vec![0.1f32, -0.2, 0.3, 0.4], [2, 2]),
                    &device,
                )
                .require_grad(),
            ),
            bias: None,
        };
        let config = AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.01,
        };
        let grads_of = |l: &Linear<B>, k: f32| {
            let mut g = GradientsParams::new();
            g.register::<I, 2>(
                l.weight.id,
                Tensor::from_data(
                    TensorData::new(vec![3.0 * k, -4.0 * k, 0.5 * k, k], [2, 2]),
                    &device,
                ),
            );
            g
        };
        let (plain, scaled) = (make(), make());
        let mut o1 = AdamW::<I>::new(config, HashSet::new());
        let mut o2 = AdamW::<I>::new(config, HashSet::new());
        let g1 = grads_of(&plain, 1.0);
        let g2 = grads_of(&scaled, 1024.0);
        let (a, ra) = step::<B, Linear<B>>(&mut o1, plain, g1, 0.1, 1.0, 1.0);
        let (b, rb) = step::<B, Linear<B>>(&mut o2, scaled, g2, 0.1, 1.0, 1024.0);
        assert!(ra.applied && rb.applied);
        assert!((ra.grad_norm - rb.grad_norm).abs() < 1e-4, "{ra:?} {rb:?}");
        let wa: Vec<f32> = a.weight.val().into_data().to_vec().unwrap();
        let wb: Vec<f32> = b.weight.val().into_data().to_vec().unwrap();
        for (x, y) in wa.iter().zip(&wb) {
            assert!((x - y).abs() < 1e-6, "{wa:?} vs {wb:?}");
        }
        // Overflow under loss scaling: skipped, parameters and step count unchanged.
        let g = grads_of(&b, f32::INFINITY);
        let before = wb.clone();
        let (c, rc) = step::<B, Linear<B>>(&mut o2, b, g, 0.1, 1.0, 1024.0);
        assert!(!rc.applied && !rc.grad_norm.is_finite());
        assert_eq!(o2.step, 1);
        let wc: Vec<f32> = c.weight.val().into_data().to_vec().unwrap();
        assert_eq!(wc, before);
    }
}
