//! Output. Results go to stdout; progress, notes and errors go to stderr. Spinners and bars show only when
//! stderr is a terminal and the output is for humans; elsewhere each finished step prints one plain line.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{Identity, OutputFormat};

#[derive(Clone)]
pub struct Ui {
    json: bool,
    quiet: bool,
    animate: bool,
    multi: MultiProgress,
    /// Commands named in notes and warnings are spelled for the loop the user named.
    identity: Identity,
}

impl Ui {
    pub fn new(format: Option<OutputFormat>, quiet: bool) -> Self {
        let json = format == Some(OutputFormat::Json);
        let animate = !json && !quiet && std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if animate {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        Ui {
            json,
            quiet,
            animate,
            multi,
            identity: Identity::default(),
        }
    }

    /// The same, spelling `restate-dev` commands in notes and warnings with the flags in `identity`.
    pub fn spelling(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Plain lines on stderr are for humans who did not ask for quiet.
    fn chatty(&self) -> bool {
        !self.json && !self.quiet
    }

    /// A spinner with the elapsed time, for a step of unknown length.
    pub fn step(&self, name: impl Into<String>) -> Step {
        let name = name.into();
        let bar = self.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {wide_msg:.dim} {elapsed:>4}").unwrap(),
        );
        bar.set_prefix(name.clone());
        bar.enable_steady_tick(Duration::from_millis(100));
        Step {
            ui: self.clone(),
            bar,
            name,
            started: Instant::now(),
            finished: false,
        }
    }

    /// A byte-counting bar, for pulls and image loads.
    pub fn bytes(&self, message: impl Into<String>, total: Option<u64>) -> ProgressBar {
        let bar = self.add(match total {
            Some(total) => ProgressBar::new(total),
            None => ProgressBar::no_length(),
        });
        let template = if total.is_some() {
            "  {msg} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec} {elapsed:>4}"
        } else {
            "  {spinner:.cyan} {msg} {bytes} {bytes_per_sec} {elapsed:>4}"
        };
        bar.set_style(ProgressStyle::with_template(template).unwrap().progress_chars("=> "));
        bar.set_message(message.into());
        bar
    }

    fn add(&self, bar: ProgressBar) -> ProgressBar {
        if self.animate {
            self.multi.add(bar)
        } else {
            ProgressBar::hidden()
        }
    }

    /// A note for humans on stderr.
    pub fn info(&self, line: impl AsRef<str>) {
        if self.chatty() {
            self.eprint(&self.identity.respell(line.as_ref()));
        }
    }

    /// A warning on stderr, shown even with --quiet.
    pub fn warn(&self, line: impl AsRef<str>) {
        if !self.json {
            self.eprint(&format!("warning: {}", self.identity.respell(line.as_ref())));
        }
    }

    fn eprint(&self, line: &str) {
        if self.animate {
            self.multi.suspend(|| eprint_line(line));
        } else {
            eprint_line(line);
        }
    }

    /// A result on stdout.
    pub fn print(&self, text: impl AsRef<str>) {
        self.multi.suspend(|| print_line(text.as_ref()));
    }

    pub fn print_json(&self, value: &serde_json::Value) {
        self.print(serde_json::to_string_pretty(value).expect("JSON values serialize"));
    }
}

/// The first failed write to stdout. `println!` would panic instead (`status | head -1` closes the pipe early).
static STDOUT_FAILURE: OnceLock<std::io::Error> = OnceLock::new();

/// Writes `text` and a newline to stdout, unless an earlier write failed; a failure is kept for
/// [`stdout_failure`], and nothing more is written.
pub fn print_line(text: &str) {
    if STDOUT_FAILURE.get().is_some() {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        let _ = STDOUT_FAILURE.set(e);
    }
}

/// Why stdout could not be written, if it could not: `main` ends quietly on a closed pipe, as git does.
pub fn stdout_failure() -> Option<&'static std::io::Error> {
    STDOUT_FAILURE.get()
}

/// Writes a line to stderr; a closed stderr is ignored, since there is nowhere left to say anything.
pub fn eprint_line(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// One step in progress. Dropping it unfinished marks it failed.
pub struct Step {
    ui: Ui,
    bar: ProgressBar,
    name: String,
    started: Instant,
    finished: bool,
}

impl Step {
    pub fn set_message(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The step succeeded; `detail` says what it did.
    pub fn done(mut self, detail: impl AsRef<str>) -> Duration {
        self.finish("✓", detail.as_ref())
    }

    /// The step had nothing to do.
    pub fn skipped(mut self, detail: impl AsRef<str>) -> Duration {
        self.finish("·", detail.as_ref())
    }

    fn finish(&mut self, mark: &str, detail: &str) -> Duration {
        self.finished = true;
        let elapsed = self.started.elapsed();
        self.bar.finish_and_clear();
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(" {detail}")
        };
        self.ui
            .info(format!("{mark} {}{detail} ({})", self.name, format_duration(elapsed)));
        elapsed
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if !self.finished {
            self.finish("✗", "failed");
        }
    }
}

pub fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(60) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(Duration::from_millis(1234)), "1.2s");
        assert_eq!(format_duration(Duration::from_secs(75)), "1m15s");
    }
}
