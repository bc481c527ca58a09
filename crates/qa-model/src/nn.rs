//! Building blocks with HF numerics and HF names: LayerNorm with the config's epsilon
//! (burn's default is 1e-5, BERT's 1e-12), exact-erf GELU written with tensor ops (burn's
//! fused GELU backward is the tanh approximation on ndarray/CubeCL), and a [`Builder`] that
//! creates each parameter from the checkpoint (transposing PyTorch's `[out, in]` Linear
//! weights to burn's `[in, out]`) or initialises it like HF's `_init_weights`.

use std::collections::BTreeMap;

use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData};

pub use crate::layer_norm::LayerNorm;

use crate::amp::Autocast;
use crate::config::Activation;
use crate::error::{ModelError, Result};
use crate::hf_names::HfName;
use crate::weights::{HostTensor, WeightSource};

/// `x · w + b` of a Linear, in the autocast type when there is one. Inputs of rank 3 and
/// more are flattened to rows first: burn's Linear on [batch, seq, in] computes the
/// weight gradient as one matmul per batch item and sums them serially; on rows it is
/// one GEMM that uses every core.
pub fn linear<B: Backend, const D: usize>(
    l: &burn::nn::Linear<B>,
    x: Tensor<B, D>,
    ac: Autocast,
) -> Tensor<B, D> {
    if D > 2 {
        let dims = x.dims();
        let rows = dims[..D - 1].iter().product::<usize>();
        let y = linear(l, x.reshape([rows, dims[D - 1]]), ac);
        let mut out = dims;
        out[D - 1] = y.dims()[1];
        return y.reshape(out);
    }
    match ac {
        None if D == 2 => {
            let mut dims = x.dims();
            let y = crate::fused::linear_rows(l, x.reshape([dims[0], dims[1]]));
            dims[D - 1] = y.dims()[1];
            y.reshape(dims)
        }
        None => l.forward(x),
        Some(h) => burn::tensor::module::linear(
            x.cast(h),
            l.weight.val().cast(h),
            l.bias.as_ref().map(|b| b.val().cast(h)),
        ),
    }
}

/// `a · b` in the autocast type when there is one.
pub fn matmul<B: Backend, const D: usize>(
    a: Tensor<B, D>,
    b: Tensor<B, D>,
    ac: Autocast,
) -> Tensor<B, D> {
    match ac {
        None => a.matmul(b),
        Some(h) => a.cast(h).matmul(b.cast(h)),
    }
}

/// `hidden_act`, with exact gradients.
pub fn activate<B: Backend, const D: usize>(act: Activation, x: Tensor<B, D>) -> Tensor<B, D> {
    match act {
        Activation::Gelu => crate::fused::gelu(x),
        Activation::GeluNew => crate::fused::gelu_new(x),
        Activation::Relu => burn::tensor::activation::relu(x),
    }
}

/// Creates parameters from a [`WeightSource`], or initialises the missing ones like HF:
/// Linear and Embedding weights ~ N(0, initializer_range), biases 0, LayerNorm 1/0, the
/// padding row of word embeddings 0.
#[derive(Debug)]
pub struct Builder<'a, B: Backend> {
    pub source: &'a mut WeightSource,
    pub device: B::Device,
    pub init_std: f64,
}

impl<B: Backend> Builder<'_, B> {
    fn tensor<const D: usize>(&self, data: Vec<f32>, shape: [usize; D]) -> Tensor<B, D> {
        Tensor::from_data(TensorData::new(data, shape), &self.device)
    }

    fn normal<const D: usize>(&self, shape: [usize; D]) -> Tensor<B, D> {
        Tensor::random(
            shape,
            Distribution::Normal(0.0, self.init_std),
            &self.device,
        )
    }

    pub fn linear(&mut self, name: &HfName, d_in: usize, d_out: usize) -> Result<Linear<B>> {
        let weight = match self.source.take(name, "weight", &[d_out, d_in])? {
            // PyTorch [out, in] → burn [in, out].
            Some(w) => self.tensor(w, [d_out, d_in]).transpose(),
            None => self.normal([d_in, d_out]),
        };
        let bias = match self.source.take(name, "bias", &[d_out])? {
            Some(b) => self.tensor(b, [d_out]),
            None => Tensor::zeros([d_out], &self.device),
        };
        Ok(Linear {
            weight: Param::from_tensor(weight),
            bias: Some(Param::from_tensor(bias)),
        })
    }

    pub fn layer_norm(&mut self, name: &HfName, d: usize, eps: f64) -> Result<LayerNorm<B>> {
        let weight = match self.source.take(name, "weight", &[d])? {
            Some(w) => self.tensor(w, [d]),
            None => Tensor::ones([d], &self.device),
        };
        let bias = match self.source.take(name, "bias", &[d])? {
            Some(b) => self.tensor(b, [d]),
            None => Tensor::zeros([d], &self.device),
        };
        Ok(LayerNorm {
            weight: Param::from_tensor(weight),
            bias: Param::from_tensor(bias),
            eps,
        })
    }

    pub fn embedding(
        &mut self,
        name: &HfName,
        n: usize,
        d: usize,
        padding_idx: Option<usize>,
    ) -> Result<Embedding<B>> {
        let weight = match self.source.take(name, "weight", &[n, d])? {
            Some(w) => self.tensor(w, [n, d]),
            None => {
                let w = self.normal([n, d]);
                match padding_idx {
                    Some(p) if p < n => {
                        w.slice_assign([p..p + 1, 0..d], Tensor::zeros([1, d], &self.device))
                    }
                    _ => w,
                }
            }
        };
        Ok(Embedding {
            weight: Param::from_tensor(weight),
        })
    }
}

/// Host copy of a tensor in f32.
pub fn to_host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<HostTensor> {
    let shape = t.dims().to_vec();
    let data = t
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| ModelError::Invalid(format!("cannot read tensor back: {e:?}")))?;
    Ok(HostTensor { shape, data })
}

/// Visits a model's parameter-holding modules with their full HF names (`QaModel::walk`,
/// names from `crate::hf_names`).
pub trait ParamWalker<B: Backend> {
    fn linear(&mut self, name: String, l: &Linear<B>) -> Result<()>;
    fn layer_norm(&mut self, name: String, n: &LayerNorm<B>) -> Result<()>;
    fn embedding(&mut self, name: String, e: &Embedding<B>) -> Result<()>;
}

/// Collects parameters under their HF names and PyTorch layouts.
#[derive(Debug, Default)]
pub struct Exporter {
    pub tensors: BTreeMap<String, HostTensor>,
}

impl<B: Backend> ParamWalker<B> for Exporter {
    fn linear(&mut self, name: String, l: &Linear<B>) -> Result<()> {
        self.tensors.insert(
            format!("{name}.weight"),
            to_host(l.weight.val().transpose())?,
        );
        if let Some(b) = &l.bias {
            self.tensors
                .insert(format!("{name}.bias"), to_host(b.val())?);
        }
        Ok(())
    }
    fn layer_norm(&mut self, name: String, n: &LayerNorm<B>) -> Result<()> {
        self.tensors
            .insert(format!("{name}.weight"), to_host(n.weight.val())?);
        self.tensors
            .insert(format!("{name}.bias"), to_host(n.bias.val())?);
        Ok(())
    }
    fn embedding(&mut self, name: String, e: &Embedding<B>) -> Result<()> {
        self.tensors
            .insert(format!("{name}.weight"), to_host(e.weight.val())?);
        Ok(())
    }
}

/// Maps parameter ids to HF names (optimizer state is saved by name, ids are per process).
#[derive(Debug, Default)]
pub struct ParamNames {
    pub names: Vec<(burn::module::ParamId, String)>,
}

impl<B: Backend> ParamWalker<B> for ParamNames {
    fn linear(&mut self, name: String, l: &Linear<B>) -> Result<()> {
        self.names.push((l.weight.id, format!("{name}.weight")));
        if let Some(b) = &l.bias {
            self.names.push((b.id, format!("{name}.bias")));
        }
        Ok(())
    }
    fn layer_norm(&mut self, name: String, n: &LayerNorm<B>) -> Result<()> {
        self.names.push((n.weight.id, format!("{name}.weight")));
        self.names.push((n.bias.id, format!("{name}.bias")));
        Ok(())
    }
    fn embedding(&mut self, name: String, e: &Embedding<B>) -> Result<()> {
        self.names.push((e.weight.id, format!("{name}.weight")));
        Ok(())
    }
}
