//! Full disks and file-size limits lose nothing. A real trial on a small tmpfs fills it at
//! its second checkpoint: it fails with an error naming the file, its first resume state
//! and checkpoint stay whole, and once space is back the next `sweep run` resumes from
//! them. A report written to a full disk fails and leaves the previous report whole. A
//! trial past `ulimit -f` gets an error naming the file instead of dying of SIGXFSZ.
//!
//! The tmpfs tests need root: they are `#[ignore]`d, `make test-all` runs them (CI does, as
//! root), and they fail when the mount fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::runner::{export, stderr, workspace};
use super::sweep_ok;

/// A tmpfs mounted on a fresh folder, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Fails the test when it cannot mount (it needs root; the tests that use it are
    /// `#[ignore]`d and `make test-all` runs them).
    fn mount(dir: &Path, megabytes: u32) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot mount a tmpfs at {} (needs root)", dir.display());
        Tmpfs(dir.to_path_buf())
    }

    fn resize(&self, megabytes: u32) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={megabytes}m")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn trial_dir(work: &Path) -> PathBuf {
    std::fs::read_dir(work.join("trials"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap()
}

#[test]
#[ignore = "needs root to mount a tmpfs; make test-all runs it (CI does, as root)"]
fn full_disk_fails_cleanly_and_the_next_run_resumes() {
    let dir = workspace("disk-full");
    let work = dir.join("work");
    // One tiny-BERT trial: a resume state is ~6 MB and a checkpoint ~2 MB, so 11 MB holds
    // the first save (step 4) but not the second (a new state is staged beside the old).
    let fs = Tmpfs::mount(&work, 11);
    let d = dir.display();
    let study = dir.join("disk.yaml");
    std::fs::write(
        &study,
        format!(
            "name: disk\nbase:\n  model: {{preset: tiny, vocab: {d}/vocab.txt}}\n  data: {{train: {d}/train.json, eval: {d}/dev.json}}\n  \
             train: {{max_steps: 12, save_steps: 4, batch_size: 8, eval_batch_size: 32, max_seq_length: 64, doc_stride: 16, logging_steps: 4, learning_rate: 1.0e-3}}\nseeds: [1]\n"
        ),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sweep"))
            .args(["run", study.to_str().unwrap(), "--devices", "cpu", "--db"])
            .arg(dir.join("sweep.db"))
            .arg("--workdir")
            .arg(&work)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = export(&dir, "disk");
    assert_eq!(rows[0]["status"], "failed", "{rows:?}");
    // The runner's line for the failed trial carries the trial's last stderr line.
    let error = stderr(&out);
    assert!(
        error.contains("No space left on device") && error.contains("train_state"),
        "the outcome should name the file that could not be written: {error}"
    );
    // The step-4 state and checkpoint are whole; nothing half-written is left.
    let t = trial_dir(&work);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.join("train_state/state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 4);
    for f in ["model.safetensors", "optimizer.safetensors"] {
        assert!(t.join("train_state").join(f).is_file(), "{f}");
    }
    assert!(t.join("checkpoint/model.safetensors").is_file());
    assert!(!t.join("train_state.partial").exists());
    assert!(!t.join("checkpoint.partial").exists());

    // Space is back: the next run (with a retry for the failed trial) resumes from step 4.
    fs.resize(64);
    let out = run(&["--retries", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = export(&dir, "disk");
    assert_eq!(rows[0]["status"], "succeeded", "{rows:?}");
    let log = std::fs::read_to_string(t.join("stderr.log")).unwrap();
    assert!(log.contains("resuming from step 4"), "{log}");
    let steps: Vec<u64> = std::fs::read_to_string(t.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m.get("loss").is_some())
        .filter_map(|m| m["step"].as_u64())
        .collect();
    assert_eq!(steps, [4, 8, 12], "metrics after the resume: {steps:?}");
}

#[test]
#[ignore = "needs root to mount a tmpfs; make test-all runs it (CI does, as root)"]
fn report_on_a_full_disk_keeps_the_previous_report() {
    let dir = workspace("disk-report");
    let reports = dir.join("reports");
    let _fs = Tmpfs::mount(&reports, 4);
    let study = super::runner::study(&dir, "rep", 4, "seeds: [1]\n");
    let out = Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args(["run", study.to_str().unwrap(), "--devices", "cpu", "--db"])
        .arg(dir.join("sweep.db"))
        .env("SWEEP_TRIAL_COMMAND", super::runner::fake_trial())
        .env("FAKE_TRIAL_STEP_MS", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let db = dir.join("sweep.db");
    let out_dir = reports.join("rep");
    sweep_ok(&[
        "report",
        "rep",
        "--db",
        db.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let before = std::fs::read(out_dir.join("index.html")).unwrap();
    // Fill the disk, then report again.
    let filler = reports.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .output();
    let out = Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args(["report", "rep", "--db", db.to_str().unwrap(), "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a report on a full disk should fail");
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(out_dir.join("index.html")).unwrap(), before);
    let leftovers: Vec<String> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial") || n.contains(".old"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Past `ulimit -f` a write fails with EFBIG; the trial says which file instead of dying of
/// SIGXFSZ, and leaves no partial file.
#[test]
fn file_size_limit_is_an_error_naming_the_file() {
    let dir = workspace("disk-fsize");
    let d = dir.display();
    let config = dir.join("trial.yaml");
    std::fs::write(
        &config,
        format!(
            "model: {{preset: tiny, vocab: {d}/vocab.txt}}\ndata: {{train: {d}/train.json, eval: {d}/dev.json}}\n\
             train: {{max_steps: 4, save_steps: 2, batch_size: 8, max_seq_length: 64, doc_stride: 16}}\n"
        ),
    )
    .unwrap();
    let out_dir = dir.join("out");
    // 1 MiB per file: metrics fit, a 2 MB model file does not.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -f 1024; exec '{}' train --config '{}' --out '{}'",
            env!("CARGO_BIN_EXE_sweep"),
            config.display(),
            out_dir.display()
        ))
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        None,
        "killed by a signal: {}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("File too large") && err.contains("model.safetensors"),
        "{err}"
    );
    assert!(!out_dir.join("train_state").exists());
    assert!(!out_dir.join("train_state.partial").exists());
}
