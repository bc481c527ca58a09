//! SQuAD-format datasets (DRCD, CMRC2018 squad-style): `data[].paragraphs[].qas[]`.
//!
//! Offsets in these files are Python string indices, i.e. Unicode scalar values ("chars"),
//! never bytes. Every paragraph keeps a char→byte table so that slicing by char offsets
//! (answers, decoded spans) costs nothing.
//!
//! Validation follows what a careful user of HF `run_qa` would want: an `answer_start` that
//! does not point at the answer text is repaired to the nearest occurrence of the text; an
//! answer whose text is not in the context keeps its question for evaluation (the official
//! metric scores it against the gold text) but the question is left out of training when no
//! answer of it can be located.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::error::{DataError, Result};

/// One context paragraph.
#[derive(Debug, Clone)]
pub struct Paragraph {
    pub title: String,
    pub context: String,
    /// `char_to_byte[i]` = byte offset of char `i`; one extra entry = `context.len()`.
    char_to_byte: Vec<u32>,
}

impl Paragraph {
    pub fn new(title: String, context: String) -> Self {
        let mut char_to_byte: Vec<u32> = context.char_indices().map(|(b, _)| b as u32).collect();
        char_to_byte.push(context.len() as u32);
        Self {
            title,
            context,
            char_to_byte,
        }
    }

    /// Number of chars (Python `len(context)`).
    pub fn char_len(&self) -> usize {
        self.char_to_byte.len() - 1
    }

    /// `context[start:end]` with Python semantics for char offsets (clamped, empty when end <= start).
    pub fn slice_chars(&self, start: usize, end: usize) -> &str {
        let n = self.char_len();
        let (s, e) = (start.min(n), end.min(n));
        if e <= s {
            return "";
        }
        &self.context[self.char_to_byte[s] as usize..self.char_to_byte[e] as usize]
    }

    /// Char index of a byte offset that lies on a char boundary.
    fn byte_to_char(&self, byte: usize) -> usize {
        self.char_to_byte.partition_point(|&b| (b as usize) < byte)
    }
}

/// One gold answer. `start` is a char offset into the paragraph's context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    pub start: usize,
    /// False when the text does not occur in the context at all.
    pub located: bool,
}

impl Answer {
    /// End char offset (exclusive) of a located answer.
    pub fn end(&self) -> usize {
        self.start + self.text.chars().count()
    }
}

/// One question with its gold answers.
#[derive(Debug, Clone)]
pub struct Example {
    pub id: String,
    pub question: String,
    /// Index into `Dataset::paragraphs`.
    pub paragraph: usize,
    pub answers: Vec<Answer>,
}

impl Example {
    /// The answer used for training labels: HF takes `answers[0]`; we take the first answer
    /// that could be located, so one bad annotation does not poison the labels. `None` when
    /// no answer is in the context (the question is then evaluation-only).
    pub fn train_answer(&self) -> Option<&Answer> {
        self.answers.iter().find(|a| a.located)
    }
}

/// What loading found and fixed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoadReport {
    pub articles: usize,
    pub paragraphs: usize,
    pub questions: usize,
    pub answers: usize,
    /// Answers whose `answer_start` did not point at their text and were moved to the
    /// nearest occurrence.
    pub repaired_answer_starts: usize,
    /// Answers whose text does not occur in the context.
    pub unlocatable_answers: usize,
    /// Questions kept for evaluation but left out of training (no answer located).
    pub eval_only_questions: usize,
}

/// A loaded, validated dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub path: PathBuf,
    pub paragraphs: Vec<Paragraph>,
    pub examples: Vec<Example>,
    pub report: LoadReport,
}

impl Dataset {
    /// Reads and validates a SQuAD-format JSON file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        Self::from_json_bytes(path, &bytes)
    }

    /// Parses SQuAD-format JSON; `path` is used in error messages only.
    pub fn from_json_bytes(path: &Path, bytes: &[u8]) -> Result<Self> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let raw: RawFile =
            serde_path_to_error::deserialize(&mut de).map_err(|e| DataError::from_json(path, e))?;
        de.end().map_err(|e| DataError::Json {
            path: path.to_path_buf(),
            json_path: "the end of the file".into(),
            line: e.line(),
            column: e.column(),
            message: "trailing characters after the top-level JSON object".into(),
        })?;
        Self::from_raw(path, raw)
    }

    fn from_raw(path: &Path, raw: RawFile) -> Result<Self> {
        let mut report = LoadReport {
            articles: raw.data.len(),
            ..LoadReport::default()
        };
        let mut paragraphs = Vec::new();
        let mut examples = Vec::new();
        let mut seen_ids: HashMap<String, String> = HashMap::new();
        for (ai, article) in raw.data.into_iter().enumerate() {
            let title = article.title.unwrap_or_default();
            for (pi, raw_paragraph) in article.paragraphs.into_iter().enumerate() {
                let paragraph = Paragraph::new(title.clone(), raw_paragraph.context);
                let paragraph_index = paragraphs.len();
                for (qi, qa) in raw_paragraph.qas.into_iter().enumerate() {
                    let qa_path = format!("data[{ai}].paragraphs[{pi}].qas[{qi}]");
                    if qa.answers.is_empty() {
                        return Err(DataError::invalid(
                            path,
                            format!("{qa_path}.answers"),
                            "expected at least one answer (unanswerable SQuAD 2.0 questions are not supported)",
                        ));
                    }
                    if let Some(first) = seen_ids.insert(qa.id.clone(), qa_path.clone()) {
                        return Err(DataError::invalid(
                            path,
                            format!("{qa_path}.id"),
                            format!("question id {:?} is used twice (first at {first}); ids must be unique", qa.id),
                        ));
                    }
                    let mut answers = Vec::with_capacity(qa.answers.len());
                    for (ki, raw_answer) in qa.answers.into_iter().enumerate() {
                        if raw_answer.text.is_empty() {
                            return Err(DataError::invalid(
                                path,
                                format!("{qa_path}.answers[{ki}].text"),
                                "expected a non-empty answer text",
                            ));
                        }
                        let answer =
                            locate_answer(&paragraph, raw_answer.text, raw_answer.answer_start);
                        report.answers += 1;
                        if !answer.located {
                            report.unlocatable_answers += 1;
                        } else if answer.start as i64 != raw_answer.answer_start {
                            report.repaired_answer_starts += 1;
                        }
                        answers.push(answer);
                    }
                    let example = Example {
                        id: qa.id,
                        question: qa.question,
                        paragraph: paragraph_index,
                        answers,
                    };
                    if example.train_answer().is_none() {
                        report.eval_only_questions += 1;
                    }
                    examples.push(example);
                }
                paragraphs.push(paragraph);
            }
        }
        report.paragraphs = paragraphs.len();
        report.questions = examples.len();
        Ok(Self {
            path: path.to_path_buf(),
            paragraphs,
            examples,
            report,
        })
    }

    pub fn paragraph(&self, example: &Example) -> &Paragraph {
        &self.paragraphs[example.paragraph]
    }
}

/// Checks `answer_start`; when it does not point at the text, moves it to the occurrence of
/// the text nearest to the given start (ties: the earlier one).
fn locate_answer(paragraph: &Paragraph, text: String, given_start: i64) -> Answer {
    let n_chars = text.chars().count();
    if given_start >= 0 {
        let s = given_start as usize;
        if s + n_chars <= paragraph.char_len() && paragraph.slice_chars(s, s + n_chars) == text {
            return Answer {
                text,
                start: s,
                located: true,
            };
        }
    }
    let mut best: Option<usize> = None;
    for (byte, _) in paragraph.context.match_indices(text.as_str()) {
        let c = paragraph.byte_to_char(byte);
        let closer = match best {
            None => true,
            Some(b) => (c as i64 - given_start).abs() < (b as i64 - given_start).abs(),
        };
        if closer {
            best = Some(c);
        }
    }
    match best {
        Some(start) => Answer {
            text,
            start,
            located: true,
        },
        None => Answer {
            text,
            start: given_start.max(0) as usize,
            located: false,
        },
    }
}

#[derive(Deserialize)]
struct RawFile {
    data: Vec<RawArticle>,
}

#[derive(Deserialize)]
struct RawArticle {
    #[serde(default)]
    title: Option<String>,
    paragraphs: Vec<RawParagraph>,
}

#[derive(Deserialize)]
struct RawParagraph {
    context: String,
    qas: Vec<RawQa>,
}

#[derive(Deserialize)]
struct RawQa {
    #[serde(deserialize_with = "string_or_integer")]
    id: String,
    question: String,
    answers: Vec<RawAnswer>,
}

#[derive(Deserialize)]
struct RawAnswer {
    text: String,
    answer_start: i64,
}

/// Question ids are strings in DRCD/CMRC2018, integers in some home-made sets.
fn string_or_integer<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    struct IdVisitor;
    impl Visitor<'_> for IdVisitor {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a question id (string or integer)")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<String, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(IdVisitor)
}

/// Reads a predictions file: a JSON object `{question id: answer text}` as written by HF
/// `run_qa` and by `sweep predict`.
pub fn load_predictions(path: impl AsRef<Path>) -> Result<HashMap<String, String>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let raw: HashMap<String, serde_json::Value> =
        serde_path_to_error::deserialize(&mut de).map_err(|e| DataError::from_json(path, e))?;
    raw.into_iter()
        .map(|(id, v)| match v {
            serde_json::Value::String(s) => Ok((id, s)),
            // The official script does str(prediction); numbers are the only other sane case.
            serde_json::Value::Number(n) => Ok((id, n.to_string())),
            other => Err(DataError::invalid(
                path,
                id.clone(),
                format!("expected the answer text as a string, found {other}"),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(json: &str) -> Result<Dataset> {
        Dataset::from_json_bytes(Path::new("t.json"), json.as_bytes())
    }

    #[test]
    fn repairs_start_to_nearest_occurrence() {
        let ds = load(
            r#"{"data":[{"title":"t","paragraphs":[{"context":"甲乙甲乙甲乙","qas":[
            {"id":"a","question":"q","answers":[{"text":"甲乙","answer_start":3},{"text":"甲乙","answer_start":2},{"text":"丙","answer_start":0}]}]}]}]}"#,
        )
        .unwrap();
        let a = &ds.examples[0].answers;
        assert_eq!((a[0].start, a[0].located), (2, true)); // 3 → nearest is 2 (tie 2/4 → earlier)
        assert_eq!((a[1].start, a[1].located), (2, true));
        assert!(!a[2].located);
        assert_eq!(ds.report.repaired_answer_starts, 1);
        assert_eq!(ds.report.unlocatable_answers, 1);
        assert_eq!(ds.report.eval_only_questions, 0);
        assert_eq!(ds.examples[0].train_answer().unwrap().start, 2);
    }

    #[test]
    fn question_without_locatable_answer_is_eval_only() {
        let ds = load(
            r#"{"data":[{"paragraphs":[{"context":"abc","qas":[{"id":1,"question":"q","answers":[{"text":"x","answer_start":0}]}]}]}]}"#,
        )
        .unwrap();
        assert_eq!(ds.examples[0].id, "1");
        assert!(ds.examples[0].train_answer().is_none());
        assert_eq!(ds.report.eval_only_questions, 1);
    }

    #[test]
    fn slices_by_chars() {
        let p = Paragraph::new(String::new(), "《塘沽協定》abc".into());
        assert_eq!(p.char_len(), 9);
        assert_eq!(p.slice_chars(1, 5), "塘沽協定");
        assert_eq!(p.slice_chars(5, 3), "");
        assert_eq!(p.slice_chars(7, 100), "bc");
    }
}
