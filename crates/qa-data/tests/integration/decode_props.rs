//! Decoding never panics and always returns a valid span, whatever the logits.

use proptest::prelude::*;
use qa_data::decode::{decode_example, DecodeConfig};
use qa_data::features::Feature;
use qa_data::squad::Paragraph;

fn logit() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -20.0f32..20.0,
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
        1 => Just(0.0f32),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn decoding_is_total_and_valid(
        context in "[甲乙丙丁a-c ]{0,40}",
        question_len in 0usize..6,
        window_start in 0usize..40,
        window_len in 0usize..40,
        n_best_size in 1usize..25,
        max_answer_length in 1usize..8,
        extra_logits in 0usize..5,
        logits in proptest::collection::vec((logit(), logit()), 0..100),
    ) {
        let p = Paragraph::new(String::new(), context);
        let n = p.char_len();
        let ws = window_start.min(n);
        let we = (ws + window_len).min(n);
        // One token per char.
        let offsets: Vec<(u32, u32)> = (ws..we).map(|i| (i as u32, i as u32 + 1)).collect();
        let context_start = question_len + 2;
        let f = Feature {
            example_index: 0,
            window_index: 0,
            input_ids: vec![1; context_start + offsets.len() + 1],
            context_start,
            context_offsets: offsets,
            label: None,
        };
        // Logits may be shorter or longer (padding) than the feature.
        let len = (f.len() + extra_logits).min(logits.len());
        let s: Vec<f32> = logits[..len].iter().map(|x| x.0).collect();
        let e: Vec<f32> = logits[..len].iter().map(|x| x.1).collect();
        let cfg = DecodeConfig { n_best_size, max_answer_length };
        let pred = decode_example(&p, &[(&f, &s, &e)], cfg);
        let usable = f.context_range().start < len && !f.context_offsets.is_empty();
        prop_assert_eq!(pred.is_some(), usable);
        if let Some(pred) = pred {
            prop_assert!(pred.start_char < pred.end_char);
            prop_assert!(pred.end_char - pred.start_char <= max_answer_length);
            prop_assert!(pred.start_char >= ws && pred.end_char <= we);
            prop_assert_eq!(pred.text.as_str(), p.slice_chars(pred.start_char, pred.end_char));
        }
    }
}
