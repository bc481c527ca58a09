//! EM and F1 exactly as the official CMRC2018 evaluation script (`cmrc2018_evaluate.py`,
//! "v5 - special"), which DRCD results are also reported with.
//!
//! Quirks kept on purpose, because published numbers were computed with them:
//! - normalisation is `lower().strip()`; EM then deletes the listed punctuation marks only,
//!   so inner spaces survive;
//! - the list holds "……" as one two-char entry, so a single "…" is never removed;
//! - for F1 a punctuation mark is *dropped* without ending the current run of non-Chinese
//!   characters ("a-b" is one NLTK token "ab");
//! - F1 uses the longest common *contiguous* token run, not a bag of tokens;
//! - a question without a prediction counts 0 in the denominator.

use std::collections::HashMap;

use serde::Serialize;

use crate::squad::Dataset;
use crate::treebank::{is_python_space, word_tokenize_into};

/// The script's `sp_char` list, minus "……", which as a two-char entry never equals a char.
pub fn is_official_punctuation(c: char) -> bool {
    matches!(
        c,
        '-' | ':'
            | '_'
            | '*'
            | '^'
            | '/'
            | '\\'
            | '~'
            | '`'
            | '+'
            | '='
            | '，'
            | '。'
            | '：'
            | '？'
            | '！'
            | '“'
            | '”'
            | '；'
            | '’'
            | '《'
            | '》'
            | '·'
            | '、'
            | '「'
            | '」'
            | '（'
            | '）'
            | '－'
            | '～'
            | '『'
            | '』'
    )
}

/// The script's Chinese test `[\u4e00-\u9fa5]`.
fn is_cjk(c: char) -> bool {
    ('\u{4e00}'..='\u{9fa5}').contains(&c)
}

/// `str(s).lower().strip()`.
fn lower_strip(s: &str) -> String {
    s.to_lowercase().trim_matches(is_python_space).to_string()
}

/// `remove_punctuation`: the string EM compares.
pub fn normalize_for_em(s: &str) -> String {
    lower_strip(s)
        .chars()
        .filter(|&c| !is_official_punctuation(c))
        .collect()
}

/// A token of the mixed segmentation: one Chinese character, or an NLTK word. Keeping
/// characters unboxed avoids an allocation per token (most tokens in Chinese QA).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    Word(String),
}

/// `mixed_segmentation(s, rm_punc=True)`: the tokens F1 compares.
fn segment(s: &str) -> Vec<Token> {
    let s = lower_strip(s);
    let mut out = Vec::with_capacity(s.len() / 3 + 1);
    let mut run = String::new();
    let mut words = Vec::new();
    let mut flush = |run: &mut String, out: &mut Vec<Token>| {
        if !run.is_empty() {
            word_tokenize_into(run, &mut words);
            out.extend(words.drain(..).map(Token::Word));
            run.clear();
        }
    };
    for c in s.chars() {
        if is_official_punctuation(c) {
            continue;
        }
        if is_cjk(c) {
            flush(&mut run, &mut out);
            out.push(Token::Char(c));
        } else {
            run.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// `mixed_segmentation(s, rm_punc=True)` as strings.
pub fn mixed_segmentation(s: &str) -> Vec<String> {
    segment(s)
        .into_iter()
        .map(|t| match t {
            Token::Char(c) => c.to_string(),
            Token::Word(w) => w,
        })
        .collect()
}

/// Length of the longest common contiguous run of tokens (`find_lcs`).
fn longest_common_run<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    let mut best = 0;
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y { prev[j] + 1 } else { 0 };
            best = best.max(cur[j + 1]);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    best
}

/// `calc_em_score`: 1.0 when the prediction equals any answer after normalisation.
pub fn exact_match(answers: &[impl AsRef<str>], prediction: &str) -> f64 {
    let p = normalize_for_em(prediction);
    if answers.iter().any(|a| normalize_for_em(a.as_ref()) == p) {
        1.0
    } else {
        0.0
    }
}

/// `calc_f1_score`: the best F1 over all answers, in [0, 1].
pub fn f1(answers: &[impl AsRef<str>], prediction: &str) -> f64 {
    // The script segments the prediction once per answer; once is enough.
    let pred = segment(prediction);
    let mut best = 0.0f64;
    for a in answers {
        let gold = segment(a.as_ref());
        let lcs = longest_common_run(&gold, &pred);
        if lcs == 0 {
            continue;
        }
        // Same float operations as the script, so scores agree to the last bit.
        let precision = lcs as f64 / pred.len() as f64;
        let recall = lcs as f64 / gold.len() as f64;
        let score = (2.0 * precision * recall) / (precision + recall);
        best = best.max(score);
    }
    best
}

/// The score of one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuestionScore {
    pub id: String,
    pub em: f64,
    pub f1: f64,
    pub answered: bool,
}

/// The official script's output: EM and F1 in percent, TOTAL questions, SKIP = questions
/// without a prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    #[serde(rename = "EM")]
    pub em: f64,
    #[serde(rename = "F1")]
    pub f1: f64,
    #[serde(rename = "TOTAL")]
    pub total: usize,
    #[serde(rename = "SKIP")]
    pub skip: usize,
    #[serde(skip)]
    pub per_question: Vec<QuestionScore>,
}

impl Evaluation {
    /// EM/F1 rounded to 3 decimals like the script's `'%.3f'`.
    pub fn rounded(&self) -> Self {
        let r = |x: f64| format!("{x:.3}").parse::<f64>().unwrap_or(x);
        Self {
            em: r(self.em),
            f1: r(self.f1),
            total: self.total,
            skip: self.skip,
            per_question: self.per_question.clone(),
        }
    }
}

/// Scores `predictions` (question id → answer text) against every question of `dataset`.
/// Like the script, ids are looked up after `strip()`.
pub fn evaluate(dataset: &Dataset, predictions: &HashMap<String, String>) -> Evaluation {
    use rayon::prelude::*;
    let per_question: Vec<QuestionScore> = dataset
        .examples
        .par_iter()
        .map(|ex| {
            let id = ex.id.trim_matches(is_python_space);
            let answers: Vec<&str> = ex.answers.iter().map(|a| a.text.as_str()).collect();
            match predictions.get(id) {
                Some(p) => QuestionScore {
                    id: ex.id.clone(),
                    em: exact_match(&answers, p),
                    f1: f1(&answers, p),
                    answered: true,
                },
                None => QuestionScore {
                    id: ex.id.clone(),
                    em: 0.0,
                    f1: 0.0,
                    answered: false,
                },
            }
        })
        .collect();
    // Summed in dataset order, as the script does, so the float result is identical.
    let (mut em, mut f1_sum) = (0.0, 0.0);
    for q in &per_question {
        em += q.em;
        f1_sum += q.f1;
    }
    let total = per_question.len();
    let skip = per_question.iter().filter(|q| !q.answered).count();
    let denom = total.max(1) as f64;
    Evaluation {
        em: 100.0 * em / denom,
        f1: 100.0 * f1_sum / denom,
        total,
        skip,
        per_question,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn worked_examples_from_the_issue() {
        let a = ["《塘沽協定》", "塘沽協定"];
        assert_eq!(exact_match(&a, "《塘沽協定》"), 1.0);
        assert_eq!(f1(&a, "《塘沽協定》"), 1.0);

        assert_eq!(exact_match(&["塘沽協定"], "塘沽協定簽訂"), 0.0);
        assert!(close(f1(&["塘沽協定"], "塘沽協定簽訂"), 0.8));

        assert!(close(f1(&["1933年5月31日"], "1933年"), 0.5));

        assert_eq!(exact_match(&["長老制"], "長老制。"), 1.0);

        assert_eq!(exact_match(&["天主教"], "…天主教"), 0.0);
        assert!(close(f1(&["天主教"], "…天主教"), 0.857_142_857));
    }

    #[test]
    fn quirks_are_kept() {
        // Inner spaces survive EM normalisation; outer ones are stripped; case is folded.
        assert_eq!(exact_match(&["New York"], " new york "), 1.0);
        assert_eq!(exact_match(&["NewYork"], "new york"), 0.0);
        // The two-char "……" never matches a single char; "……" as two "…" stays.
        assert_eq!(normalize_for_em("a……b"), "a……b");
        // Punctuation is dropped inside a non-Chinese run without splitting it.
        assert_eq!(mixed_segmentation("a-b 中c"), ["ab", "中", "c"]);
        // F1 is contiguous: 甲乙丙 vs 甲丙 share only a run of 1.
        assert!(close(
            f1(&["甲乙丙"], "甲丙"),
            2.0 * (0.5 * (1.0 / 3.0)) / (0.5 + 1.0 / 3.0)
        ));
        assert_eq!(f1(&["。"], "。"), 0.0);
    }

    #[test]
    fn lcs_is_contiguous() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            longest_common_run(&s(&["a", "b", "c", "d"]), &s(&["x", "b", "c", "y", "d"])),
            2
        );
        assert_eq!(longest_common_run(&s(&[]), &s(&["a"])), 0);
    }
}
