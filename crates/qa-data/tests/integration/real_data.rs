//! The real sets load, gold answers score 100, the vocab keeps its ids, and features +
//! decoding + metric together recover gold answers from oracle logits.

use std::collections::HashMap;

use qa_data::decode::{decode_dataset, DecodeConfig};
use qa_data::features::{build_features, FeatureConfig, Split};
use qa_data::metric::evaluate;
use qa_data::squad::Dataset;

use crate::common::{data_file, tokenizer, ALL_SETS};

#[test]
fn every_set_loads_and_gold_scores_100() {
    let expected_questions = [3524, 3493, 3219, 1002];
    for (set, n) in ALL_SETS.iter().zip(expected_questions) {
        let ds = Dataset::load(data_file(set)).unwrap();
        assert_eq!(ds.examples.len(), n, "{set}");
        eprintln!("{set}: {:?}", ds.report);
        let gold: HashMap<String, String> = ds
            .examples
            .iter()
            .map(|e| (e.id.clone(), e.answers[0].text.clone()))
            .collect();
        let r = evaluate(&ds, &gold);
        assert_eq!((r.em, r.f1, r.total, r.skip), (100.0, 100.0, n, 0), "{set}");
    }
}

#[test]
fn vocab_ids_survive_u2028() {
    let tok = tokenizer(false);
    assert_eq!(tok.vocab_size(), 21128);
    assert_eq!(tok.token_to_id("\u{2028}"), Some(343));
    assert_eq!(tok.token_to_id("##\u{2028}"), Some(13502));
    assert_eq!(tok.token_to_id("的"), Some(4638));
    assert_eq!(tok.id_to_token(21127).as_deref(), Some("##😎"));
    let s = tok.special_ids();
    assert_eq!((s.pad, s.unk, s.cls, s.sep), (0, 100, 101, 102));
}

#[test]
fn oracle_logits_recover_gold_answers() {
    // CMRC2018 has many long answers (521 of its answers span more than max_answer_length
    // = 30 tokens), which no decoder with HF's settings can return whole.
    for (set, floor) in [
        ("drcd/DRCD_dev.json", 99.5),
        ("cmrc2018/cmrc2018_dev.json", 94.0),
    ] {
        let ds = Dataset::load(data_file(set)).unwrap();
        let tok = tokenizer(true);
        let config = FeatureConfig {
            max_seq_length: 256,
            doc_stride: 64,
        };
        // Train features carry both the windows and the gold labels.
        let features = build_features(&ds, &tok, config, Split::Train).unwrap();
        let (mut starts, mut ends) = (Vec::new(), Vec::new());
        for f in &features {
            let (s, e) = f.label.unwrap();
            let mut sl = vec![0.0f32; f.len()];
            let mut el = vec![0.0f32; f.len()];
            if (s, e) != (0, 0) {
                sl[s] = 10.0;
                el[e] = 10.0;
            }
            starts.push(sl);
            ends.push(el);
        }
        let preds = decode_dataset(&ds, &features, &starts, &ends, DecodeConfig::default());
        let map: HashMap<String, String> = ds
            .examples
            .iter()
            .zip(&preds)
            .filter_map(|(ex, p)| p.as_ref().map(|p| (ex.id.clone(), p.text.clone())))
            .collect();
        let r = evaluate(&ds, &map);
        eprintln!("{set}: oracle EM {:.3} F1 {:.3}", r.em, r.f1);
        // Misses come only from answers that start or end inside a WordPiece token, answers
        // longer than max_answer_length and questions without a located answer.
        assert!(
            r.em > floor && r.f1 > floor,
            "{set}: EM {} F1 {}",
            r.em,
            r.f1
        );
    }
}
