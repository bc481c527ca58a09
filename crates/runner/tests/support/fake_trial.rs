//! `fake-trial DIR --device D`: a stand-in for `sweep trial` that speaks the same protocol
//! (`spec::protocol`) without training anything, so the runner's tests can exercise every
//! outcome in milliseconds.
//!
//! It reads `DIR/trial.yaml`, takes the folder lock, asks for SIGTERM when its parent dies,
//! then "trains" `train.max_steps` steps (default 20) of `FAKE_TRIAL_STEP_MS` ms each
//! (default 20), appending a metrics line per step and saving its state each step, so a
//! stopped trial resumes where it was. Its EM/F1 are a fixed function of the learning rate,
//! dropout, warmup and seed, so tests know what to expect (plus, with
//! `model_config.fake_noise`, seed noise that differs between variants).
//!
//! `FAKE_TRIAL_BEHAVIOR` (JSON object, keys `seed:N` or `*`) picks a behaviour: `ok`,
//! `crash`, `crash-once`, `diverge`, `oom`, `hang` (runs until signalled), `ignore-term`
//! (ignores SIGTERM until killed), `abort` (dies of SIGABRT).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spec::protocol::{env, exit, files};

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
    let lock = match std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(files::LOCK))
    {
        Ok(f) => f,
        Err(e) => return fail(&format!("cannot open lock: {e}")),
    };
    if lock.try_lock().is_err() {
        eprintln!("fake-trial: {} is held by another process", dir.display());
        return exit::BUSY;
    }
    if let Ok(pid) = std::env::var(env::RUNNER_PID) {
        let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM);
        if nix::unistd::getppid().to_string() != pid {
            return exit::INTERRUPTED;
        }
    }
    // Lets tests check that no two processes ever ran this trial at the same time.
    let log_event = |what: &str| {
        let line = format!("{what} {} {}\n", std::process::id(), now_micros());
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("attempts.log"))
            .and_then(|mut f| f.write_all(line.as_bytes()));
    };
    log_event("start");
    let code = run_locked(dir, device);
    log_event("end");
    drop(lock);
    code
}

fn now_micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

fn run_locked(dir: &Path, device: &str) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    let behavior_all = std::env::var("FAKE_TRIAL_BEHAVIOR").unwrap_or_default();
    let text = match std::fs::read_to_string(dir.join(files::SPEC)) {
        Ok(t) => t,
        Err(e) => return fail(&format!("cannot read trial.yaml: {e}")),
    };
    let spec: Value = match serde_yaml::from_str(&text) {
        Ok(v) => v,
        Err(e) => return fail(&format!("trial.yaml: {e}")),
    };
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
    if behavior != "ignore-term" {
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            if signal_hook::flag::register(sig, Arc::clone(&stop)).is_err() {
                return fail("cannot install signal handlers");
            }
        }
    } else {
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            let _ = signal_hook::flag::register(sig, Arc::new(AtomicBool::new(false)));
        }
    }
    let lr = num(&["train", "learning_rate"]).unwrap_or(5e-5);
    let dropout = num(&["model_config", "hidden_dropout_prob"]).unwrap_or(0.1);
    let warmup = num(&["train", "warmup_steps"]).unwrap_or(0.0);
    let steps = num(&["train", "max_steps"]).unwrap_or(20.0) as u64;
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
    let metrics_path = dir.join(files::METRICS);
    let start_step = std::fs::read_to_string(&state_path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("step").and_then(Value::as_u64))
        .unwrap_or(0);
    if start_step == 0 {
        let _ = std::fs::remove_file(&metrics_path);
    } else if let Ok(t) = std::fs::read_to_string(&metrics_path) {
        // Like the real trainer: keep the lines up to the saved step.
        let kept: String = t
            .lines()
            .filter(|l| {
                serde_json::from_str::<Value>(l)
                    .ok()
                    .and_then(|v| v.get("step").and_then(Value::as_u64))
                    .is_some_and(|s| s <= start_step)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let _ = std::fs::write(&metrics_path, kept);
    }
    let mut metrics = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
    {
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
        if stop.load(Ordering::SeqCst) {
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
        let line = json!({"step": step, "epoch": step as f64 / steps.max(1) as f64,
            "loss": if loss.is_nan() { Value::Null } else { json!(loss) },
            "learning_rate": lr, "examples_per_second": 100.0,
            "elapsed_seconds": started.elapsed().as_secs_f64()});
        if writeln!(metrics, "{line}")
            .and_then(|_| metrics.flush())
            .is_err()
        {
            return fail("cannot write metrics");
        }
        if loss.is_nan() {
            let _ = write_json(
                &dir.join(files::RESULT),
                &json!({"status": "diverged",
                "EM": 0.0, "F1": 0.0, "steps": step}),
            );
            eprintln!("fake-trial: loss is NaN at step {step}");
            return exit::DIVERGED;
        }
        let _ = write_json(&state_path, &json!({"step": step}));
    }
    let eval_line = json!({"step": step, "epoch": 1.0, "eval_em": em, "eval_f1": f1});
    let _ = writeln!(metrics, "{eval_line}");
    if let Some(eval) = spec
        .get("data")
        .and_then(|d| d.get("eval"))
        .and_then(Value::as_str)
    {
        let _ = write_json(&dir.join(files::PREDICTIONS), &predictions(Path::new(eval)));
    }
    let _ = write_json(
        &dir.join(files::RESULT),
        &json!({"status": "succeeded", "EM": em, "F1": f1, "train_loss": 1.0,
            "examples_per_second": 100.0, "train_seconds": started.elapsed().as_secs_f64(),
            "steps": step}),
    );
    exit::SUCCEEDED
}

/// Answers every other question of a SQuAD file with its first gold answer.
fn predictions(path: &Path) -> Value {
    let Ok(text) = std::fs::read_to_string(path) else {
        return json!({});
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return json!({});
    };
    let mut out = serde_json::Map::new();
    let empty = Vec::new();
    let mut n = 0usize;
    for article in v.get("data").and_then(Value::as_array).unwrap_or(&empty) {
        for p in article
            .get("paragraphs")
            .and_then(Value::as_array)
            .unwrap_or(&empty)
        {
            for q in p.get("qas").and_then(Value::as_array).unwrap_or(&empty) {
                let Some(id) = q.get("id").and_then(Value::as_str) else {
                    continue;
                };
                let gold = q
                    .get("answers")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .and_then(|a| a.get("text"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let answer = if n.is_multiple_of(2) {
                    gold
                } else {
                    "不知道"
                };
                out.insert(id.to_string(), json!(answer));
                n += 1;
            }
        }
    }
    Value::Object(out)
}

fn write_json(path: &Path, v: &Value) -> std::io::Result<()> {
    spec::atomic::write_file(path, v.to_string().as_bytes()).map_err(|e| e.source)
}
