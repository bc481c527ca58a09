//! Progress on a terminal: an overall bar (trials done of total, ETA) and a line per running
//! trial (device, step, loss, examples/s). Hidden when stderr is not a terminal (CI, logs),
//! where `tracing` lines say when each trial starts and ends instead.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug)]
pub(crate) struct Progress {
    multi: MultiProgress,
    overall: ProgressBar,
}

impl Progress {
    pub fn new(visible: bool, total: u64, done: u64) -> Self {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(total));
        let style = ProgressStyle::with_template(
            "{prefix:>8} [{bar:30}] {pos}/{len} trials  {elapsed_precise}  ETA {eta}  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        overall.set_style(style);
        overall.set_prefix("sweep");
        overall.set_position(done);
        Progress { multi, overall }
    }

    /// A line for a trial that just started.
    pub fn trial_line(&self, label: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new_spinner());
        let style = ProgressStyle::with_template("  {spinner} {prefix} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        bar.set_message("starting");
        bar
    }

    pub fn finish_trial(&self, bar: &ProgressBar, counts_as_done: bool) {
        bar.finish_and_clear();
        self.multi.remove(bar);
        if counts_as_done {
            self.overall.inc(1);
        }
    }

    /// The number of distinct trials (a sequential study adds some as it goes).
    pub fn set_total(&self, total: u64) {
        self.overall.set_length(total);
    }

    /// Trials already done when the run started.
    pub fn set_done(&self, done: u64) {
        self.overall.set_position(done);
    }

    /// A trial recorded as done without a line of its own (recovered from its folder).
    pub fn inc_done(&self) {
        self.overall.inc(1);
    }

    pub fn finish(&self) {
        self.overall.finish_and_clear();
    }

    /// A line for the user: above the bars on a terminal, as a log line otherwise (so it
    /// never tears the bars). `ok: false` logs it as a warning.
    pub fn log(&self, line: &str, ok: bool) {
        if self.multi.is_hidden() {
            if ok {
                tracing::info!("{line}");
            } else {
                tracing::warn!("{line}");
            }
        } else {
            let _ = self.multi.println(line);
        }
    }
}
