//! Studies: the bad-YAML corpus (`bad-studies/*.yaml`, each naming the message parts it
//! expects on its first line), expansion order, and a property test that no input panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use spec::Study;

const GOOD: &str = r#"
name: hw
base:
  model: {preset: tiny, vocab: v.txt}
  model_config: {hidden_dropout_prob: 0.1}
  data: {train: t.json, eval: e.json}
  train: {learning_rate: 3.0e-5, batch_size: 4}
grid:
  train.learning_rate: [3.0e-5, 5.0e-5]
  train.batch_size: [4, 8]
ablations:
  - name: dropout-0.2
    set: {model_config.hidden_dropout_prob: 0.2, model_config.attention_probs_dropout_prob: 0.2}
  - {name: pooler-5, set: {model_config.pooler_num_fc_layers: 5}}
seeds: [1, 2]
claims:
  - {variant: dropout-0.2, metric: f1, expect: lower}
  - {variant: pooler-5, metric: f1, expect: same, margin: 0.5}
"#;

#[test]
fn bad_study_corpus_gives_the_expected_messages() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-studies");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "corpus has {} cases", files.len());
    let mut failures = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let first = text.lines().next().unwrap();
        let expected = first
            .strip_prefix("# expect: ")
            .expect("first line: # expect: …");
        let err = match Study::from_yaml_file(&f) {
            Ok(_) => panic!("{}: accepted", f.display()),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(&f.display().to_string()),
            "{}: error does not name the file: {err}",
            f.display()
        );
        for part in expected.split(" | ") {
            if !err.contains(part) {
                failures.push(format!("{}: expected {part:?} in\n  {err}", f.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn expansion_order_is_grid_then_variant_then_seed() {
    let s = Study::from_yaml_str(GOOD, "good.yaml").unwrap();
    let trials = s.expand().unwrap();
    // 4 grid points × (baseline + 2 ablations) × 2 seeds.
    assert_eq!(trials.len(), 24);
    let names: Vec<(String, u64)> = trials.iter().map(|t| (t.variant.clone(), t.seed)).collect();
    assert_eq!(
        names[0],
        ("learning_rate=0.00003,batch_size=4/baseline".into(), 1)
    );
    assert_eq!(
        names[1],
        ("learning_rate=0.00003,batch_size=4/baseline".into(), 2)
    );
    assert_eq!(
        names[2],
        ("learning_rate=0.00003,batch_size=4/dropout-0.2".into(), 1)
    );
    assert_eq!(
        names[6],
        ("learning_rate=0.00003,batch_size=8/baseline".into(), 1)
    );
    assert_eq!(
        names[12],
        ("learning_rate=0.00005,batch_size=4/baseline".into(), 1)
    );
    assert!(trials.iter().enumerate().all(|(i, t)| t.ordinal == i));
    let t = &trials[2];
    assert_eq!(t.ablation, "dropout-0.2");
    assert_eq!(t.config.model_config["hidden_dropout_prob"], 0.2);
    assert_eq!(t.config.model_config["attention_probs_dropout_prob"], 0.2);
    assert_eq!(
        (t.config.train.learning_rate, t.config.train.batch_size),
        (3e-5, 4)
    );
    assert_eq!(t.config.train.seed, 1);
    assert_eq!(trials[7].config.train.batch_size, 8);
    assert_eq!(t.params.len(), 4, "{:?}", t.params);
    assert_eq!(s.variant_names().len(), 12);
    assert_eq!(s.variant_names()[0], trials[0].variant);
}

#[test]
fn without_a_grid_the_baseline_comes_first() {
    let text = GOOD.replace(
        "grid:\n  train.learning_rate: [3.0e-5, 5.0e-5]\n  train.batch_size: [4, 8]\n",
        "",
    );
    let s = Study::from_yaml_str(&text, "g.yaml").unwrap();
    let v: Vec<String> = s
        .expand()
        .unwrap()
        .iter()
        .map(|t| t.variant.clone())
        .collect();
    assert_eq!(
        v,
        [
            "baseline",
            "baseline",
            "dropout-0.2",
            "dropout-0.2",
            "pooler-5",
            "pooler-5"
        ]
    );
    assert_eq!(s.claims.len(), 2);
}

#[test]
fn shipped_experiments_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml")
            && p.file_name().is_some_and(|f| f != "references.yaml")
        {
            Study::from_yaml_file(&p).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 4, "found {n} studies");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
    #[test]
    fn any_text_is_an_error_or_a_study(text in "\\PC{0,200}") {
        let _ = Study::from_yaml_str(&text, "fuzz.yaml");
    }

    #[test]
    fn mutated_studies_never_panic(cut in 0usize..800, insert in "[\\[\\]{}:,\\- a-z0-9.\\n]{0,12}") {
        let mut s = GOOD.to_string();
        let at = cut.min(s.len());
        if s.is_char_boundary(at) {
            s.insert_str(at, &insert);
        }
        let _ = Study::from_yaml_str(&s, "fuzz.yaml");
    }
}

#[test]
fn claim_metrics_parse_and_print_as_written() {
    use spec::ClaimMetric;
    for text in [
        "em",
        "f1",
        "train_loss",
        "train_seconds",
        "examples_per_second",
        "metrics.peak_memory_mib",
    ] {
        let m = ClaimMetric::parse(text).unwrap();
        assert_eq!(String::from(m.clone()), text);
        let yaml: ClaimMetric = serde_yaml::from_str(text).unwrap();
        assert_eq!(yaml, m);
    }
    assert_eq!(
        ClaimMetric::parse("metrics.eval_loss").unwrap().label(),
        "eval_loss"
    );
    for bad in ["F1", "loss", "metrics.", "metrics.a b", ""] {
        assert!(ClaimMetric::parse(bad).is_err(), "{bad:?}");
    }
}
