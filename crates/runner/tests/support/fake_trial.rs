//! `fake-trial DIR --device D`: a stand-in for `sweep trial` that speaks the same protocol
//! (`spec::protocol`) without training anything, so the runner's tests can exercise every
//! outcome in milliseconds. Its protocol side is `runner::trial_process`, the module
//! `sweep trial` uses, and it writes the protocol's types (`MetricLine`, `TrialResult`).
//!
//! It reads `DIR/trial.yaml`, takes the folder lock, asks for SIGTERM when its parent dies,
//! then "trains" `train.max_steps` steps (default 20) of `FAKE_TRIAL_STEP_MS` ms each
//! (default 20), appending a metrics line per step and saving its state each step, so a
//! stopped trial resumes where it was; with `train.eval_steps`, it evaluates every that many
//! steps on a curve that climbs to its final score. Its EM/F1 are a fixed function of the learning rate,
//! dropout, warmup and seed, so tests know what to expect (plus, with
//! `model_config.fake_noise`, seed noise that differs between variants).
//!
//! A program trial (`command:` in trial.yaml) is handed to `runner::program::supervise`,
//! as `sweep trial` does, so the runner's tests run program trials without burn.
//!
//! `FAKE_TRIAL_BEHAVIOR` (JSON object, keys `seed:N` or `*`) picks a behaviour: `ok`,
//! `crash`, `crash-once`, `diverge`, `oom`, `hang` (runs until signalled), `ignore-term`
//! (ignores SIGTERM until killed), `abort` (dies of SIGABRT).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runner::trial_process::TrialProcess;
use serde_json::{json, Value};
use spec::protocol::{exit, files, MetricLine, MetricsFile, Outcome, TrialResult};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1).map(PathBuf::from) else {
        eprintln!("usage: fake-trial DIR [--device D]");
        std::process::exit(exit::FAILED);
    };
    let device = args
        .iter()
        .position(|a| a == "--device")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "cpu".into());
    std::process::exit(run(&dir, &device));
}

fn fail(msg: &str) -> i32 {
    eprintln!("fake-trial: {msg}");
    exit::FAILED
}

fn run(dir: &Path, device: &str) -> i32 {
    let process = match TrialProcess::start(dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("fake-trial: {e}");
            return e.exit_code();
        }
    };
    // Lets tests check that no two processes ever ran this trial at the same time.
    let log_event = |what: &str| {
        let line = format!("{what} {} {}\n", std::process::id(), now_micros());
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("attempts.log"))
            .and_then(|mut f| f.write_all(line.as_bytes()));
    };
    // A program trial's program logs its own runs (the supervisor is not the trainer).
    let is_program = std::fs::read_to_string(dir.join(files::SPEC))
        .ok()
        .and_then(|t| serde_yaml::from_str::<Value>(&t).ok())
        .is_some_and(|v| v.get("command").is_some());
    if !is_program {
        log_event("start");
    }
    let code = run_locked(&process, device);
    if !is_program {
        log_event("end");
    }
    drop(process);
    code
}

fn now_micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

fn run_locked(process: &TrialProcess, device: &str) -> i32 {
    let dir = process.dir();
    let behavior_all = std::env::var("FAKE_TRIAL_BEHAVIOR").unwrap_or_default();
    let text = match std::fs::read_to_string(dir.join(files::SPEC)) {
        Ok(t) => t,
        Err(e) => return fail(&format!("cannot read trial.yaml: {e}")),
    };
    let spec: Value = match serde_yaml::from_str(&text) {
        Ok(v) => v,
        Err(e) => return fail(&format!("trial.yaml: {e}")),
    };
    // A program trial is supervised exactly as `sweep trial` supervises it.
    if spec.get("command").is_some() {
        return match spec::TrialConfig::from_yaml_str(&text, "trial.yaml") {
            Ok(config) => runner::program::supervise(process, &config, device),
            Err(e) => fail(&e.to_string()),
        };
    }
    let num = |path: &[&str]| {
        let mut v = &spec;
        for p in path {
            v = v.get(p).unwrap_or(&Value::Null);
        }
        v.as_f64()
    };
    let seed = num(&["train", "seed"]).unwrap_or(0.0) as u64;
    let behavior: Value = serde_json::from_str(&behavior_all).unwrap_or(json!({}));
    let behavior = behavior
        .get(format!("seed:{seed}"))
        .or_else(|| behavior.get("*"))
        .and_then(Value::as_str)
        .unwrap_or("ok")
        .to_string();
    // `ignore-term` never looks at the stop flag: it runs until SIGKILL.
    let stop_requested = || behavior != "ignore-term" && process.stop_requested();
    let lr = num(&["train", "learning_rate"]).unwrap_or(5e-5);
    let dropout = num(&["model_config", "hidden_dropout_prob"]).unwrap_or(0.1);
    let warmup = num(&["train", "warmup_steps"]).unwrap_or(0.0);
    let steps = num(&["train", "max_steps"]).unwrap_or(20.0) as u64;
    let eval_steps = num(&["train", "eval_steps"])
        .map(|e| e as u64)
        .filter(|e| *e > 0);
    let step_ms: u64 = std::env::var("FAKE_TRIAL_STEP_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let _ = write_json(
        &dir.join(files::ENV),
        &json!({"binary_version": "fake-trial", "backend": "fake", "device_name": device,
                "git_commit": "0000000"}),
    );

    match behavior.as_str() {
        "crash" => return fail("crashing on purpose (FAKE_TRIAL_BEHAVIOR)"),
        "crash-once" => {
            let marker = dir.join("crashed-once");
            if !marker.exists() {
                let _ = std::fs::write(&marker, "");
                return fail("crashing once on purpose (FAKE_TRIAL_BEHAVIOR)");
            }
        }
        "oom" => {
            eprintln!("thread 'main' panicked: CUDA error: out of memory (fake)");
            return 101;
        }
        "abort" => std::process::abort(),
        _ => {}
    }

    let state_path = dir.join("fake_state.json");
    let start_step = std::fs::read_to_string(&state_path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("step").and_then(Value::as_u64))
        .unwrap_or(0);
    // Like the real trainer: a resumed run keeps the lines up to its saved step.
    let mut metrics = match MetricsFile::open(dir, (start_step > 0).then_some(start_step)) {
        Ok(f) => f,
        Err(e) => return fail(&format!("cannot open metrics: {e}")),
    };
    // `model_config.fake_noise: s` adds seed-to-seed noise of about s points that differs
    // between variants (a pseudo-normal draw from the seed and the config), so claims need
    // several seeds, as real ones do.
    let noise = num(&["model_config", "fake_noise"]).unwrap_or(0.0);
    let jitter = {
        let mut h = seed ^ (lr.to_bits().rotate_left(7)) ^ dropout.to_bits() ^ warmup.to_bits();
        let mut u = || {
            h = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = h;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        // Irwin–Hall: the sum of 12 uniforms minus 6 is close to a standard normal.
        (0..12).map(|_| u()).sum::<f64>() - 6.0
    };
    let f1 = (60.0 + 5.0 * (lr / 3e-5).ln() - 40.0 * (dropout - 0.1) - 0.002 * warmup
        + ((seed * 7919) % 100) as f64 / 100.0
        - 0.5
        + noise * jitter)
        .clamp(0.0, 100.0);
    let em = (f1 - 12.0).max(0.0);
    let started = Instant::now();
    let mut step = start_step;
    loop {
        if stop_requested() {
            let _ = write_json(&state_path, &json!({"step": step}));
            eprintln!("fake-trial: stopped at step {step}; state saved");
            return exit::INTERRUPTED;
        }
        if step >= steps && behavior != "hang" && behavior != "ignore-term" {
            break;
        }
        std::thread::sleep(Duration::from_millis(step_ms));
        step += 1;
        let loss = if behavior == "diverge" && step >= steps / 2 {
            f64::NAN
        } else {
            3.0 / (1.0 + step as f64 * 0.1)
        };
        let line = MetricLine {
            epoch: Some(step as f64 / steps.max(1) as f64),
            elapsed_seconds: Some(started.elapsed().as_secs_f64()),
            loss: Some(loss).filter(|l| l.is_finite()),
            learning_rate: Some(lr),
            examples_per_second: Some(100.0),
            diverged: loss.is_nan(),
            ..MetricLine::at(step)
        };
        if metrics.write(&line).is_err() {
            return fail("cannot write metrics");
        }
        if loss.is_nan() {
            let _ = result(Outcome::Diverged, 0.0, 0.0, step, started).write(dir);
            eprintln!("fake-trial: loss is NaN at step {step}");
            return exit::DIVERGED;
        }
        // Periodic evaluations (`train.eval_steps`), as the trainer writes them: the score
        // climbs towards its final value, the same shape for every trial, so trials keep
        // their order at every step (what a pruner's test needs).
        if eval_steps.is_some_and(|e| step.is_multiple_of(e)) && step < steps {
            let reached = 1.0 - 0.5 * (-4.0 * step as f64 / steps.max(1) as f64).exp();
            let line = MetricLine {
                epoch: Some(step as f64 / steps.max(1) as f64),
                eval_em: Some(em * reached),
                eval_f1: Some(f1 * reached),
                ..MetricLine::at(step)
            };
            if metrics.write(&line).is_err() {
                return fail("cannot write metrics");
            }
        }
        let _ = write_json(&state_path, &json!({"step": step}));
    }
    let eval_line = MetricLine {
        epoch: Some(1.0),
        eval_em: Some(em),
        eval_f1: Some(f1),
        ..MetricLine::at(step)
    };
    if metrics.write(&eval_line).is_err() {
        return fail("cannot write metrics");
    }
    // No predictions.json: its EM/F1 are a formula, which no set of answers would score,
    // and the runner checks reported scores against predictions. The program-trial tests
    // (tests/support/program_trial.py) write predictions that score what they report.
    match result(Outcome::Succeeded, em, f1, step, started).write(dir) {
        Ok(()) => exit::SUCCEEDED,
        Err(e) => fail(&e.to_string()),
    }
}

fn result(status: Outcome, em: f64, f1: f64, steps: u64, started: Instant) -> TrialResult {
    TrialResult {
        status,
        em,
        f1,
        steps,
        train_loss: Some(1.0),
        train_seconds: Some(started.elapsed().as_secs_f64()),
        examples_per_second: Some(100.0),
        details: Default::default(),
    }
}

fn write_json(path: &Path, v: &Value) -> std::io::Result<()> {
    spec::atomic::write_file(path, v.to_string().as_bytes()).map_err(|e| e.source)
}
