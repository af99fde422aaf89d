//! What a long phase (fetch, layers, write, push) shows on stderr while it runs: a bar on
//! a terminal, a line as each phase starts and ends with `--verbose`, nothing with
//! `--quiet`. Only ever stderr (stdout carries `--json`), and never a byte of any output.
//!
//! How much to show is one setting for the process, as a logger's level is: the binary
//! sets it from `-q`/`-v`; a caller that wants one operation silent (the layer pushes of
//! `--cache-registry`) still passes its own `quiet`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// How much the process shows on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Errors only (`--quiet`).
    Quiet,
    /// Bars on a terminal outside CI; otherwise nothing while working.
    Normal,
    /// Also a line as each phase starts and ends, and one per item done (`--verbose`).
    Verbose,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Normal as u8);

/// Set the process's level (the binary does, from `-q` and `-v`).
pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// The process's level.
pub fn level() -> Level {
    match LEVEL.load(Ordering::Relaxed) {
        0 => Level::Quiet,
        1 => Level::Normal,
        _ => Level::Verbose,
    }
}

/// Whether bars are drawn: stderr is a terminal and `$CI` is not set (a CI log would hold
/// every redraw).
fn bars() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// What a phase counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes (shown as sizes, with a rate).
    Bytes,
    /// Things (layers, outputs).
    Items,
}

/// One phase of work as the user sees it. Inert (every method a no-op) when quiet.
pub struct Phase {
    name: String,
    bar: Option<ProgressBar>,
    /// `--verbose`: lines for the phase and each item.
    lines: bool,
    start: Instant,
}

impl Phase {
    /// Start phase `name` of `total` units; `quiet` silences this one phase whatever the
    /// level.
    pub fn start(name: &str, total: u64, unit: Unit, quiet: bool) -> Phase {
        let level = if quiet { Level::Quiet } else { level() };
        let bar = (level >= Level::Normal && total > 0 && bars()).then(|| {
            let b = ProgressBar::new(total);
            let template = match unit {
                Unit::Bytes => {
                    format!(
                        "{name} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} {{msg}}"
                    )
                }
                Unit::Items => format!("{name} [{{bar:30}}] {{pos}}/{{len}} {{msg}}"),
            };
            if let Ok(style) = ProgressStyle::with_template(&template) {
                b.set_style(style);
            }
            b
        });
        let p = Phase {
            name: name.to_owned(),
            bar,
            lines: level == Level::Verbose,
            start: Instant::now(),
        };
        if p.lines {
            let what = match unit {
                Unit::Bytes => crate::text::bytes(total),
                Unit::Items => total.to_string(),
            };
            p.line(&format!("{name}: started ({what})"));
        }
        p
    }

    /// `n` more units done.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// What is being worked on, next to the bar.
    pub fn message(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.set_message(msg.to_owned());
        }
    }

    /// With `--verbose`, one line about an item (made only then: `text` may cost).
    pub fn detail(&self, text: impl FnOnce() -> String) {
        if self.lines {
            self.line(&format!("{}: {}", self.name, text()));
        }
    }

    /// A line on stderr, above the bar when there is one.
    fn line(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// The phase is done: the bar goes; with `--verbose`, how long it took.
    pub fn finish(mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if self.lines {
            eprintln!(
                "{}: done in {:.2}s",
                self.name,
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}

impl Drop for Phase {
    /// A phase that failed takes its bar with it, so the error line starts clean.
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
