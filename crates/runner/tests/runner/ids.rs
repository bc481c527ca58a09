//! Trial ids are content hashes of the effective config, and databases key results by them.
//! A change to the id's canonical form (a new serialized field, a renamed key, another hash)
//! would orphan every stored result and no other test would notice, so the ids of the
//! shipped studies are pinned here, as computed at 4929381 (before program trials). A change
//! to one of these values needs a migration of existing databases, not a new pin.

use std::path::Path;

fn ids(study_file: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments")
        .join(study_file);
    let study = spec::Study::from_yaml_file(&path).unwrap();
    // Planning without the model folders (as `sweep plan --no-check-files`): a model.init
    // that is not there counts as a BERT checkpoint with no config values to compare.
    let plan = runner::plan_with(&study, false).unwrap();
    plan.entries
        .iter()
        .map(|e| format!("{} {} {}", e.trial.variant, e.trial.seed, e.trial_id))
        .collect()
}

#[test]
fn ids_of_the_shipped_studies_do_not_change() {
    let demo = [
        "baseline 1 f4e9751a4e91f7f4",
        "baseline 2 73d54fe7b5358aab",
        "baseline 3 1542a83132397f86",
        "dropout-0.2 1 158b30a0d9a8db4e",
        "dropout-0.2 2 ee9a0c010347c168",
        "dropout-0.2 3 3234ef2844b29df0",
        "pooler-5 1 f4e9751a4e91f7f4",
        "pooler-5 2 73d54fe7b5358aab",
        "pooler-5 3 1542a83132397f86",
        "warmup-0.6 1 6dc8a4eee01ed677",
        "warmup-0.6 2 f0f04691fb1ad740",
        "warmup-0.6 3 250e775023c4e3ea",
        "batch-64 1 a11b4bb695659d12",
        "batch-64 2 39eaafad39e32be2",
        "batch-64 3 05c999a0e9778740",
        "albert-tiny 1 1375f1b52a68a553",
        "albert-tiny 2 f6b15aa53d8a689e",
        "albert-tiny 3 103a30e8b84735dc",
    ];
    assert_eq!(ids("demo.yaml"), demo);
    let homework = [
        "baseline 1 47fbc7765828f115",
        "baseline 2 69d4d1f53761266d",
        "baseline 3 a09bd4ba488e4baa",
        "dropout-0.2 1 6979e1d611e79aa3",
        "dropout-0.2 2 3ee763db13abfd01",
        "dropout-0.2 3 f8eca02586829845",
        "pooler-5 1 47fbc7765828f115",
        "pooler-5 2 69d4d1f53761266d",
        "pooler-5 3 a09bd4ba488e4baa",
        "warmup-1000 1 0abfd044ee4a439b",
        "warmup-1000 2 087c1679a494b555",
        "warmup-1000 3 417ccf7f574a35f6",
    ];
    assert_eq!(ids("hw4-3-ablation.yaml"), homework);
}

#[test]
fn the_shipped_program_studies_plan() {
    // burn-vs-pytorch: a burn baseline and a program arm; hf-run-qa-drcd: program trials only
    // (its scripts are not in the repository: planned as `--no-check-files` plans them).
    let burn_vs_pytorch = ids("burn-vs-pytorch.yaml");
    assert_eq!(burn_vs_pytorch.len(), 6);
    let homework = ids("hf-run-qa-drcd.yaml");
    assert_eq!(homework.len(), 6);
    let distinct: std::collections::BTreeSet<&str> = homework
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(distinct.len(), 6, "every program trial has its own id");
}
