//! The report on a fixture database built here through the store's API: claim verdicts for
//! constructed cases, every chart written and decodable, the HTML referencing every chart,
//! and a Markdown snapshot (`golden/report.md`; `UPDATE_GOLDEN=1` rewrites it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use report::claims::Verdict;

mod common;
use common::{build_db, shared};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qa-sweep-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn verdicts_for_constructed_cases() {
    let dir = tmp("verdicts");
    let store = build_db(&dir);
    let data = report::data::load(&store, "fixture").unwrap();
    let claims = report::claims::evaluate(&data);
    let find = |v: &str| claims.iter().find(|c| c.variant == v).unwrap();
    let verdict = |v: &str| find(v).verdict.clone();
    // Paired differences [5, 5, 6]: p ≈ 0.004, Holm over the 4 tested claims keeps it.
    assert!(
        matches!(verdict("better"), Verdict::Reproduced(_)),
        "clear improvement"
    );
    assert!(
        matches!(verdict("worse"), Verdict::Contradicted(_)),
        "clear degradation claimed as higher"
    );
    assert!(matches!(verdict("noisy"), Verdict::Inconclusive(r) if r.contains("not decided")));
    // Two of lonely's three seeds failed: too few pairs, and the failures are named.
    assert!(
        matches!(verdict("lonely"), Verdict::Inconclusive(r) if r.contains("too few valid pairs") && r.contains("failed"))
    );
    assert_eq!(find("lonely").outcome.variant_counts.failed, 2);
    assert!(
        matches!(verdict("pooler-5"), Verdict::NoEffectByConstruction(r) if r.contains("not read by BertForQuestionAnswering"))
    );
    let better = find("better");
    let paired = better.paired.unwrap();
    assert!((paired.estimate - 5.333_333).abs() < 1e-5, "{paired:?}");
    // Pairing removes the seed-to-seed spread both arms share: a narrower interval than
    // Welch's on the same runs.
    let unpaired = better.unpaired.unwrap();
    assert!(paired.high - paired.low < unpaired.high - unpaired.low);
    let a = better.outcome.analysis.as_ref().unwrap();
    assert!(a.p < 0.0125 && a.p_holm <= 0.05, "{a:?}");
}

#[test]
fn report_files_charts_and_markdown_snapshot() {
    let dir = tmp("files");
    let store = build_db(&dir);
    let refs = report::references::References::embedded().unwrap();
    let out = dir.join("reports/fixture");
    let index = report::write_report(&store, "fixture", &out, &refs).unwrap();
    // Rewriting replaces it in place (atomically) and leaves no temporary folders.
    let index = report::write_report(&store, "fixture", &out, &refs).unwrap_or(index);
    let siblings: Vec<_> = std::fs::read_dir(dir.join("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(siblings, ["fixture"], "{siblings:?}");
    let html = std::fs::read_to_string(&index).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let mut stems = Vec::new();
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "svg") {
            stems.push(p.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    stems.sort();
    for expected in [
        "effect-f1",
        "effect-em",
        "curve-loss",
        "curve-learning-rate",
        "references-drcd-dev",
        "params-f1",
    ] {
        assert!(
            stems.iter().any(|s| s == expected),
            "missing chart {expected}: {stems:?}"
        );
    }
    for stem in &stems {
        let svg = std::fs::read_to_string(out.join(format!("{stem}.svg"))).unwrap();
        assert!(
            svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
            "{stem}.svg"
        );
        let decoder =
            png::Decoder::new(std::fs::File::open(out.join(format!("{stem}.png"))).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert!(
            info.width >= 600 && info.height >= 200,
            "{stem}.png is {}x{}",
            info.width,
            info.height
        );
        assert!(buf.iter().any(|b| *b < 200), "{stem}.png is blank");
        assert!(
            html.contains(&format!("id=\"{stem}\"")),
            "index.html lacks {stem}"
        );
        assert!(
            md.contains(&format!("({stem}.png)")),
            "report.md lacks {stem}"
        );
    }
    assert!(
        !html.contains("src=\"http"),
        "the page must not load anything remote"
    );
    assert!(
        html.contains("<mark>歐洲</mark>"),
        "the gold answer is highlighted in its context"
    );
    // Snapshot, with the run-specific parts masked.
    let masked: String = md
        .lines()
        .map(|l| {
            if l.starts_with("- ran from") {
                "- ran from <start> to <end>".to_string()
            } else {
                l.replace(&store.path().to_string(), "<db>")
                    .replace(&shared("").display().to_string(), "<shared>/")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &masked).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap();
    assert_eq!(
        masked, want,
        "report.md changed; UPDATE_GOLDEN=1 cargo test -p report rewrites the snapshot"
    );
}

#[test]
fn grid_studies_get_effect_heatmap_and_parallel_charts() {
    let dir = tmp("grid");
    let store = common::build_grid_db(&dir);
    let refs = report::references::References::embedded().unwrap();
    let out = dir.join("report");
    report::write_report(&store, "gridded", &out, &refs).unwrap();
    for stem in [
        "grid-learning-rate",
        "grid-batch-size",
        "grid-heatmap",
        "grid-parallel",
        "grid-evp",
    ] {
        for ext in ["svg", "png"] {
            assert!(out.join(format!("{stem}.{ext}")).exists(), "{stem}.{ext}");
        }
    }
    let heat = std::fs::read_to_string(out.join("grid-heatmap.svg")).unwrap();
    // The best cell (lr 1e-4, batch 8) is labelled with its mean F1.
    let best = 50.0 + 5.0 * 10f64.ln() + 4.0 + 0.45;
    assert!(
        heat.contains(&format!("{best:.1}")),
        "heat map lacks {best:.1}"
    );
    // One claim per grid point, each reproduced (warmup costs 6 points every time).
    let data = report::data::load(&store, "gridded").unwrap();
    let claims = report::claims::evaluate(&data);
    assert_eq!(claims.len(), 6);
    assert!(
        claims
            .iter()
            .all(|c| matches!(c.verdict, Verdict::Reproduced(_))),
        "{claims:?}"
    );
    assert!(claims[0].variant.ends_with("/warmup") && claims[0].baseline.ends_with("/baseline"));
}

const SEARCH_STUDY: &str = r#"
name: tuned
base:
  model: {preset: tiny, vocab: v.txt}
  data: {train: t.json, eval: e.json}
  train: {max_steps: 100, eval_steps: 20}
seeds: [1]
search:
  method: random
  trials: 6
  seed: 4
  objective: {metric: f1, direction: max}
  space:
    train.learning_rate: {loguniform: [1.0e-5, 1.0e-3]}
    train.batch_size: {choice: [16, 32]}
  prune: {method: asha, min_steps: 20, reduction: 3}
"#;

#[test]
fn search_studies_get_progress_parameter_and_curve_charts_with_pruned_trials_marked() {
    use spec::protocol::TrialStatus;
    use store::{EvalRow, Finish, PlannedRow, Store};
    let dir = tmp("search");
    let study = spec::Study::from_yaml_str(SEARCH_STUDY, "tuned.yaml").unwrap();
    let search = study.search.clone().unwrap();
    let mut rows: Vec<PlannedRow> = Vec::new();
    for (i, p) in search::first_suggestions(&search).into_iter().enumerate() {
        for t in study.suggestion(i, p, rows.len()).unwrap() {
            rows.push(common::planned_row(&t));
        }
    }
    let mut store = Store::open(&dir.join("sweep.db")).unwrap();
    store
        .save_plan("tuned", None, SEARCH_STUDY, "abc", &rows)
        .unwrap();
    store.heartbeat("r", "host", 1, 600.0).unwrap();
    // Suggestions 2 and 5 are pruned at step 20; the others finish with F1 = 10 × their
    // number.
    while let Some(c) = store
        .claim_next("tuned", "r", "cpu", "host", 1, 600.0, 0, &[])
        .unwrap()
    {
        let n = rows
            .iter()
            .position(|r| r.trial_id == c.trial_id.as_str())
            .unwrap()
            + 1;
        let pruned = n == 2 || n == 5;
        let last = if pruned { 20 } else { 100 };
        let evals: Vec<EvalRow> = (1..=last / 20)
            .map(|k| EvalRow {
                step: k * 20,
                epoch: None,
                split: "eval".into(),
                em: 0.0,
                f1: n as f64 * 2.0 * k as f64,
            })
            .collect();
        let metrics: Vec<store::MetricRow> = evals
            .iter()
            .map(|e| store::MetricRow {
                step: e.step,
                epoch: None,
                name: "eval_f1".into(),
                value: e.f1,
                time: None,
            })
            .collect();
        store
            .ingest_metrics(c.trial_id.as_str(), &metrics, &evals, 0, true)
            .unwrap();
        let mut f = Finish::new(if pruned {
            TrialStatus::Pruned
        } else {
            TrialStatus::Succeeded
        });
        if pruned {
            f.pruned = Some((20, n as f64 * 2.0));
        } else {
            f.f1 = Some(n as f64 * 10.0);
            f.em = Some(n as f64 * 10.0 - 5.0);
        }
        store.finish(&c.trial_id, c.attempt, "r", &f).unwrap();
    }
    let refs = report::references::References::embedded().unwrap();
    let out = dir.join("report");
    report::write_report(&store, "tuned", &out, &refs).unwrap();
    for stem in [
        "search-progress",
        "search-learning-rate",
        "search-batch-size",
        "search-curves",
    ] {
        for ext in ["svg", "png"] {
            assert!(out.join(format!("{stem}.{ext}")).exists(), "{stem}.{ext}");
        }
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("A random search for the highest F1 (mean over each suggestion's seeds): 6 of 6 suggestions made, 4 complete, 2 pruned; best F1 60.00 (s06, suggestion 6)."),
        "{md}"
    );
    // Best first: s06, s04, s03, s01; pruned ones show where they stopped.
    let best = md.split("**Best suggestions**").nth(1).unwrap();
    let order: Vec<usize> = ["| 6 | s06", "| 4 | s04", "| 3 | s03", "| 1 | s01"]
        .iter()
        .map(|s| best.find(s).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{best}");
    assert!(
        md.contains("| (4.00) | pruned at step 20 | 10.00 |"),
        "{md}"
    );
    assert!(
        md.contains("| (10.00) | pruned at step 20 | 40.00 |"),
        "{md}"
    );
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert_eq!(html.matches("<tr class=\"pruned\">").count(), 2);
}
