//! `BertForQuestionAnswering` and `AlbertForQuestionAnswering` as one burn module.
//!
//! Mirrors transformers v5.24.0,
//! [modeling_bert.py](https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/bert/modeling_bert.py)
//! (`BertEmbeddings`, `BertLayer`, `BertForQuestionAnswering`) and
//! [modeling_albert.py](https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/albert/modeling_albert.py)
//! (`AlbertEmbeddings`, `AlbertLayer`, `AlbertTransformer`, `AlbertForQuestionAnswering`):
//! post-LN blocks, a QA head on the sequence output, no pooler. A BERT layer and an ALBERT
//! layer compute the same thing except that BERT applies dropout after the feed-forward
//! output and ALBERT does not, so both are a [`TransformerLayer`]; they differ in parameter
//! names (the table in [`crate::hf_names`]) and in how layers are scheduled: ALBERT shares
//! `inner_group_num` layers per group across `num_hidden_layers / num_hidden_groups` steps
//! (`AlbertTransformer.forward`).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::amp::{self, Autocast};
use crate::config::{Activation, Arch, ModelConfig};
use crate::error::Result;
use crate::fused::{self, DropoutSite};
use crate::hf_names::{LayerNames, ModelNames};
use crate::nn::{self, activate, Builder, Exporter, LayerNorm, ParamWalker};
use crate::weights::{LoadReport, WeightSource};
use burn::tensor::activation::log_softmax;

/// Added to attention scores at padding positions (HF uses the dtype's minimum).
const MASK_VALUE: f32 = f32::MIN;

#[derive(Module, Debug)]
pub struct Embeddings<B: Backend> {
    pub word_embeddings: Embedding<B>,
    pub position_embeddings: Embedding<B>,
    pub token_type_embeddings: Embedding<B>,
    pub layer_norm: LayerNorm<B>,
    pub dropout: Dropout,
}

/// One post-LN transformer block (attention + feed-forward).
#[derive(Module, Debug)]
pub struct TransformerLayer<B: Backend> {
    pub query: Linear<B>,
    pub key: Linear<B>,
    pub value: Linear<B>,
    pub attention_dense: Linear<B>,
    pub attention_layer_norm: LayerNorm<B>,
    pub ffn: Linear<B>,
    pub ffn_output: Linear<B>,
    pub output_layer_norm: LayerNorm<B>,
    pub attention_dropout: Dropout,
    pub hidden_dropout: Dropout,
    #[module(skip)]
    pub heads: usize,
    #[module(skip)]
    pub activation: Activation,
    /// BERT drops out the feed-forward output; ALBERT does not.
    #[module(skip)]
    pub ffn_dropout: bool,
}

impl<B: Backend> TransformerLayer<B> {
    fn build(b: &mut Builder<B>, c: &ModelConfig, names: &LayerNames) -> Result<Self> {
        let (h, i, eps) = (c.hidden_size, c.intermediate_size, c.layer_norm_eps);
        Ok(Self {
            query: b.linear(&names.query, h, h)?,
            key: b.linear(&names.key, h, h)?,
            value: b.linear(&names.value, h, h)?,
            attention_dense: b.linear(&names.attention_dense, h, h)?,
            attention_layer_norm: b.layer_norm(&names.attention_layer_norm, h, eps)?,
            ffn: b.linear(&names.ffn, h, i)?,
            ffn_output: b.linear(&names.ffn_output, i, h)?,
            output_layer_norm: b.layer_norm(&names.output_layer_norm, h, eps)?,
            attention_dropout: DropoutConfig::new(c.attention_probs_dropout_prob).init(),
            hidden_dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
            heads: c.num_attention_heads,
            activation: c.hidden_act,
            ffn_dropout: c.arch == Arch::Bert,
        })
    }

    fn walk(&self, e: &mut impl ParamWalker<B>, arch: Arch, names: &LayerNames) -> Result<()> {
        e.linear(names.query.full(arch), &self.query)?;
        e.linear(names.key.full(arch), &self.key)?;
        e.linear(names.value.full(arch), &self.value)?;
        e.linear(names.attention_dense.full(arch), &self.attention_dense)?;
        e.layer_norm(
            names.attention_layer_norm.full(arch),
            &self.attention_layer_norm,
        )?;
        e.linear(names.ffn.full(arch), &self.ffn)?;
        e.linear(names.ffn_output.full(arch), &self.ffn_output)?;
        e.layer_norm(names.output_layer_norm.full(arch), &self.output_layer_norm)
    }

    /// `x`: [batch, seq, hidden]; `mask`: additive, f32, [batch, 1, 1, seq]; `dropout`: the
    /// sites of this application of the layer ([`LayerDropout::at`]: ALBERT applies one
    /// layer many times, each application drops its own elements). Under mixed precision (`ac`), the
    /// matmuls run in the half type and softmax/LayerNorm in f32 (see [`crate::amp`]); the
    /// output is f32 (LayerNorm's).
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        mask: Tensor<B, 4>,
        ac: Autocast,
        dropout: LayerDropout,
    ) -> Tensor<B, 3> {
        let head_dim = x.dims()[2] / self.heads;
        let split = |t: Tensor<B, 3>| fused::split_heads(t, self.heads);
        let q = split(nn::linear(&self.query, x.clone(), ac));
        let k = split(nn::linear(&self.key, x.clone(), ac));
        let v = split(nn::linear(&self.value, x.clone(), ac));
        let scores = nn::matmul(q, k.swap_dims(2, 3), ac);
        let probs = fused::attention_probs(
            scores,
            mask,
            1.0 / (head_dim as f64).sqrt(),
            &self.attention_dropout,
            dropout.attention_probs,
        );
        let context = fused::merge_heads(nn::matmul(probs, v, ac));
        let attn = fused::residual_layer_norm(
            nn::linear(&self.attention_dense, context, ac),
            x,
            &self.attention_layer_norm,
            Some((&self.hidden_dropout, dropout.attention_output)),
        );
        let ff = nn::linear(
            &self.ffn_output,
            activate(self.activation, nn::linear(&self.ffn, attn.clone(), ac)),
            ac,
        );
        fused::residual_layer_norm(
            ff,
            attn,
            &self.output_layer_norm,
            self.ffn_dropout
                .then_some((&self.hidden_dropout, dropout.ffn_output)),
        )
    }
}

/// The dropout sites of one layer application ([`fused::DropoutSite`]).
#[derive(Debug, Clone, Copy)]
pub struct LayerDropout {
    pub attention_probs: DropoutSite,
    pub attention_output: DropoutSite,
    pub ffn_output: DropoutSite,
}

impl LayerDropout {
    /// Sites of the layer application at `position` of the schedule (site 0 is the
    /// embeddings').
    pub fn at(key: u64, position: usize) -> Self {
        let site = |k: u64| DropoutSite {
            key,
            site: 1 + 3 * position as u64 + k,
        };
        LayerDropout {
            attention_probs: site(0),
            attention_output: site(1),
            ffn_output: site(2),
        }
    }
}

/// A BERT or ALBERT extractive-QA model.
#[derive(Module, Debug)]
pub struct QaModel<B: Backend> {
    pub embeddings: Embeddings<B>,
    /// ALBERT's `embedding_hidden_mapping_in` (embedding_size → hidden_size).
    pub embedding_hidden_mapping_in: Option<Linear<B>>,
    pub layers: Vec<TransformerLayer<B>>,
    pub qa_outputs: Linear<B>,
    /// Which entry of `layers` runs at each of the `num_hidden_layers` steps.
    #[module(skip)]
    pub schedule: Vec<usize>,
    #[module(skip)]
    pub arch: Arch,
    /// Mixed precision: the half type matmuls run in (`None`: the backend's type).
    #[module(skip)]
    pub autocast: Autocast,
}

/// Start and end logits, [batch, seq] each.
#[derive(Debug, Clone)]
pub struct QaOutput<B: Backend> {
    pub start_logits: Tensor<B, 2>,
    pub end_logits: Tensor<B, 2>,
}

/// The QA loss `BertForQuestionAnswering.forward` computes from its logits: the mean of the
/// start and end cross-entropies, `(start_loss + end_loss) / 2` (labels are in range here:
/// the features point unanswerable windows at [CLS], so HF's clamp to `ignored_index` never
/// applies).
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

/// A batch of model inputs (int tensors [batch, seq]).
#[derive(Debug, Clone)]
pub struct QaBatch<B: Backend> {
    pub input_ids: Tensor<B, 2, Int>,
    pub token_type_ids: Tensor<B, 2, Int>,
    pub attention_mask: Tensor<B, 2, Int>,
    /// The dropout masks' key for this forward pass ([`fused::DropoutMask`]); unused in
    /// evaluation.
    pub dropout_key: u64,
}

impl<B: Backend> QaModel<B> {
    /// Builds the model from a weight source; missing parameters are initialised like HF.
    pub fn build(
        config: &ModelConfig,
        source: &mut WeightSource,
        device: &B::Device,
    ) -> Result<(Self, LoadReport)> {
        let mut b = Builder::<B> {
            source,
            device: device.clone(),
            init_std: config.initializer_range,
        };
        let c = config;
        let e = c.embedding_size;
        let names = ModelNames::new(c);
        let embeddings = Embeddings {
            word_embeddings: b.embedding(
                &names.word_embeddings,
                c.vocab_size,
                e,
                Some(c.pad_token_id),
            )?,
            position_embeddings: b.embedding(
                &names.position_embeddings,
                c.max_position_embeddings,
                e,
                None,
            )?,
            token_type_embeddings: b.embedding(
                &names.token_type_embeddings,
                c.type_vocab_size,
                e,
                None,
            )?,
            layer_norm: b.layer_norm(&names.embeddings_layer_norm, e, c.layer_norm_eps)?,
            dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
        };
        let embedding_hidden_mapping_in = match &names.embedding_hidden_mapping_in {
            Some(name) => Some(b.linear(name, e, c.hidden_size)?),
            None => None,
        };
        let layers = names
            .layers
            .iter()
            .map(|layer| TransformerLayer::build(&mut b, c, layer))
            .collect::<Result<Vec<_>>>()?;
        let qa_outputs = b.linear(&names.qa_outputs, c.hidden_size, 2)?;
        let schedule = match c.arch {
            Arch::Bert => (0..c.num_hidden_layers).collect(),
            Arch::Albert => {
                // HF: group_idx = int(i / (num_hidden_layers / num_hidden_groups)).
                let per_group = c.num_hidden_layers as f64 / c.num_hidden_groups as f64;
                (0..c.num_hidden_layers)
                    .flat_map(|i| {
                        let g = (i as f64 / per_group) as usize;
                        (0..c.inner_group_num).map(move |j| g * c.inner_group_num + j)
                    })
                    .collect()
            }
        };
        let report = b.source.report();
        Ok((
            Self {
                embeddings,
                embedding_hidden_mapping_in,
                layers,
                qa_outputs,
                schedule,
                arch: c.arch,
                autocast: None,
            },
            report,
        ))
    }

    pub fn forward(&self, batch: QaBatch<B>) -> QaOutput<B> {
        let [b, s] = batch.input_ids.dims();
        let device = batch.input_ids.device();
        let positions = Tensor::<B, 1, Int>::arange(0..s as i64, &device)
            .unsqueeze::<2>()
            .repeat_dim(0, b);
        let emb = &self.embeddings;
        let key = batch.dropout_key;
        // (word + position) + token type, summed inside the fused LayerNorm.
        let x = fused::residual_layer_norm(
            emb.word_embeddings.forward(batch.input_ids)
                + emb.position_embeddings.forward(positions),
            emb.token_type_embeddings.forward(batch.token_type_ids),
            &emb.layer_norm,
            None,
        );
        let x = fused::dropout(x, &emb.dropout, DropoutSite { key, site: 0 });
        let ac = self.autocast;
        let mut x = match &self.embedding_hidden_mapping_in {
            Some(m) => nn::linear(m, x, ac),
            None => x,
        };
        let mask = additive_mask(batch.attention_mask);
        for (position, &i) in self.schedule.iter().enumerate() {
            x = self.layers[i].forward(x, mask.clone(), ac, LayerDropout::at(key, position));
        }
        // Half under mixed precision; the loss and evaluation read them in f32.
        let logits = amp::to_f32(nn::linear(&self.qa_outputs, x, ac), ac); // [b, s, 2]
        let start_logits = logits.clone().slice([0..b, 0..s, 0..1]).reshape([b, s]);
        let end_logits = logits.slice([0..b, 0..s, 1..2]).reshape([b, s]);
        QaOutput {
            start_logits,
            end_logits,
        }
    }

    /// Visits every parameter-holding module with its full HF name (`bert.…`/`albert.…`,
    /// `qa_outputs`; the table in [`crate::hf_names`]). Export and optimizer-state naming
    /// both go through here.
    pub fn walk(&self, config: &ModelConfig, e: &mut impl ParamWalker<B>) -> Result<()> {
        let names = ModelNames::new(config);
        let arch = self.arch;
        let emb = &self.embeddings;
        e.embedding(names.word_embeddings.full(arch), &emb.word_embeddings)?;
        e.embedding(
            names.position_embeddings.full(arch),
            &emb.position_embeddings,
        )?;
        e.embedding(
            names.token_type_embeddings.full(arch),
            &emb.token_type_embeddings,
        )?;
        e.layer_norm(names.embeddings_layer_norm.full(arch), &emb.layer_norm)?;
        if let (Some(m), Some(name)) = (
            &self.embedding_hidden_mapping_in,
            &names.embedding_hidden_mapping_in,
        ) {
            e.linear(name.full(arch), m)?;
        }
        for (layer, layer_names) in self.layers.iter().zip(&names.layers) {
            layer.walk(e, arch, layer_names)?;
        }
        e.linear(names.qa_outputs.full(arch), &self.qa_outputs)
    }

    /// Parameters under their HF names and PyTorch layouts.
    pub fn export(&self, config: &ModelConfig) -> Result<Exporter> {
        let mut e = Exporter::default();
        self.walk(config, &mut e)?;
        Ok(e)
    }
}

/// [batch, seq] 1/0 → [batch, 1, 1, seq] additive (0 or the dtype's minimum). `mask_fill`
/// rather than a product, so a half-precision -inf never meets a 0.
fn additive_mask<B: Backend>(mask: Tensor<B, 2, Int>) -> Tensor<B, 4> {
    let [b, s] = mask.dims();
    let padding = mask.clone().equal_elem(0);
    Tensor::<B, 2>::zeros([b, s], &mask.device())
        .mask_fill(padding, MASK_VALUE)
        .reshape([b, 1, 1, s])
}

/// Builds an int tensor [rows, cols] from host values.
pub fn int_tensor<B: Backend>(
    values: Vec<i64>,
    rows: usize,
    cols: usize,
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}
