//! BERT WordPiece tokenization, built on HF's `tokenizers` crate so the normaliser,
//! pre-tokeniser and WordPiece model are the very code behind `BertTokenizerFast`.
//!
//! A model directory gives either `tokenizer.json` (used as is) or `vocab.txt` plus an
//! optional `tokenizer_config.json` (`do_lower_case`, default true like HF's BertTokenizer;
//! `strip_accents`, default: follow lower-casing; `tokenize_chinese_chars`, default true).
//!
//! `vocab.txt` is split on `\n` only (a trailing `\r` is dropped, as Python's universal
//! newlines would): the bert-base-chinese vocab has U+2028 as a token, and a line splitter
//! that honours it shifts every id after it.
//!
//! We encode question and context separately, without special tokens, and assemble
//! `[CLS] q [SEP] c [SEP]` ourselves (see `features`): for BERT normalisation and
//! pre-tokenisation are per sequence, so this equals HF's pair encoding while letting a
//! paragraph shared by many questions be tokenised once.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{DataError, Result};

/// Token ids and char offsets `(start, end)` into the encoded text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub offsets: Vec<(u32, u32)>,
}

/// Options of a tokenizer built from `vocab.txt` (HF `tokenizer_config.json` keys).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BertTokenizerOptions {
    pub do_lower_case: bool,
    pub strip_accents: Option<bool>,
    pub tokenize_chinese_chars: bool,
    #[serde(deserialize_with = "token_name")]
    pub unk_token: String,
    #[serde(deserialize_with = "token_name")]
    pub sep_token: String,
    #[serde(deserialize_with = "token_name")]
    pub pad_token: String,
    #[serde(deserialize_with = "token_name")]
    pub cls_token: String,
    #[serde(deserialize_with = "token_name")]
    pub mask_token: String,
}

impl Default for BertTokenizerOptions {
    fn default() -> Self {
        Self {
            do_lower_case: true,
            strip_accents: None,
            tokenize_chinese_chars: true,
            unk_token: "[UNK]".into(),
            sep_token: "[SEP]".into(),
            pad_token: "[PAD]".into(),
            cls_token: "[CLS]".into(),
            mask_token: "[MASK]".into(),
        }
    }
}

/// Special tokens appear as plain strings or as serialised `AddedToken`s (`{"content": …}`).
fn token_name<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Token {
        Plain(String),
        Added { content: String },
    }
    Ok(match Token::deserialize(d)? {
        Token::Plain(s) | Token::Added { content: s } => s,
    })
}

/// The special token ids feature building needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialIds {
    pub cls: u32,
    pub sep: u32,
    pub pad: u32,
    pub unk: u32,
}

/// A BERT WordPiece tokenizer.
#[derive(Debug, Clone)]
pub struct BertTokenizer {
    inner: Tokenizer,
    special: SpecialIds,
    vocab_size: usize,
    source: PathBuf,
}

impl BertTokenizer {
    /// Loads from a HF model directory: `tokenizer.json` if present, else `vocab.txt` with
    /// `tokenizer_config.json` (optional).
    pub fn from_model_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let tokenizer_json = dir.join("tokenizer.json");
        if tokenizer_json.is_file() {
            return Self::from_tokenizer_json(&tokenizer_json);
        }
        let vocab = dir.join("vocab.txt");
        if !vocab.is_file() {
            return Err(DataError::Config(format!(
                "{}: expected tokenizer.json or vocab.txt in this model directory",
                dir.display()
            )));
        }
        let config = dir.join("tokenizer_config.json");
        if !config.is_file() {
            return Self::from_vocab_file(&vocab, &BertTokenizerOptions::default());
        }
        let bytes = std::fs::read(&config).map_err(|e| DataError::io(&config, e))?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let options: BertTokenizerOptions = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| DataError::from_json(&config, e))?;
        // The special tokens may come from the config: name it beside the vocabulary.
        Self::from_vocab_file(&vocab, &options).map_err(|e| match e {
            DataError::Config(m) => DataError::Config(format!(
                "{m} (with the tokens and options of {})",
                config.display()
            )),
            other => other,
        })
    }

    /// Loads a serialised `tokenizers` pipeline. Special tokens are looked up by the BERT names.
    ///
    /// A `tokenizer.json` saved after tokenizer calls carries their `padding` and
    /// `truncation` (a run_qa fine-tune leaves `{"Fixed": 384}` and `OnlySecond`;
    /// sentence-transformers' all-MiniLM-L6-v2 ships `Fixed 128` / `LongestFirst 128`).
    /// HF ignores that state, since every call sets its own; so do we: features build their
    /// windows themselves, from unpadded, untruncated encodings.
    pub fn from_tokenizer_json(path: &Path) -> Result<Self> {
        // The tokenizers crate panics on some malformed files (found by fuzzing: an
        // `unwrap` in its decoder deserialisation); contain that as an error naming the file.
        let loaded = std::panic::catch_unwind(|| Tokenizer::from_file(path));
        let mut inner = match loaded {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                return Err(DataError::Tokenizer(format!(
                    "{}: not a valid tokenizer.json: {e}",
                    path.display()
                )))
            }
            Err(_) => {
                return Err(DataError::Tokenizer(format!(
                "{}: not a valid tokenizer.json (the tokenizers library failed while reading it)",
                path.display()
            )))
            }
        };
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| DataError::Tokenizer(format!("{}: {e}", path.display())))?;
        let names = BertTokenizerOptions::default();
        Self::finish(inner, &names, path)
    }

    /// Builds the `BertTokenizerFast` pipeline from a WordPiece vocabulary file.
    pub fn from_vocab_file(path: &Path, options: &BertTokenizerOptions) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let vocab = parse_vocab(&text);
        if vocab.is_empty() {
            return Err(DataError::Line {
                path: path.to_path_buf(),
                line: 1,
                message: "the vocabulary is empty; expected one WordPiece token per line".into(),
            });
        }
        let mut map = ahash::AHashMap::with_capacity(vocab.len());
        for (i, token) in vocab.iter().enumerate() {
            // A repeated token keeps its last id, like HF's dict-based load_vocab.
            map.insert(token.to_string(), i as u32);
        }
        if !map.contains_key(options.unk_token.as_str()) {
            return Err(DataError::Config(format!(
                "{}: the unknown token {:?} is not in the vocabulary",
                path.display(),
                options.unk_token
            )));
        }
        let model = WordPiece::builder()
            .vocab(map)
            .unk_token(options.unk_token.clone())
            .continuing_subword_prefix("##".into())
            .max_input_chars_per_word(100)
            .build()
            .map_err(|e| DataError::Tokenizer(format!("{}: {e}", path.display())))?;
        let mut inner = Tokenizer::new(model);
        inner.with_normalizer(Some(BertNormalizer::new(
            true,
            options.tokenize_chinese_chars,
            options.strip_accents,
            options.do_lower_case,
        )));
        inner.with_pre_tokenizer(Some(BertPreTokenizer));
        // HF registers the special tokens as added tokens: a literal "[SEP]" in a text is
        // the special token, not five characters.
        let specials: Vec<AddedToken> = [
            &options.pad_token,
            &options.unk_token,
            &options.cls_token,
            &options.sep_token,
            &options.mask_token,
        ]
        .into_iter()
        .filter(|t| inner.token_to_id(t).is_some())
        .map(|t| AddedToken::from(t.clone(), true))
        .collect();
        inner.add_special_tokens(&specials);
        Self::finish(inner, options, path)
    }

    fn finish(inner: Tokenizer, names: &BertTokenizerOptions, source: &Path) -> Result<Self> {
        let id = |name: &str| {
            inner.token_to_id(name).ok_or_else(|| {
                DataError::Config(format!(
                    "{}: the special token {name:?} is not in the vocabulary (a BERT vocabulary needs [CLS], [SEP], [PAD], [UNK])",
                    source.display()
                ))
            })
        };
        let special = SpecialIds {
            cls: id(&names.cls_token)?,
            sep: id(&names.sep_token)?,
            pad: id(&names.pad_token)?,
            unk: id(&names.unk_token)?,
        };
        let vocab_size = inner.get_vocab_size(true);
        Ok(Self {
            inner,
            special,
            vocab_size,
            source: source.to_path_buf(),
        })
    }

    /// Encodes one text without special tokens; offsets are char offsets into `text`.
    pub fn encode(&self, text: &str) -> Result<Encoded> {
        // A tokenizer.json we accepted could still hold a pipeline the library panics on;
        // contain that too, naming the file.
        let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.inner.encode_char_offsets(text, false)
        }))
        .map_err(|_| {
            DataError::Tokenizer(format!(
                "{}: the tokenizers library failed on this tokenizer",
                self.source.display()
            ))
        })?;
        let enc =
            encoded.map_err(|e| DataError::Tokenizer(format!("{}: {e}", self.source.display())))?;
        Ok(Encoded {
            ids: enc.get_ids().to_vec(),
            offsets: enc
                .get_offsets()
                .iter()
                .map(|&(s, e)| (s as u32, e as u32))
                .collect(),
        })
    }

    pub fn special_ids(&self) -> SpecialIds {
        self.special
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The file the tokenizer came from.
    pub fn source(&self) -> &Path {
        &self.source
    }
}

/// Splits a `vocab.txt` into tokens: on `\n` only, dropping one trailing `\r` per line and
/// the empty string after a final newline.
pub fn parse_vocab(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    if text.ends_with('\n') {
        lines.pop();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocab_splits_on_newline_only() {
        let v = parse_vocab("[PAD]\n\u{2028}\n##\u{2028}\r\na\n");
        assert_eq!(v, ["[PAD]", "\u{2028}", "##\u{2028}", "a"]);
        assert_eq!(parse_vocab("a\nb"), ["a", "b"]);
    }
}
