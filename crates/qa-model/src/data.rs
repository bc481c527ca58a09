//! Batches of features as tensors, padded to `max_seq_length` (run_qa's default) or to the
//! longest window of the batch (dynamic padding: faster; the logits of real tokens are the
//! same up to float rounding, but the QA loss, whose softmax covers padding positions in HF,
//! differs).

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use qa_data::features::Feature;

use crate::model::{int_tensor, QaBatch};

/// Model inputs for `features`, padded with `pad_id` to `pad_to` tokens (HF's
/// `padding="max_length"`) or, when `None`, to the batch's longest window.
pub fn batch<B: Backend>(
    features: &[&Feature],
    pad_id: u32,
    pad_to: Option<usize>,
    device: &B::Device,
) -> QaBatch<B> {
    let longest = features.iter().map(|f| f.len()).max().unwrap_or(1).max(1);
    let len = pad_to.map_or(longest, |n| n.max(longest));
    let rows = features.len();
    let (mut ids, mut types, mut mask) = (
        Vec::with_capacity(rows * len),
        Vec::with_capacity(rows * len),
        Vec::with_capacity(rows * len),
    );
    for f in features {
        let (i, t, m) = f.padded(len, pad_id);
        ids.extend(i.into_iter().map(i64::from));
        types.extend(t.into_iter().map(i64::from));
        mask.extend(m.into_iter().map(i64::from));
    }
    QaBatch {
        input_ids: int_tensor(ids, rows, len, device),
        token_type_ids: int_tensor(types, rows, len, device),
        attention_mask: int_tensor(mask, rows, len, device),
        dropout_key: 0,
    }
}

/// Start and end label positions of training features.
pub fn labels<B: Backend>(
    features: &[&Feature],
    device: &B::Device,
) -> (Tensor<B, 1, Int>, Tensor<B, 1, Int>) {
    let (s, e): (Vec<i64>, Vec<i64>) = features
        .iter()
        .map(|f| f.label.map(|(s, e)| (s as i64, e as i64)).unwrap_or((0, 0)))
        .unzip();
    let n = features.len();
    (
        Tensor::from_data(TensorData::new(s, [n]), device),
        Tensor::from_data(TensorData::new(e, [n]), device),
    )
}
