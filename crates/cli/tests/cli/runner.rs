//! `sweep plan/run/status/export` as a user runs them, and the helpers the other CLI tests
//! share (the fake trial, workspaces, exports). The runner's own behaviour (every outcome,
//! retries, kill -9, two runners, Ctrl-C, sequential seeds, database failures, Slurm) is
//! tested in crates/runner/tests without this binary. One test runs real training through
//! `sweep run` (two tiny trials).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use super::{sweep, sweep_ok};

/// The runner's test-support `fake-trial`, built beside `sweep`. Built (or brought up to
/// date) once per test run: `cargo test -p cli` alone would not build another package's
/// binary.
pub(crate) fn fake_trial() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let status = Command::new(env!("CARGO"))
                .args(["build", "--quiet", "-p", "runner", "--bin", "fake-trial"])
                .status()
                .unwrap();
            assert!(status.success(), "cannot build fake-trial");
            PathBuf::from(env!("CARGO_BIN_EXE_sweep")).with_file_name("fake-trial")
        })
        .clone()
}

/// A fresh folder with a small synthetic dataset and its vocabulary.
pub(crate) fn workspace(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sweep-runner-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let p = |f: &str| dir.join(f).display().to_string();
    sweep_ok(&[
        "data",
        "synth",
        "--out",
        &p("train.json"),
        "--questions",
        "40",
        "--seed",
        "1",
    ]);
    sweep_ok(&[
        "data",
        "synth",
        "--out",
        &p("dev.json"),
        "--questions",
        "20",
        "--seed",
        "2",
    ]);
    sweep_ok(&[
        "data",
        "vocab",
        "--dataset",
        &p("train.json"),
        "--dataset",
        &p("dev.json"),
        "--out",
        &p("vocab.txt"),
    ]);
    dir
}

pub use testkit::study;

pub(crate) fn export(dir: &Path, name: &str) -> Vec<Value> {
    let out = sweep_ok(&[
        "export",
        name,
        "--format",
        "json",
        "--db",
        dir.join("sweep.db").to_str().unwrap(),
    ]);
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn plan_expands_and_shares_inert_variants() {
    let dir = workspace("plan");
    let s = study(&dir, "p", 5, "ablations:\n  - {name: pooler-5, set: {model_config.pooler_num_fc_layers: 5}}\n  - {name: lr, set: {train.learning_rate: 1.0e-4}}\nseeds: [1, 2]\n");
    let out = sweep_ok(&["plan", s.to_str().unwrap(), "--json"]);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 6);
    let variants: Vec<&str> = rows
        .iter()
        .map(|r| r["variant"].as_str().unwrap())
        .collect();
    assert_eq!(
        variants,
        ["baseline", "baseline", "pooler-5", "pooler-5", "lr", "lr"]
    );
    assert_eq!(rows[2]["id"], rows[0]["id"]);
    assert_eq!(rows[2]["duplicate_of"], "baseline");
    assert_eq!(
        rows[2]["duplicate_reason"],
        "pooler-5 = baseline: pooler_num_fc_layers is not read by BertForQuestionAnswering"
    );
    assert_ne!(rows[4]["id"], rows[0]["id"]);
    assert_ne!(
        rows[0]["id"], rows[1]["id"],
        "seeds must give different trials"
    );
    // The table says the same in words.
    let out = sweep_ok(&["plan", s.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("6 trials (3 variants × 2 seeds), 4 distinct runs"),
        "{text}"
    );
}

/// `sweep plan` says what each tested claim can detect: in σ without a pilot sd, in points
/// with `seeds.pilot_sd`, and the `max` a `target_effect` needs; an inert variant's claim
/// is not tested.
#[test]
fn plan_says_what_each_claim_can_detect() {
    let dir = workspace("plan-power");
    let claims = "ablations:\n  - {name: pooler-5, set: {model_config.pooler_num_fc_layers: 5}}\n  - {name: lr, set: {train.learning_rate: 1.0e-4}}\n\
                  claims:\n  - {variant: lr, metric: f1, expect: lower}\n  - {variant: pooler-5, metric: f1, expect: same}\n";
    let plain = study(
        &dir,
        "p1",
        5,
        &format!("{claims}seeds: {{min: 3, max: 6}}\n"),
    );
    let text =
        String::from_utf8_lossy(&sweep_ok(&["plan", plain.to_str().unwrap()]).stdout).into_owned();
    assert!(
        text.contains("claims: 1 tested together under Holm (pooler-5 the same as the baseline by construction: no test)"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.contains("lr F1:"))
        .unwrap_or_default();
    assert!(
        line.contains("σ or more") && line.contains("give seeds.pilot_sd"),
        "{line}"
    );
    let piloted = study(
        &dir,
        "p2",
        5,
        &format!("{claims}seeds: {{min: 3, max: 6, pilot_sd: 2, target_effect: 3}}\n"),
    );
    let text = String::from_utf8_lossy(&sweep_ok(&["plan", piloted.to_str().unwrap()]).stdout)
        .into_owned();
    let line = text
        .lines()
        .find(|l| l.contains("lr F1:"))
        .unwrap_or_default();
    // "detects an effect of P points or more (S σ, σ = 2.00 …)": P = 2·S.
    let number_before = |marker: &str| -> f64 {
        let head = &line[..line.find(marker).unwrap()];
        head.rsplit(' ')
            .next()
            .unwrap()
            .trim_start_matches('(')
            .parse()
            .unwrap()
    };
    let (points, sds) = (
        number_before(" points or more"),
        number_before(" σ, σ = 2.00"),
    );
    assert!((points - 2.0 * sds).abs() < 0.011, "{line}");
    assert!(line.contains("an effect of 3.00 needs max: "), "{line}");
}

#[test]
fn plan_rejects_missing_files_and_bad_yaml() {
    let dir = workspace("plan-bad");
    let s = study(&dir, "p", 5, "seeds: [1]\n");
    let text = std::fs::read_to_string(&s)
        .unwrap()
        .replace("dev.json", "nope.json");
    std::fs::write(&s, text).unwrap();
    let out = sweep(&["plan", s.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("variant baseline: data.eval") && e.contains("nope.json"),
        "{e}"
    );
    // A study over a model that is not downloaded yet: --no-check-files still plans it.
    let init = std::fs::read_to_string(&s).unwrap().replace(
        "preset: tiny, vocab:",
        "init: /nonexistent/bert-base-chinese, vocab:",
    );
    std::fs::write(&s, init).unwrap();
    let out = sweep(&["plan", s.to_str().unwrap(), "--no-check-files"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("assuming BERT"), "{}", stderr(&out));
    let out = sweep(&["status", "--db", dir.join("none.db").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no results database here"),
        "{}",
        stderr(&out)
    );
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "name: x\nbase: {}\nseeds: [1]\ngird: {}\n").unwrap();
    let out = sweep(&["plan", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad.yaml"), "{}", stderr(&out));
}

/// Real training through `sweep trial`: two tiny trials on synthetic data.
#[test]
fn end_to_end_real_tiny_sweep() {
    let dir = workspace("real");
    let s = study(
        &dir,
        "real",
        8,
        "ablations: [{name: lr-1e-3, set: {train.learning_rate: 1.0e-3}}]\nseeds: [1]\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args([
            "run",
            s.to_str().unwrap(),
            "--db",
            dir.join("sweep.db").to_str().unwrap(),
            "--devices",
            "cpu",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = export(&dir, "real");
    assert_eq!(rows.len(), 2);
    let store = store::Store::open_read_only(&dir.join("sweep.db")).unwrap();
    for (r, row) in store.study_trials("real").unwrap().iter().zip(&rows) {
        let tdir = dir.join("trials").join(&r.trial_id);
        let result: Value =
            serde_json::from_str(&std::fs::read_to_string(tdir.join("result.json")).unwrap())
                .unwrap();
        assert_eq!(row["f1"], result["F1"]);
        assert_eq!(row["em"], result["EM"]);
        let preds = store.predictions(&r.trial_id).unwrap();
        assert_eq!(preds.len(), 20, "every dev question answered and scored");
        let mean_f1 = preds.iter().map(|p| p.f1.unwrap()).sum::<f64>() / 20.0 * 100.0;
        assert!((mean_f1 - result["F1"].as_f64().unwrap()).abs() < 1e-9);
        assert_eq!(
            store.metric_series(&r.trial_id, "eval_f1").unwrap().len(),
            1
        );
        let env = store.environment_json(&r.trial_id).unwrap().unwrap();
        assert!(
            env.contains("train_sha256") && env.contains("git_commit"),
            "{env}"
        );
    }
}

/// A program trial through the real `sweep trial` worker: a burn arm and a program arm in
/// one study, the program's reported score checked against its predictions, and `sweep
/// status` showing its other metrics.
#[test]
fn a_program_trial_runs_beside_a_burn_trial() {
    let dir = workspace("program");
    let program = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../runner/tests/support/program_trial.py")
        .canonicalize()
        .unwrap();
    let s = study(
        &dir,
        "mixed",
        4,
        &format!(
            "ablations:\n  - name: program\n    set:\n      command: [python3, {}, --params, \"{{params_json}}\"]\n      params.steps: 3\nseeds: [1]\n",
            program.display()
        ),
    );
    let out = sweep(&[
        "run",
        s.to_str().unwrap(),
        "--db",
        dir.join("sweep.db").to_str().unwrap(),
        "--devices",
        "cpu",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = export(&dir, "mixed");
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r["status"], "succeeded", "{r}");
    }
    let program_row = rows.iter().find(|r| r["variant"] == "program").unwrap();
    assert_eq!(program_row["f1"], 50.0);
    assert_eq!(program_row["metric.peak_memory_mib"], 123.0);
    let status = sweep_ok(&[
        "status",
        "mixed",
        "--db",
        dir.join("sweep.db").to_str().unwrap(),
    ]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("program: peak_memory_mib 123.00"),
        "{status}"
    );
    let out_dir = dir.join("report");
    sweep_ok(&[
        "report",
        "mixed",
        "--db",
        dir.join("sweep.db").to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(
        md.contains("| variant | peak_memory_mib |") && md.contains("| program | 123.00 |"),
        "{md}"
    );
}

/// A build without a GPU backend asked to train on that GPU refuses before anything runs,
/// and says what to build.
#[test]
fn a_build_without_the_backend_refuses_its_devices_up_front() {
    let cases = [
        (
            cfg!(feature = "cuda"),
            "cuda:0",
            "built without CUDA",
            "--features cuda",
        ),
        (
            cfg!(feature = "wgpu"),
            "wgpu:0",
            "built without wgpu",
            "--features wgpu",
        ),
    ];
    for (_, device, says, build) in cases.into_iter().filter(|case| !case.0) {
        let dir = workspace(&format!("no-backend-{}", device.replace(':', "")));
        let s = study(&dir, "nb", 2, "seeds: [1]\n");
        let out = sweep(&[
            "run",
            s.to_str().unwrap(),
            "--db",
            dir.join("sweep.db").to_str().unwrap(),
            "--devices",
            device,
        ]);
        assert_eq!(out.status.code(), Some(1), "{device}");
        let e = stderr(&out);
        assert!(e.contains(says) && e.contains(build), "{device}: {e}");
        if device.starts_with("cuda") {
            assert!(e.contains("--devices cpu"), "{e}");
        }
        assert!(!dir.join("trials").exists(), "{device}: nothing ran");
    }
}
