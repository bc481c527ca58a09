//! From start/end logits back to answer text, like HF `postprocess_qa_predictions`
//! (SQuAD v1 mode): per question, candidates from all its windows, the top `n_best_size`
//! starts × top `n_best_size` ends of each window, context tokens only, end ≥ start,
//! at most `max_answer_length` tokens, score = start logit + end logit; the answer is the
//! context slice of the best candidate.
//!
//! Unlike HF we never answer the literal string "empty": when no top-n candidate survives
//! the filters, we search every valid span of the question's windows. Ties keep HF's order
//! (window, then start rank, then end rank); logits are ranked by value, ties by position,
//! and NaN ranks last, so decoding is deterministic and cannot panic.

use std::cmp::Ordering;

use crate::features::Feature;
use crate::squad::{Dataset, Paragraph};

/// One window of a question with its start and end logits.
pub type Window<'a> = (&'a Feature, &'a [f32], &'a [f32]);

/// HF `run_qa` defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeConfig {
    pub n_best_size: usize,
    pub max_answer_length: usize,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self {
            n_best_size: 20,
            max_answer_length: 30,
        }
    }
}

/// The chosen span of one question.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub text: String,
    pub score: f32,
    /// Char offsets into the paragraph's context.
    pub start_char: usize,
    pub end_char: usize,
    /// True when no top-n candidate survived and the exhaustive search chose the span.
    pub fallback: bool,
}

fn rank_key(x: f32) -> f32 {
    if x.is_nan() {
        f32::NEG_INFINITY
    } else {
        x
    }
}

/// Indices of the `n` largest values, largest first; ties by lower index.
fn top_n(logits: &[f32], n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    let cmp = |&a: &usize, &b: &usize| -> Ordering {
        rank_key(logits[b])
            .total_cmp(&rank_key(logits[a]))
            .then(a.cmp(&b))
    };
    if n < idx.len() {
        idx.select_nth_unstable_by(n, cmp);
        idx.truncate(n);
    }
    idx.sort_by(cmp);
    idx
}

struct Candidate {
    score: f32,
    start_char: usize,
    end_char: usize,
}

fn better(new: f32, old: Option<&Candidate>) -> bool {
    match old {
        None => true,
        Some(o) => rank_key(new) > rank_key(o.score),
    }
}

/// Decodes one question from its windows and their logits (each logits slice covers at
/// least the window's tokens; longer, padded slices are fine, as in HF).
pub fn decode_example(
    paragraph: &Paragraph,
    windows: &[Window],
    config: DecodeConfig,
) -> Option<Prediction> {
    let mut best: Option<Candidate> = None;
    for (feature, start_logits, end_logits) in windows {
        let ctx = feature.context_range();
        let valid = |i: usize| ctx.contains(&i) && i < start_logits.len() && i < end_logits.len();
        let starts = top_n(start_logits, config.n_best_size);
        let ends = top_n(end_logits, config.n_best_size);
        for &s in &starts {
            for &e in &ends {
                if !valid(s) || !valid(e) || e < s || e - s + 1 > config.max_answer_length {
                    continue;
                }
                let score = start_logits[s] + end_logits[e];
                if better(score, best.as_ref()) {
                    best = Some(candidate(feature, s, e, score));
                }
            }
        }
    }
    let mut fallback = false;
    if best.is_none() {
        fallback = true;
        best = exhaustive(windows, config);
    }
    best.map(|c| Prediction {
        text: paragraph.slice_chars(c.start_char, c.end_char).to_string(),
        score: c.score,
        start_char: c.start_char,
        end_char: c.end_char,
        fallback,
    })
}

fn candidate(feature: &Feature, s: usize, e: usize, score: f32) -> Candidate {
    let offsets = &feature.context_offsets;
    Candidate {
        score,
        start_char: offsets[s - feature.context_start].0 as usize,
        end_char: offsets[e - feature.context_start].1 as usize,
    }
}

/// The best valid span over every window, every start and every allowed length.
fn exhaustive(windows: &[Window], config: DecodeConfig) -> Option<Candidate> {
    let mut best: Option<Candidate> = None;
    for (feature, start_logits, end_logits) in windows {
        let ctx = feature.context_range();
        let end_limit = ctx.end.min(start_logits.len()).min(end_logits.len());
        for s in ctx.start..end_limit {
            for e in s..end_limit.min(s + config.max_answer_length) {
                let score = start_logits[s] + end_logits[e];
                if better(score, best.as_ref()) {
                    best = Some(candidate(feature, s, e, score));
                }
            }
        }
    }
    best
}

/// Decodes every question of `dataset`. `features` must be the dataset's evaluation
/// features (in their order) and `logits[i]` the (start, end) logits of `features[i]`.
/// Returns one entry per example, in example order; `None` when a question has no context.
pub fn decode_dataset<L: AsRef<[f32]>>(
    dataset: &Dataset,
    features: &[Feature],
    start_logits: &[L],
    end_logits: &[L],
    config: DecodeConfig,
) -> Vec<Option<Prediction>> {
    let mut per_example: Vec<Vec<Window>> = vec![Vec::new(); dataset.examples.len()];
    for ((f, s), e) in features.iter().zip(start_logits).zip(end_logits) {
        if let Some(slot) = per_example.get_mut(f.example_index) {
            slot.push((f, s.as_ref(), e.as_ref()));
        }
    }
    dataset
        .examples
        .iter()
        .zip(&per_example)
        .map(|(ex, windows)| decode_example(dataset.paragraph(ex), windows, config))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(context_start: usize, offsets: &[(u32, u32)]) -> Feature {
        Feature {
            example_index: 0,
            window_index: 0,
            input_ids: vec![0; context_start + offsets.len() + 1],
            context_start,
            context_offsets: offsets.to_vec(),
            label: None,
        }
    }

    #[test]
    fn picks_best_valid_span() {
        let p = Paragraph::new(String::new(), "甲乙丙丁".into());
        let f = feature(2, &[(0, 1), (1, 2), (2, 3), (3, 4)]);
        // Highest start is [CLS] (invalid); the best valid pair is (3, 4) → "乙丙".
        let s = [9.0, 0.0, 0.0, 5.0, 1.0, 0.0, 0.0];
        let e = [9.0, 0.0, 0.0, 0.0, 4.0, 3.0, 0.0];
        let pred = decode_example(&p, &[(&f, &s, &e)], DecodeConfig::default()).unwrap();
        assert_eq!(pred.text, "乙丙");
        assert_eq!(pred.score, 9.0);
        assert!(!pred.fallback);
    }

    #[test]
    fn end_before_start_and_long_spans_are_rejected() {
        let p = Paragraph::new(String::new(), "甲乙丙丁".into());
        let f = feature(2, &[(0, 1), (1, 2), (2, 3), (3, 4)]);
        let s = [0.0, 0.0, 0.0, 0.0, 0.0, 9.0, 0.0];
        let e = [0.0, 0.0, 9.0, 0.0, 0.0, 1.0, 0.0];
        let cfg = DecodeConfig {
            n_best_size: 1,
            max_answer_length: 30,
        };
        // Top-1 start (5) and top-1 end (2) give end < start: fall back to exhaustive search.
        let pred = decode_example(&p, &[(&f, &s, &e)], cfg).unwrap();
        assert!(pred.fallback);
        assert_eq!(pred.text, "丁");
    }

    #[test]
    fn no_context_gives_none() {
        let p = Paragraph::new(String::new(), String::new());
        let f = feature(2, &[]);
        let s = [1.0, 2.0, 3.0];
        assert!(decode_example(&p, &[(&f, &s, &s)], DecodeConfig::default()).is_none());
    }

    #[test]
    fn top_n_is_deterministic_with_ties_and_nan() {
        assert_eq!(top_n(&[1.0, f32::NAN, 3.0, 3.0, 0.5], 3), vec![2, 3, 0]);
        assert_eq!(top_n(&[1.0, 2.0], 5), vec![1, 0]);
    }
}
