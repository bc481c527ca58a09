//! `sweep serve` against a database that a writer changes while the server runs (the store's
//! API, as the runner writes it): the study's view follows a trial from queued to running to
//! done, long polling answers on a change, the token is enforced, no URL reaches the file
//! system beyond the known report, and oversized, slow and too many clients are bounded.
//! The page itself, in headless Chromium, is `the_page_updates_without_a_reload` below.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use spec::protocol::TrialStatus;
use store::{Finish, MetricRow, Store};

const STUDY: &str = "name: live
base:
  model: {preset: tiny, vocab: v.txt}
  data: {train: train.json, eval: dev.json}
ablations:
  - {name: wide, set: {train.learning_rate: 1.0e-4}}
seeds: [1, 2]
claims:
  - {variant: wide, metric: f1, expect: higher}
";

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qa-serve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The study planned (every trial pending) in `dir/sweep.db`; returns the writer.
fn planned(dir: &Path) -> Store {
    let study = spec::Study::from_yaml_str(STUDY, "live.yaml").unwrap();
    let mut store = Store::open(&dir.join("sweep.db")).unwrap();
    // The runner's own plan: real trial ids, in the order the runner claims them.
    let rows = runner::plan(&study).unwrap().rows().unwrap();
    store
        .save_plan("live", Some("a live test"), STUDY, "cafe", &rows)
        .unwrap();
    store.heartbeat("r", "host", 1, 600.0).unwrap();
    store
}

/// Claims the next trial as the runner would: it is running on `device`.
fn start_next(store: &mut Store, device: &str) -> (String, u32) {
    let c = store
        .claim_next("live", "r", device, "host", 1, 600.0, 0, &[])
        .unwrap()
        .unwrap();
    (c.trial_id.as_str().to_string(), c.attempt)
}

fn metrics(store: &mut Store, trial: &str, upto: i64, total: i64) {
    let mut rows = vec![MetricRow {
        step: 0,
        epoch: None,
        name: "total_steps".into(),
        value: total as f64,
        time: None,
    }];
    rows.extend((1..=upto / 10).map(|k| MetricRow {
        step: k * 10,
        epoch: None,
        name: "loss".into(),
        value: 4.0 / k as f64,
        time: None,
    }));
    store.ingest_metrics(trial, &rows, &[], 0, true).unwrap();
}

fn finish(store: &mut Store, trial: &str, attempt: u32, f1: Option<f64>) {
    let mut f = Finish::new(if f1.is_some() {
        TrialStatus::Succeeded
    } else {
        TrialStatus::Failed
    });
    f.f1 = f1;
    f.em = f1.map(|x| x - 10.0);
    if f1.is_none() {
        f.error = Some(format!(
            "{}RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
            "x".repeat(1000)
        ));
    }
    store.finish(trial, attempt, "r", &f).unwrap();
}

/// Starts a server on a free loopback port (it runs until the test process ends).
fn serve(db: &Path, configure: impl FnOnce(&mut serve::Options)) -> serve::Started {
    let mut opts = serve::Options::new(db.to_path_buf());
    opts.port = 0;
    configure(&mut opts);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = serve::run(opts, |s| tx.send(s.clone()).unwrap());
        panic!("the server stopped: {result:?}");
    });
    rx.recv_timeout(Duration::from_secs(20)).unwrap()
}

/// Sends `raw` and reads the whole answer: (status, body).
fn exchange(addr: SocketAddr, raw: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(raw).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

fn study(addr: SocketAddr, query: &str) -> Value {
    let (status, body) = get(addr, &format!("/api/studies/live{query}"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn trial<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["trials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["trial"] == id)
        .unwrap()
}

#[test]
fn the_view_follows_a_trial_from_queued_to_running_to_done() {
    let dir = scratch("follow");
    let mut writer = planned(&dir);
    let server = serve(&dir.join("sweep.db"), |_| {});
    let first = study(server.addr, "");
    assert_eq!(first["trials"].as_array().unwrap().len(), 4);
    assert!(first["trials"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["status"] == "pending"));
    assert_eq!(first["claims"][0]["comparison"], "wide vs baseline");

    let (id, attempt) = start_next(&mut writer, "cuda:1");
    metrics(&mut writer, &id, 40, 100);
    let running = study(server.addr, "");
    let t = trial(&running, &id);
    assert_eq!(t["status"], "running", "{t}");
    assert_eq!(t["device"], "cuda:1");
    assert_eq!(t["step"], 40);
    assert_eq!(t["total_steps"], 100);
    assert!(t["left_s"].as_f64().unwrap() >= 0.0, "{t}");
    assert_eq!(running["curves"][0]["metric"], "loss");
    let (status, svg) = get(server.addr, "/api/studies/live/curves/loss");
    assert_eq!(status, 200);
    assert!(svg.contains("<svg") && svg.contains("baseline"), "{svg}");

    metrics(&mut writer, &id, 100, 100);
    finish(&mut writer, &id, attempt, Some(71.5));
    let done = study(server.addr, "");
    let t = trial(&done, &id);
    assert_eq!(t["status"], "succeeded");
    assert_eq!(t["f1"], 71.5);
    assert!(t["left_s"].is_null());

    let (failed, attempt) = start_next(&mut writer, "cuda:0");
    finish(&mut writer, &failed, attempt, None);
    let after = study(server.addr, "");
    let error = trial(&after, &failed)["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.ends_with("Tried to allocate 2.00 GiB"), "{error}");
    assert_eq!(error.chars().count(), 600, "only the tail is shown");
    assert_eq!(after["counts"]["failed"], 1);
    assert_eq!(after["counts"]["succeeded"], 1);
}

#[test]
fn a_waiting_request_answers_when_the_database_changes() {
    let dir = scratch("wait");
    let mut writer = planned(&dir);
    let server = serve(&dir.join("sweep.db"), |_| {});
    let version = study(server.addr, "")["version"]
        .as_str()
        .unwrap()
        .to_string();
    // Nothing changes: the answer comes after the wait asked for, with the same version.
    let t0 = Instant::now();
    let same = study(server.addr, &format!("?wait={version}&wait_s=1"));
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert_eq!(same["version"], version);
    // A write while waiting: the answer comes at once, with the new state.
    let addr = server.addr;
    let v = version.clone();
    let waiting = std::thread::spawn(move || {
        let t0 = Instant::now();
        let doc = study(addr, &format!("?wait={v}&wait_s=8"));
        (doc, t0.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    let (id, _) = start_next(&mut writer, "cpu");
    let (doc, waited) = waiting.join().unwrap();
    assert_ne!(doc["version"], version);
    assert_eq!(trial(&doc, &id)["status"], "running");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[test]
fn the_token_is_required_when_set() {
    let dir = scratch("token");
    let _writer = planned(&dir);
    let token = serve::new_token().unwrap();
    let server = serve(&dir.join("sweep.db"), |o| o.token = Some(token.clone()));
    assert_eq!(server.token.as_deref(), Some(token.as_str()));
    assert!(server.url.ends_with(&format!("?token={token}")));
    for path in ["/", "/app.js", "/api/studies", "/api/studies/live"] {
        assert_eq!(get(server.addr, path).0, 401, "{path}");
        assert_eq!(get(server.addr, &format!("{path}?token=wrong")).0, 401);
        assert_eq!(
            get(server.addr, &format!("{path}?token={}", &token[..31])).0,
            401
        );
        assert_eq!(get(server.addr, &format!("{path}?token={token}")).0, 200);
    }
    let (status, _) = exchange(
        server.addr,
        format!("GET /api/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(status, 200);
}

#[test]
fn beyond_loopback_a_token_is_made_and_printed() {
    let dir = scratch("anyaddr");
    let _writer = planned(&dir);
    let server = serve(&dir.join("sweep.db"), |o| o.bind = [0, 0, 0, 0].into());
    let token = server.token.clone().unwrap();
    assert_eq!(token.len(), 32);
    let local = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    assert_eq!(get(local, "/api/studies").0, 401);
    assert_eq!(get(local, &format!("/api/studies?token={token}")).0, 200);
    let loopback = serve(&dir.join("sweep.db"), |_| {});
    assert!(loopback.token.is_none());
}

#[test]
fn no_address_reaches_the_file_system_beyond_the_known_report() {
    let dir = scratch("paths");
    let _writer = planned(&dir);
    std::fs::write(dir.join("secret.txt"), "SECRET").unwrap();
    let server = serve(&dir.join("sweep.db"), |_| {});
    // No report yet: a 404 that says how to make one.
    let (status, body) = get(server.addr, "/report/live");
    assert_eq!((status, body.contains("sweep report live")), (404, true));
    // A report that is a link to another file is refused.
    let reports = serve::reports_dir(&dir.join("sweep.db")).join("live");
    std::fs::create_dir_all(&reports).unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), reports.join("index.html")).unwrap();
    assert_eq!(get(server.addr, "/report/live").0, 404);
    // A real one is served.
    std::fs::remove_file(reports.join("index.html")).unwrap();
    std::fs::write(reports.join("index.html"), "<html>REPORT</html>").unwrap();
    let (status, body) = get(server.addr, "/report/live");
    assert_eq!((status, body.as_str()), (200, "<html>REPORT</html>"));
    for path in [
        "/../secret.txt",
        "/../../../../etc/passwd",
        "/report/..%2Fsecret.txt",
        "/report/..%2F..%2Fsecret.txt",
        "/report/%2e%2e",
        "/report/%2E%2E%2Fsweep.db",
        "/report//etc/passwd",
        "//etc/passwd",
        "/report/live/../../secret.txt",
        "/report/live%2F..%2F..%2Fsecret.txt",
        "/api/studies/..%2F..%2Fsecret.txt",
        "/api/studies/live/curves/..%2F..%2Fsweep.db",
        "/api/studies/live/curves/%2Fetc%2Fpasswd",
        "/app.js/../secret.txt",
        "/sweep.db",
        "/secret.txt",
        "/etc/passwd",
    ] {
        let (status, body) = get(server.addr, path);
        assert!(matches!(status, 400 | 404), "{path}: {status} {body}");
        assert!(
            !body.contains("SECRET") && !body.contains("SQLite format") && !body.contains("root:"),
            "{path}: {body}"
        );
    }
    assert_eq!(
        exchange(server.addr, b"POST /api/studies HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").0,
        405
    );
}

#[test]
fn oversized_slow_and_too_many_clients_are_bounded() {
    let dir = scratch("bounds");
    let _writer = planned(&dir);
    let server = serve(&dir.join("sweep.db"), |o| {
        o.max_connections = 4;
        o.header_timeout = Duration::from_secs(1);
    });
    // A request head beyond 16 KiB is refused.
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(20_000)
    );
    let (status, _) = exchange(server.addr, huge.as_bytes());
    assert_eq!(status, 431);
    // A client that never finishes its head is cut off after the header timeout, and does not
    // hold up the others meanwhile.
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let t0 = Instant::now();
    assert_eq!(get(server.addr, "/api/studies").0, 200);
    assert!(t0.elapsed() < Duration::from_millis(900));
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let cut = t0.elapsed();
    assert!(cut < Duration::from_secs(5), "cut off after {cut:?}");
    // Four idle connections take every slot: the fifth is told to retry, at once.
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    let (status, body) = get(server.addr, "/api/studies");
    assert_eq!((status, body.contains("too many connections")), (503, true));
    assert!(t0.elapsed() < Duration::from_secs(2));
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(server.addr, "/api/studies").0, 200);
}

/// The page in headless Chromium while a writer moves trials along: one page load sees a
/// trial go from pending to running to succeeded (its log of changes would be empty after a
/// reload), a curve drawn, a failure's error, and the claims. Long polling keeps the
/// browser's virtual time waiting for the server, so the writer's real-time steps show up.
#[test]
#[ignore = "needs Debian's chromium; make test-all runs it"]
fn the_page_updates_without_a_reload() {
    let browser = testkit::chromium().expect("chromium is not installed (apt install chromium)");
    let dir = scratch("browser");
    let mut writer = planned(&dir);
    let server = serve(&dir.join("sweep.db"), |_| {});
    let writes = std::thread::spawn(move || {
        // Time for Chromium to start and show the pending trials first.
        std::thread::sleep(Duration::from_millis(6000));
        let (id, attempt) = start_next(&mut writer, "cpu");
        std::thread::sleep(Duration::from_millis(1500));
        metrics(&mut writer, &id, 60, 100);
        std::thread::sleep(Duration::from_millis(1500));
        metrics(&mut writer, &id, 100, 100);
        finish(&mut writer, &id, attempt, Some(64.25));
        let (failed, attempt) = start_next(&mut writer, "cpu");
        std::thread::sleep(Duration::from_millis(1000));
        finish(&mut writer, &failed, attempt, None);
        writer
    });
    let profile = dir.join("chromium-profile");
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=20000",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            &format!("{}?wait_s=1#live", server.url),
        ])
        .output()
        .unwrap();
    let _writer = writes.join().unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "baseline seed 1: pending → running",
        "baseline seed 1: running → succeeded",
        "running → failed",
        "F1 64.25",
        "CUDA out of memory",
        "data-metric=\"loss\"",
        "wide vs baseline",
    ] {
        assert!(dom.contains(want), "the page lacks {want:?}:\n{dom}");
    }
}
