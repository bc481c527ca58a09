//! `make bench`'s live-view numbers: a sweep of fake trials through the runner, alone and
//! with 50 clients polling `sweep serve` on loopback as fast as a page would never ask
//! (every 100 ms, no waiting), as a ratio of wall times; and what the clients saw (requests
//! answered, latency, errors). Writes the `bench:serve` section of docs/benchmarks.md.
//!
//! cargo run --release -p serve --example bench_serve -- FAKE_TRIAL DOC.md
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 50;
const TRIALS: usize = 40;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qa-serve-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A study of `TRIALS` fake trials (40 steps of 10 ms, a metrics line each) in `dir`.
fn plan(dir: &Path) -> runner::Plan {
    std::fs::write(dir.join("d.json"), r#"{"data":[{"paragraphs":[{"context":"台北是首都","qas":[{"id":"q1","question":"首都?","answers":[{"text":"台北","answer_start":0}]}]}]}]}"#).unwrap();
    std::fs::write(
        dir.join("v.txt"),
        "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n台\n北\n",
    )
    .unwrap();
    let d = dir.display();
    let seeds: Vec<String> = (1..=TRIALS / 2).map(|s| s.to_string()).collect();
    let text = format!(
        "name: bench\nbase:\n  model: {{preset: tiny, vocab: {d}/v.txt}}\n  data: {{train: {d}/d.json, eval: {d}/d.json}}\n  train: {{max_steps: 40, logging_steps: 1, max_seq_length: 64, doc_stride: 16}}\nablations:\n  - {{name: wide, set: {{train.learning_rate: 1.0e-4}}}}\nseeds: [{}]\nclaims:\n  - {{variant: wide, metric: f1, expect: higher}}\n",
        seeds.join(", ")
    );
    let study = spec::Study::from_yaml_str(&text, "bench.yaml").unwrap();
    runner::plan(&study).unwrap()
}

fn sweep(dir: &Path, fake: &Path) -> f64 {
    let plan = plan(dir);
    let mut opts =
        runner::RunOptions::new(dir.join("sweep.db"), vec![fake.as_os_str().to_os_string()]);
    opts.devices = vec![spec::Device::Cpu];
    opts.per_device = 2;
    let t = Instant::now();
    let summary = runner::run(&plan, &opts, &runner::ExecutorKind::Local).unwrap();
    assert!(summary.outcomes.values().sum::<usize>() >= TRIALS);
    t.elapsed().as_secs_f64()
}

fn get(addr: SocketAddr, path: &str) -> Result<u16, std::io::Error> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    Ok(text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let fake = PathBuf::from(&args[1]);
    let doc = PathBuf::from(&args[2]);
    std::env::set_var("FAKE_TRIAL_STEP_MS", "10");

    let alone = sweep(&tmp("alone"), &fake);

    // The same sweep with a server on its database and 50 clients polling it.
    let dir = tmp("watched");
    let db = dir.join("sweep.db");
    // The runner creates the database; the server needs it to exist first.
    drop(store::Store::open(&db).unwrap());
    let mut opts = serve::Options::new(db.clone());
    opts.port = 0;
    opts.max_connections = 128;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || serve::run(opts, |s| tx.send(s.addr).unwrap()));
    let addr = rx.recv().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let (mut latencies, mut errors) = (Vec::new(), 0usize);
                while !stop.load(Ordering::Relaxed) {
                    let path = if i % 10 == 0 {
                        "/api/studies/bench/curves/loss"
                    } else {
                        "/api/studies/bench"
                    };
                    let t = Instant::now();
                    match get(addr, path) {
                        Ok(200) | Ok(404) => latencies.push(t.elapsed().as_secs_f64() * 1000.0),
                        _ => errors += 1,
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                (latencies, errors)
            })
        })
        .collect();
    let watched = sweep(&dir, &fake);
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut errors = 0;
    for c in clients {
        let (l, e) = c.join().unwrap();
        latencies.extend(l);
        errors += e;
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let requests = latencies.len();
    let ratio = watched / alone;
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let section = format!(
        "<!-- bench:serve:start -->\n## Live view: a sweep watched by 50 clients (`sweep serve`)\n\n- date: {date}\n- machine: {cores} cores, loopback only\n- command: `make bench` (crates/serve/examples/bench_serve.rs, release build)\n\n| sweep of {TRIALS} fake trials (40 steps of 10 ms, a metrics line per step; 2 at a time) | wall time |\n|---|---|\n| alone | {alone:.2} s |\n| with 50 clients polling every 100 ms (no waiting; one in ten asks for a curve SVG) | {watched:.2} s |\n| ratio | {ratio:.2}× |\n\nThe clients: {requests} answers ({:.0} per second), latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {errors} errors. A real page asks once per change (long polling), far less than this.\n<!-- bench:serve:end -->",
        requests as f64 / watched,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
    println!("{section}");
    let old = std::fs::read_to_string(&doc).unwrap_or_default();
    let (start, end) = ("<!-- bench:serve:start -->", "<!-- bench:serve:end -->");
    let new = match (old.find(start), old.find(end)) {
        (Some(a), Some(b)) => format!("{}{}{}", &old[..a], section, &old[b + end.len()..]),
        _ => format!("{}\n\n{}\n", old.trim_end(), section),
    };
    std::fs::write(&doc, new).unwrap();
}
