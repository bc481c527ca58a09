//! A small deterministic fuzzer for qa-sweep's loaders (cargo-fuzz needs a nightly
//! toolchain; these run on stable, inside `cargo test`).
//!
//! Each case is either a real file mutated 1–6 times (bit flips, byte changes,
//! truncation, deleted, duplicated or swapped ranges, tokens from a dictionary spliced
//! in) or, from a generator, a structured input (JSON built from the loader's own keys).
//! The loader runs on its own thread under a deadline: a panic or a hang fails the test,
//! and the input is saved under `target/fuzz-failures/` to reproduce it. A rejected input
//! must come with an error that names the file.
//!
//! Case counts: `QA_SWEEP_FUZZ_CASES` (default 200 per loader, the short form in
//! `make test`; `make fuzz` runs 20,000). Runs are reproducible: case i of a loader always
//! sees the same input.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What a loader did with one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Refused, with the loader's error message.
    Rejected(String),
}

/// A tiny deterministic generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Cases per loader.
pub fn cases() -> usize {
    std::env::var("QA_SWEEP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// Applies 1–6 random mutations to `input`.
pub fn mutate(rng: &mut Rng, input: &[u8], dictionary: &[&[u8]]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(6) {
        let n = v.len();
        match rng.below(8) {
            0 if n > 0 => {
                let i = rng.below(n);
                v[i] ^= 1 << rng.below(8);
            }
            1 if n > 0 => {
                let i = rng.below(n);
                v[i] = [
                    0u8, 0xff, b'"', b'{', b'}', b'[', b']', b':', b',', b'\n', b'-', b'9',
                ][rng.below(12)];
            }
            2 => v.truncate(rng.below(n + 1)),
            3 if n > 0 => {
                let a = rng.below(n);
                let b = (a + 1 + rng.below(64)).min(n);
                v.drain(a..b);
            }
            4 if n > 0 => {
                let a = rng.below(n);
                let b = (a + 1 + rng.below(256)).min(n);
                let chunk = v[a..b].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, chunk);
            }
            5 if !dictionary.is_empty() => {
                let word = dictionary[rng.below(dictionary.len())];
                let at = rng.below(n + 1);
                v.splice(at..at, word.iter().copied());
            }
            6 if n > 1 => {
                let (a, b) = (rng.below(n), rng.below(n));
                v.swap(a, b);
            }
            _ => {
                // A number-ish token in place of a byte: huge, negative, fractional.
                let word: &[u8] = [
                    &b"99999999999999999999"[..],
                    b"-1",
                    b"1e308",
                    b"0.5",
                    b"null",
                    b"\"\"",
                    b"[]",
                    b"{}",
                ][rng.below(8)];
                let at = rng.below(n + 1);
                v.splice(at..at, word.iter().copied());
            }
        }
    }
    v
}

/// A random JSON text whose object keys come from `keys` (so it reaches past the first
/// "unknown key" check), with hostile scalars: huge and negative numbers, floats where
/// integers belong, empty and odd strings, deep nesting.
pub fn json(rng: &mut Rng, keys: &[&str], depth: usize) -> String {
    let scalar = |rng: &mut Rng| -> String {
        match rng.below(12) {
            0 => "null".into(),
            1 => "true".into(),
            2 => "-1".into(),
            3 => "0".into(),
            4 => format!("{}", rng.below(100_000)),
            5 => "1e308".into(),
            6 => "18446744073709551616".into(),
            7 => "0.5".into(),
            8 => "\"\"".into(),
            9 => "\"\\u0000\\n$(x)\"".into(),
            10 => format!(
                "\"{}\"",
                keys.get(rng.below(keys.len().max(1))).unwrap_or(&"x")
            ),
            _ => "\"甲乙丙\"".into(),
        }
    };
    if depth == 0 || rng.chance(3) {
        return scalar(rng);
    }
    if rng.chance(3) {
        let n = rng.below(4);
        let items: Vec<String> = (0..n).map(|_| json(rng, keys, depth - 1)).collect();
        return format!("[{}]", items.join(","));
    }
    let n = rng.below(6);
    let fields: Vec<String> = (0..n)
        .map(|_| {
            let k = keys.get(rng.below(keys.len().max(1))).unwrap_or(&"k");
            format!("\"{k}\":{}", json(rng, keys, depth - 1))
        })
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// Makes a structured input from the generator's state.
pub type Generator<'a> = Box<dyn Fn(&mut Rng) -> Vec<u8> + 'a>;

/// One loader's fuzz run.
pub struct Target<'a> {
    /// Names the loader in reports and failure files.
    pub name: &'a str,
    /// Real inputs to mutate.
    pub seeds: Vec<Vec<u8>>,
    pub dictionary: Vec<&'a [u8]>,
    /// Structured inputs; used for one case in three when given.
    pub generate: Option<Generator<'a>>,
    /// The longest one input may take.
    pub deadline: Duration,
}

impl std::fmt::Debug for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("name", &self.name).finish()
    }
}

/// What a run saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The unmutated real inputs, all accepted (checked before the cases).
    pub seeds_accepted: usize,
    pub tried: usize,
    pub accepted: usize,
    pub rejected: usize,
}

/// Runs `check` on `cases()` inputs. `check` gets the input and must return the loader's
/// verdict; a rejection's message must contain `must_name` (the file name). Panics (fails
/// the test) on a loader panic, a hang past the deadline, or an error that does not name
/// the file, after saving the input.
pub fn run<F>(target: Target<'_>, must_name: &str, check: F) -> Report
where
    F: Fn(&[u8]) -> Verdict + Send + Sync + 'static,
{
    // The unmutated real inputs first: each must be accepted, so a loader that rejects
    // everything (and would pass every case below with a well-named error) fails here.
    for (i, seed) in target.seeds.iter().enumerate() {
        if let Verdict::Rejected(msg) = check(seed) {
            fail(
                &target,
                i,
                seed,
                &format!("real input {i} (unmutated) was rejected: {msg}"),
            );
        }
    }
    let check = Arc::new(check);
    let mut report = Report {
        seeds_accepted: target.seeds.len(),
        ..Report::default()
    };
    let n = cases();
    for i in 0..n {
        let mut rng = Rng::new(0x5EED ^ (i as u64) ^ hash(target.name));
        let input = match (&target.generate, target.seeds.is_empty()) {
            (Some(g), true) => g(&mut rng),
            (Some(g), false) if rng.chance(3) => g(&mut rng),
            _ => {
                let seed = &target.seeds[rng.below(target.seeds.len())];
                mutate(&mut rng, seed, &target.dictionary)
            }
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let worker = {
            let check = Arc::clone(&check);
            let input = input.clone();
            std::thread::Builder::new()
                .name(format!("fuzz-{}", target.name))
                .spawn(move || {
                    let v = check(&input);
                    let _ = tx.send(v);
                })
        };
        let Ok(worker) = worker else {
            fail(&target, i, &input, "cannot start a worker thread");
        };
        match rx.recv_timeout(target.deadline) {
            Ok(Verdict::Accepted) => report.accepted += 1,
            Ok(Verdict::Rejected(msg)) => {
                if !msg.contains(must_name) {
                    fail(
                        &target,
                        i,
                        &input,
                        &format!("the error does not name {must_name}: {msg}"),
                    );
                }
                report.rejected += 1;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => fail(
                &target,
                i,
                &input,
                &format!("no answer within {:?} (a hang?)", target.deadline),
            ),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let why = match worker.join() {
                    Err(p) => p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "a panic".into()),
                    Ok(()) => "the worker ended without a verdict".into(),
                };
                fail(&target, i, &input, &format!("panicked: {why}"));
            }
        }
        report.tried += 1;
    }
    eprintln!(
        "fuzz {}: {} real inputs accepted as they are; {} fuzzed inputs, {} accepted, {} rejected with an error naming the file; no panic, no hang",
        target.name, report.seeds_accepted, report.tried, report.accepted, report.rejected
    );
    report
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn fail(target: &Target<'_>, case: usize, input: &[u8], why: &str) -> ! {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{}-{case}.bin", target.name));
    let _ = std::fs::write(&path, input);
    #[allow(clippy::panic)] // the fuzzer's way to fail the calling test
    {
        panic!(
            "fuzz {} case {case}: {why}; input saved to {}",
            target.name,
            path.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_deterministic() {
        let a = mutate(&mut Rng::new(1), b"{\"a\": 1}", &[b"x"]);
        let b = mutate(&mut Rng::new(1), b"{\"a\": 1}", &[b"x"]);
        assert_eq!(a, b);
        let j = json(&mut Rng::new(3), &["k"], 3);
        assert_eq!(j, json(&mut Rng::new(3), &["k"], 3));
    }

    #[test]
    fn a_panicking_loader_fails_the_run() {
        let r = std::panic::catch_unwind(|| {
            run(
                Target {
                    name: "panics",
                    seeds: vec![b"x".to_vec()],
                    dictionary: vec![],
                    generate: None,
                    deadline: Duration::from_secs(5),
                },
                "f",
                |_| -> Verdict { panic!("boom") },
            )
        });
        assert!(r.is_err());
    }

    #[test]
    fn a_loader_that_rejects_everything_fails_the_run() {
        let r = std::panic::catch_unwind(|| {
            run(
                Target {
                    name: "rejects-all",
                    seeds: vec![b"{}".to_vec()],
                    dictionary: vec![],
                    generate: None,
                    deadline: Duration::from_secs(5),
                },
                "f",
                |_| Verdict::Rejected("f: no".into()),
            )
        });
        assert!(r.is_err());
    }
}
