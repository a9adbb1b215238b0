//! Progress on a terminal, logs everywhere, and the two never garbling each other.
//!
//! Bars and spinners (indicatif) are drawn only when stderr is a terminal; in cron and CI they
//! are hidden and logs are plain timestamped lines. Every log line goes through
//! [`LogWriter`], which redacts secrets and, while bars are drawn, prints through
//! `MultiProgress::suspend` so a line never lands in the middle of a bar.

use std::io::{self, IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

static MULTI: OnceLock<MultiProgress> = OnceLock::new();

/// The log format chosen by [`init_logging`], so closing messages can follow it.
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Whether stderr is an interactive terminal that can show progress.
pub fn stderr_is_terminal() -> bool {
    io::stderr().is_terminal()
        && std::env::var("TERM").map_or(true, |t| t != "dumb" && !t.is_empty())
}

/// Progress display for one run.
#[derive(Clone, Default)]
pub struct Progress {
    multi: Option<MultiProgress>,
}

impl Progress {
    /// Bars on stderr when `enabled` (a terminal, not `-q`), else nothing.
    pub fn new(enabled: bool) -> Self {
        if !enabled {
            return Progress { multi: None };
        }
        let multi = MULTI
            .get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
            .clone();
        Progress { multi: Some(multi) }
    }

    /// A bar counting a loop's items.
    pub fn loop_bar(&self, step: &str, len: u64) -> ProgressBar {
        let Some(m) = &self.multi else {
            return ProgressBar::hidden();
        };
        let bar = m.add(ProgressBar::new(len));
        bar.set_style(
            ProgressStyle::with_template(if colors() {
                "{spinner} {prefix:.bold} [{bar:30}] {pos}/{len} {elapsed}"
            } else {
                "{spinner} {prefix} [{bar:30}] {pos}/{len} {elapsed}"
            })
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(step.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    /// A bar for one download: bytes, total when known, and rate. Cleared when done.
    pub fn download_bar(&self, what: &str) -> ProgressBar {
        let Some(m) = &self.multi else {
            return ProgressBar::hidden();
        };
        let bar = m.add(ProgressBar::no_length());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg} {bytes}/{total_bytes} {binary_bytes_per_sec} {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    /// A spinner for polling, whose message shows the gateway job's status.
    pub fn spinner(&self, what: &str) -> ProgressBar {
        let Some(m) = &self.multi else {
            return ProgressBar::hidden();
        };
        let bar = m.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

/// A bar that is finished and cleared when it goes out of scope, whatever the exit path.
pub struct Cleared(pub ProgressBar);

impl Drop for Cleared {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// The log sink: redacts secrets, and suspends bars while writing.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

/// One log event's buffer, flushed as a whole line.
pub struct LineWriter {
    buf: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = crate::secret::redact(&String::from_utf8_lossy(&self.buf));
        let write = || {
            let mut err = io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        };
        match MULTI.get() {
            Some(m) => m.suspend(write),
            None => write(),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            buf: Vec::with_capacity(256),
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines (timestamped when stderr is not a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Colours on a terminal unless `NO_COLOR` is set to a non-empty value (no-color.org).
pub fn colors() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Sets up logging. `verbosity`: -1 quiet, 0 default, 1 `-v`, 2 `-vv`.
pub fn init_logging(verbosity: i8, format: LogFormat) {
    let _ = FORMAT.set(format);
    let terminal = stderr_is_terminal();
    let level = match verbosity {
        i8::MIN..=-1 => "error",
        0 if terminal => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::new(format!("warn,dap_run={level}"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogWriter)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text if terminal => builder.without_time().with_ansi(colors()).try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}

/// Whether logs are JSON lines (`--log-format json`).
fn json_logs() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

/// Prints the closing summary of a run on stderr: as is in text mode, as one log event in
/// JSON mode (so every stderr line is JSON). `-q` shows it only when the run failed.
pub fn print_summary(text: &str, success: bool, quiet: bool) {
    if json_logs() {
        if success {
            tracing::info!(summary = true, "{text}");
        } else {
            tracing::error!(summary = true, "{text}");
        }
    } else if !quiet || !success {
        eprintln!("{text}");
    }
}

/// Prints the diagnostic that ends a command: `error: ...` in text mode (or the diagnostics
/// as they are, `plain`), one error event in JSON mode.
pub fn print_error(text: &str, plain: bool) {
    if json_logs() {
        tracing::error!("{text}");
    } else if plain {
        eprintln!("{text}");
    } else {
        eprintln!("error: {text}");
    }
}
