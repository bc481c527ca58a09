//! Model inputs, exactly like HF `run_qa`'s `prepare_train_features` /
//! `prepare_validation_features` with a BERT fast tokenizer:
//! `[CLS] question [SEP] context [SEP]`, the question left-stripped and never truncated,
//! the context cut into windows of `max_seq_length - len(question) - 3` tokens where
//! consecutive windows share `doc_stride` tokens (HF's meaning, which is the `tokenizers`
//! crate's `stride`; Google's `run_squad` used it as the step instead).
//!
//! Differences from HF, both deliberate:
//! - HF tokenises the context once per *question*; we tokenise each paragraph once and
//!   reuse it for all its questions (same tokens, several times faster on DRCD).
//! - HF's start-label loop (`while offsets[i][0] <= start_char: i += 1`) runs past the last
//!   context token into `[SEP]` and padding, whose offsets are (0, 0), when the answer starts
//!   in the last context token of a window, and then labels a padding position. We stop at
//!   the last context token, which is the token that holds the answer start.
//!
//! Features hold no padding: batches pad (see [`Feature::padded`]).

use std::ops::Range;

use rayon::prelude::*;

use crate::error::{DataError, Result};
use crate::squad::{Dataset, Example};
use crate::tokenizer::{BertTokenizer, Encoded, SpecialIds};
use crate::treebank::is_python_space;

/// Windowing parameters (HF `run_qa` names and defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureConfig {
    pub max_seq_length: usize,
    pub doc_stride: usize,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            max_seq_length: 384,
            doc_stride: 128,
        }
    }
}

/// One window of one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    /// Index into `Dataset::examples`.
    pub example_index: usize,
    /// Which window of its example (0-based).
    pub window_index: usize,
    /// `[CLS] question [SEP] context-window [SEP]`, unpadded.
    pub input_ids: Vec<u32>,
    /// Position of the first context token in `input_ids` (= question tokens + 2).
    pub context_start: usize,
    /// Char offsets, into the paragraph's context, of the window's context tokens.
    pub context_offsets: Vec<(u32, u32)>,
    /// Training labels `(start, end)` as positions in `input_ids`; `(0, 0)` (the `[CLS]`
    /// position) when the answer is not wholly inside this window. `None` for evaluation.
    pub label: Option<(usize, usize)>,
}

impl Feature {
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }

    /// Range of the context tokens in `input_ids`.
    pub fn context_range(&self) -> Range<usize> {
        self.context_start..self.context_start + self.context_offsets.len()
    }

    /// BERT segment ids: 0 for `[CLS] question [SEP]`, 1 for `context [SEP]`.
    pub fn token_type_ids(&self) -> Vec<u32> {
        (0..self.len())
            .map(|i| u32::from(i >= self.context_start))
            .collect()
    }

    /// HF's validation `offset_mapping`: char offsets for context tokens, `None` elsewhere.
    pub fn offset_mapping(&self) -> Vec<Option<(u32, u32)>> {
        let mut out = vec![None; self.len()];
        for (k, &o) in self.context_offsets.iter().enumerate() {
            out[self.context_start + k] = Some(o);
        }
        out
    }

    /// `(input_ids, token_type_ids, attention_mask)` padded with `pad_id` to `len`
    /// (HF `padding="max_length"`). `len` must be at least `self.len()`.
    pub fn padded(&self, len: usize, pad_id: u32) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
        let n = self.len().min(len);
        let mut ids = self.input_ids[..n].to_vec();
        let mut types = self.token_type_ids();
        types.truncate(n);
        let mut mask = vec![1u32; n];
        ids.resize(len, pad_id);
        types.resize(len, 0);
        mask.resize(len, 0);
        (ids, types, mask)
    }
}

/// Splits `context_len` tokens into windows the way `tokenizers`' `Encoding::truncate` does.
///
/// Returns the windows as token ranges, or an error message when no context fits.
pub fn context_windows(
    question_len: usize,
    context_len: usize,
    config: FeatureConfig,
) -> std::result::Result<Vec<Range<usize>>, String> {
    let total = question_len + context_len + 3;
    if total <= config.max_seq_length {
        #[allow(clippy::single_range_in_vec_init)] // one window holding the whole context
        return Ok(vec![0..context_len]);
    }
    let to_remove = total - config.max_seq_length;
    if context_len <= to_remove {
        return Err(format!(
            "the question has {question_len} tokens, so with max_seq_length {} no context token fits",
            config.max_seq_length
        ));
    }
    let window = context_len - to_remove;
    if config.doc_stride >= window {
        return Err(format!(
            "doc_stride {} must be smaller than the {window} context tokens that fit next to this question \
             (max_seq_length {} - {question_len} question tokens - 3 special tokens)",
            config.doc_stride, config.max_seq_length
        ));
    }
    let step = window - config.doc_stride;
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let stop = (start + window).min(context_len);
        out.push(start..stop);
        if stop == context_len {
            return Ok(out);
        }
        start += step;
    }
}

/// HF's labels for one window; `offsets` are the window's context token offsets and
/// `context_start` their position in `input_ids`.
fn train_label(
    offsets: &[(u32, u32)],
    context_start: usize,
    start_char: usize,
    end_char: usize,
) -> (usize, usize) {
    let (Some(first), Some(last)) = (offsets.first(), offsets.last()) else {
        return (0, 0);
    };
    if !(first.0 as usize <= start_char && last.1 as usize >= end_char) {
        return (0, 0);
    }
    // Last context token whose start is <= start_char (HF scans forward, then steps back).
    let mut s = 0;
    while s < offsets.len() && offsets[s].0 as usize <= start_char {
        s += 1;
    }
    let start = context_start + s - 1;
    // HF scans back from the last context token while the token still ends at or after
    // end_char, then steps forward. Its loop may leave the context (to [SEP], whose end 0
    // stops it), which is position context_start - 1, and steps forward to context_start.
    let mut e = offsets.len() as isize - 1;
    while e >= 0 && offsets[e as usize].1 as usize >= end_char {
        e -= 1;
    }
    let end = (context_start as isize + e + 1) as usize;
    (start, end)
}

/// Which features to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Labelled windows of every question with a located answer.
    Train,
    /// Windows of every question, with offsets for decoding.
    Eval,
}

/// Builds the features of `dataset`, in example order and window order (HF's order).
/// Each paragraph is tokenised once; paragraphs are processed in parallel.
pub fn build_features(
    dataset: &Dataset,
    tokenizer: &BertTokenizer,
    config: FeatureConfig,
    split: Split,
) -> Result<Vec<Feature>> {
    if config.max_seq_length < 4 {
        return Err(DataError::Config(format!(
            "max_seq_length must be at least 4 (got {})",
            config.max_seq_length
        )));
    }
    // Examples of a paragraph are contiguous in load order; group them.
    let mut groups: Vec<(usize, Range<usize>)> = Vec::new();
    for (i, ex) in dataset.examples.iter().enumerate() {
        match groups.last_mut() {
            Some((p, r)) if *p == ex.paragraph => r.end = i + 1,
            _ => groups.push((ex.paragraph, i..i + 1)),
        }
    }
    let special = tokenizer.special_ids();
    let per_group: Vec<Result<Vec<Feature>>> = groups
        .par_iter()
        .map(|(p, examples)| {
            let context = tokenizer.encode(&dataset.paragraphs[*p].context)?;
            let mut out = Vec::new();
            for ei in examples.clone() {
                let ex = &dataset.examples[ei];
                if split == Split::Train && ex.train_answer().is_none() {
                    continue;
                }
                example_features(
                    dataset, ei, ex, &context, tokenizer, special, config, split, &mut out,
                )?;
            }
            Ok(out)
        })
        .collect();
    let mut features = Vec::new();
    for group in per_group {
        features.extend(group?);
    }
    Ok(features)
}

#[allow(clippy::too_many_arguments)]
fn example_features(
    dataset: &Dataset,
    example_index: usize,
    ex: &Example,
    context: &Encoded,
    tokenizer: &BertTokenizer,
    special: SpecialIds,
    config: FeatureConfig,
    split: Split,
    out: &mut Vec<Feature>,
) -> Result<()> {
    let question = tokenizer.encode(ex.question.trim_start_matches(is_python_space))?;
    let windows =
        context_windows(question.ids.len(), context.ids.len(), config).map_err(|why| {
            DataError::Config(format!(
                "{}: question {:?}: {why}; raise max_seq_length or lower doc_stride",
                dataset.path.display(),
                ex.id
            ))
        })?;
    let answer_chars = match split {
        Split::Train => ex.train_answer().map(|a| (a.start, a.end())),
        Split::Eval => None,
    };
    let context_start = question.ids.len() + 2;
    for (window_index, w) in windows.into_iter().enumerate() {
        let mut input_ids = Vec::with_capacity(context_start + w.len() + 1);
        input_ids.push(special.cls);
        input_ids.extend_from_slice(&question.ids);
        input_ids.push(special.sep);
        input_ids.extend_from_slice(&context.ids[w.clone()]);
        input_ids.push(special.sep);
        let context_offsets = context.offsets[w].to_vec();
        let label = answer_chars.map(|(s, e)| train_label(&context_offsets, context_start, s, e));
        out.push(Feature {
            example_index,
            window_index,
            input_ids,
            context_start,
            context_offsets,
            label,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max_seq_length: usize, doc_stride: usize) -> FeatureConfig {
        FeatureConfig {
            max_seq_length,
            doc_stride,
        }
    }

    #[test]
    fn windows_share_doc_stride_tokens() {
        // 5 question tokens, 384 → 376 context tokens per window, step 376 - 128 = 248.
        let w = context_windows(5, 1000, cfg(384, 128)).unwrap();
        assert_eq!(w, vec![0..376, 248..624, 496..872, 744..1000]);
        // Consecutive windows overlap by exactly doc_stride tokens.
        assert_eq!(w[0].end - w[1].start, 128);
    }

    #[test]
    fn short_context_is_one_window() {
        assert_eq!(
            context_windows(10, 371, cfg(384, 128)).unwrap(),
            vec![0..371]
        );
        assert_eq!(
            context_windows(10, 372, cfg(384, 128)).unwrap(),
            vec![0..371, 243..372]
        );
        assert_eq!(context_windows(3, 0, cfg(384, 128)).unwrap(), vec![0..0]);
    }

    #[test]
    fn impossible_windows_are_errors() {
        assert!(context_windows(400, 10, cfg(384, 128))
            .unwrap_err()
            .contains("no context token fits"));
        assert!(context_windows(10, 200, cfg(64, 128))
            .unwrap_err()
            .contains("doc_stride 128"));
    }

    #[test]
    fn labels_follow_hf() {
        // Context "ab cd ef": tokens at (0,2) (3,5) (6,8); context starts at position 4.
        let offs = [(0, 2), (3, 5), (6, 8)];
        assert_eq!(train_label(&offs, 4, 3, 5), (5, 5));
        assert_eq!(train_label(&offs, 4, 0, 8), (4, 6));
        // Answer starting mid-token maps to the token that holds it.
        assert_eq!(train_label(&offs, 4, 4, 7), (5, 6));
        // Answer starting in the last token: HF would run into [SEP]; we stay on it.
        assert_eq!(train_label(&offs, 4, 6, 8), (6, 6));
        // Not wholly inside the window → [CLS].
        assert_eq!(train_label(&offs, 4, 6, 9), (0, 0));
        assert_eq!(train_label(&offs[1..], 5, 0, 2), (0, 0));
        assert_eq!(train_label(&[], 4, 0, 1), (0, 0));
    }
}
