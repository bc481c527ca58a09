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
