//! Opens a generated `index.html` from disk in headless Chromium and takes a screenshot;
//! fails on a console error, a resource that did not load, or a figure without a drawn
//! chart. A negative control (a page with a missing image and a console error) must fail
//! the same check, so the check itself is tested.
//!
//! Needs Debian's `chromium`: `#[ignore]`d, run by `make test-all` (CI installs chromium),
//! and failing when chromium is absent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

/// Installed before the page's own content: records console errors and failed loads.
const PROBE_HEAD: &str = r#"<script>
window.__problems = [];
const __err = console.error;
console.error = (...a) => { window.__problems.push("console.error: " + a.join(" ")); __err(...a); };
window.addEventListener("error", e => {
  const t = e.target;
  window.__problems.push(t && t !== window ? "failed to load: " + (t.src || t.href || t.tagName) : "error: " + e.message);
}, true);
</script>"#;

/// Runs after load: images decoded, every figure has a non-empty SVG.
const PROBE_TAIL: &str = r#"<script>
window.addEventListener("load", () => {
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) window.__problems.push("image not shown: " + img.src);
  }
  const figures = [...document.querySelectorAll("figure")];
  for (const f of figures) {
    const svg = f.querySelector("svg");
    if (!svg || svg.getBBox().width === 0) window.__problems.push("empty figure: " + f.id);
  }
  console.log("REPORT-CHECK " + JSON.stringify({problems: window.__problems, figures: figures.length}));
});
</script>"#;

/// (problems, number of figures) as the page reports them, and the screenshot path.
fn check_page(browser: &Path, html: &Path, screenshot: &Path) -> (Vec<String>, usize) {
    let text = std::fs::read_to_string(html).unwrap();
    let probed = text
        .replacen("<head>", &format!("<head>{PROBE_HEAD}"), 1)
        .replacen("</body>", &format!("{PROBE_TAIL}</body>"), 1);
    let probe_path = html.with_file_name("probe.html");
    std::fs::write(&probe_path, probed).unwrap();
    let profile = html.with_file_name("chromium-profile");
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,2400",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("file://{}", probe_path.display()))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let line = log
        .lines()
        .find(|l| l.contains("REPORT-CHECK"))
        .unwrap_or_else(|| panic!("the page never reported (did it load?):\n{log}"));
    let json = &line[line.find("REPORT-CHECK ").unwrap() + 13..];
    let json = &json[..json.rfind("\", source").unwrap_or(json.len())];
    let v: serde_json::Value = serde_json::from_str(&json.replace("\\\"", "\"")).unwrap();
    let problems = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    (problems, v["figures"].as_u64().unwrap() as usize)
}

#[test]
#[ignore = "needs Debian's chromium; make test-all runs it (CI installs chromium)"]
fn report_renders_in_headless_chromium() {
    let browser =
        testkit::chromium().expect("chromium is not installed (apt-get install chromium)");
    let dir = std::env::temp_dir().join(format!("qa-sweep-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // Negative control: the check must catch a missing image and a console error.
    let bad = dir.join("bad/index.html");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, "<!DOCTYPE html><html><head></head><body><figure id=\"f\"><img src=\"missing.png\"></figure><script>console.error('boom')</script></body></html>").unwrap();
    let (problems, _) = check_page(&browser, &bad, &dir.join("bad.png"));
    assert!(
        problems.iter().any(|p| p.contains("missing.png")),
        "{problems:?}"
    );
    assert!(problems.iter().any(|p| p.contains("boom")), "{problems:?}");

    let store = common::build_db(&dir);
    let refs = report::references::References::embedded().unwrap();
    let out = dir.join("reports/fixture");
    let index = report::write_report(&store, "fixture", &out, &refs).unwrap();
    let screenshot = std::env::var_os("QA_SWEEP_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("report.png"));
    let (problems, figures) = check_page(&browser, &index, &screenshot);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(figures >= 6, "{figures} figures");
    let size = std::fs::metadata(&screenshot).unwrap().len();
    assert!(size > 50_000, "screenshot is only {size} bytes");
}
