//! Character vocabularies for models trained from scratch (the `tiny`/`mini` presets and the
//! synthetic demo). bert-base-chinese's 21,128-row embedding dominates a tiny model's step
//! time (its gradient and AdamW update are dense); a vocabulary of the characters the data
//! actually uses is a few hundred rows and gives the same tokenisation of Chinese text.
//!
//! Layout: `[PAD] [UNK] [CLS] [SEP] [MASK]`, then every character seen (sorted), then `##c`
//! for every non-Chinese character (WordPiece continues words such as "1988" as
//! `1 ##9 ##8 ##8`). Chinese characters are always split off by the BERT normaliser, so they
//! never need a `##` form.

use std::collections::BTreeSet;

use crate::squad::Dataset;
use crate::treebank::is_python_space;

pub const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// BERT's notion of a Chinese character (the CJK blocks its normaliser isolates).
fn is_bert_chinese(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

/// Builds a character vocabulary from the contexts and questions of `datasets`.
pub fn build_char_vocab(datasets: &[&Dataset], lowercase: bool) -> Vec<String> {
    let mut chars = BTreeSet::new();
    let mut add = |text: &str| {
        for c in text.chars() {
            if is_python_space(c) || c.is_control() || c == '\u{fffd}' {
                continue;
            }
            if lowercase {
                chars.extend(c.to_lowercase());
            } else {
                chars.insert(c);
            }
        }
    };
    for ds in datasets {
        for p in &ds.paragraphs {
            add(&p.context);
        }
        for ex in &ds.examples {
            add(&ex.question);
        }
    }
    let mut vocab: Vec<String> = SPECIAL_TOKENS.iter().map(|s| s.to_string()).collect();
    vocab.extend(chars.iter().map(|c| c.to_string()));
    vocab.extend(
        chars
            .iter()
            .filter(|c| !is_bert_chinese(**c))
            .map(|c| format!("##{c}")),
    );
    vocab
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::tokenizer::{BertTokenizer, BertTokenizerOptions};

    #[test]
    fn synthetic_data_has_no_unknown_tokens() {
        let json = crate::synth::generate(300, 4);
        let ds = Dataset::from_json_bytes(Path::new("s"), json.as_bytes()).unwrap();
        let vocab = build_char_vocab(&[&ds], true);
        assert_eq!(&vocab[..5], &SPECIAL_TOKENS);
        assert!(vocab.contains(&"##9".to_string()) && !vocab.contains(&"##的".to_string()));
        let path = std::env::temp_dir().join(format!("vocab-test-{}.txt", std::process::id()));
        std::fs::write(&path, vocab.join("\n") + "\n").unwrap();
        let tok = BertTokenizer::from_vocab_file(&path, &BertTokenizerOptions::default()).unwrap();
        let unk = tok.special_ids().unk;
        for p in &ds.paragraphs {
            let enc = tok.encode(&p.context).unwrap();
            assert!(!enc.ids.contains(&unk), "{}", p.context);
        }
        // Numbers continue as WordPieces.
        let enc = tok.encode("1988年").unwrap();
        assert_eq!(enc.ids.len(), 5);
    }
}
