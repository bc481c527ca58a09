//! `sweep data stats`: what a dataset looks like through a tokenizer and a window setting,
//! so a user can pick `max_seq_length`/`doc_stride`/`max_answer_length` before training.

use rayon::prelude::*;
use serde::Serialize;

use crate::decode::DecodeConfig;
use crate::error::Result;
use crate::features::{build_features, FeatureConfig, Split};
use crate::squad::{Dataset, LoadReport};
use crate::tokenizer::BertTokenizer;
use crate::treebank::is_python_space;

#[derive(Debug, Clone, Serialize)]
pub struct DatasetStats {
    pub file: String,
    pub load: LoadReport,
    pub max_seq_length: usize,
    pub doc_stride: usize,
    pub eval_features: usize,
    /// `windows_per_question[k]` = questions with k+1 windows; the last bucket is "or more".
    pub windows_per_question: [usize; 4],
    pub mean_windows_per_question: f64,
    pub max_windows_per_question: usize,
    pub train_features: usize,
    /// Training windows labelled `[CLS]` because the answer is not wholly inside.
    pub train_features_without_answer: usize,
    pub mean_question_tokens: f64,
    pub max_question_tokens: usize,
    pub mean_context_tokens: f64,
    pub max_context_tokens: usize,
    /// Share of `[UNK]` among all question and context tokens.
    pub unk_token_share: f64,
    pub max_answer_length: usize,
    /// Located answers spanning more tokens than `max_answer_length` (decoding can never
    /// produce them exactly).
    pub answers_longer_than_max_answer_length: usize,
}

/// Computes [`DatasetStats`].
pub fn dataset_stats(
    dataset: &Dataset,
    tokenizer: &BertTokenizer,
    config: FeatureConfig,
    decode: DecodeConfig,
) -> Result<DatasetStats> {
    let eval = build_features(dataset, tokenizer, config, Split::Eval)?;
    let train = build_features(dataset, tokenizer, config, Split::Train)?;
    let unk = tokenizer.special_ids().unk;

    let mut windows = vec![0usize; dataset.examples.len()];
    for f in &eval {
        windows[f.example_index] += 1;
    }
    let mut buckets = [0usize; 4];
    for &w in &windows {
        buckets[w.saturating_sub(1).min(3)] += 1;
    }

    // Per paragraph: token offsets (for answer lengths) and [UNK] count; tokenised once.
    type OffsetsAndUnks = (Vec<(u32, u32)>, usize);
    let per_paragraph: Vec<Result<OffsetsAndUnks>> = dataset
        .paragraphs
        .par_iter()
        .map(|p| {
            let enc = tokenizer.encode(&p.context)?;
            let unks = enc.ids.iter().filter(|&&id| id == unk).count();
            Ok((enc.offsets, unks))
        })
        .collect();
    let mut context_offsets = Vec::with_capacity(per_paragraph.len());
    let mut unk_tokens = 0usize;
    for r in per_paragraph {
        let (offsets, unks) = r?;
        context_offsets.push(offsets);
        unk_tokens += unks;
    }
    let context_lens: Vec<usize> = context_offsets.iter().map(Vec::len).collect();
    let mut question_lens = Vec::with_capacity(dataset.examples.len());
    let mut long_answers = 0usize;
    for ex in &dataset.examples {
        let q = tokenizer.encode(ex.question.trim_start_matches(is_python_space))?;
        unk_tokens += q.ids.iter().filter(|&&id| id == unk).count();
        question_lens.push(q.ids.len());
        let offsets = &context_offsets[ex.paragraph];
        for a in ex.answers.iter().filter(|a| a.located) {
            let (s, e) = (a.start as u32, a.end() as u32);
            let n = offsets.iter().filter(|&&(ts, te)| ts < e && te > s).count();
            if n > decode.max_answer_length {
                long_answers += 1;
            }
        }
    }
    let mean = |v: &[usize]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<usize>() as f64 / v.len() as f64
        }
    };
    let all_tokens: usize =
        context_lens.iter().sum::<usize>() + question_lens.iter().sum::<usize>();
    Ok(DatasetStats {
        file: dataset.path.display().to_string(),
        load: dataset.report.clone(),
        max_seq_length: config.max_seq_length,
        doc_stride: config.doc_stride,
        eval_features: eval.len(),
        windows_per_question: buckets,
        mean_windows_per_question: mean(&windows),
        max_windows_per_question: windows.iter().copied().max().unwrap_or(0),
        train_features: train.len(),
        train_features_without_answer: train.iter().filter(|f| f.label == Some((0, 0))).count(),
        mean_question_tokens: mean(&question_lens),
        max_question_tokens: question_lens.iter().copied().max().unwrap_or(0),
        mean_context_tokens: mean(&context_lens),
        max_context_tokens: context_lens.iter().copied().max().unwrap_or(0),
        unk_token_share: if all_tokens == 0 {
            0.0
        } else {
            unk_tokens as f64 / all_tokens as f64
        },
        max_answer_length: decode.max_answer_length,
        answers_longer_than_max_answer_length: long_answers,
    })
}
