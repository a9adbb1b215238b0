//! Progress on a terminal, logs everywhere, and the two never garbling each other.
//!
//! Bars and spinners (indicatif) are drawn only when stderr is a terminal; in cron and CI they
//! are hidden and logs are plain timestamped lines. Every log line goes through
//! [`LogWriter`], which redacts secrets and, while bars are drawn, prints through
//! `MultiProgress::suspend` so a line never lands in the middle of a bar.

mod fields;

use std::io::{self, Write};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

static MULTI: OnceLock<MultiProgress> = OnceLock::new();

/// The log format chosen by [`init_logging`], so closing messages can follow it.
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Whether log lines are timestamped text (not a terminal, not JSON): then every line of a
/// multi-line event and of the closing summary starts with a timestamp, so a cron log can be
/// filtered by time or grepped line by line without losing a `= help:` line's date.
static STAMPED: OnceLock<bool> = OnceLock::new();

/// Whether colours are on (a terminal, `NO_COLOR` unset), as [`init_logging`] was told.
static COLORS: OnceLock<bool> = OnceLock::new();

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
            ProgressStyle::with_template(if COLORS.get() == Some(&true) {
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
        let mut text = crate::secret::redact(&String::from_utf8_lossy(&self.buf));
        if STAMPED.get() == Some(&true) {
            text = stamp_continuations(&text);
        }
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

/// Sets up logging. `verbosity`: -1 quiet, 0 default, 1 `-v`, 2 `-vv`; `terminal`: stderr is
/// a terminal that can draw progress; `colors`: colours on it.
pub fn init_logging(verbosity: i8, format: LogFormat, terminal: bool, colors: bool) {
    let _ = FORMAT.set(format);
    let _ = COLORS.set(terminal && colors);
    let _ = STAMPED.set(format == LogFormat::Text && !terminal);
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
        LogFormat::Text if terminal => builder
            .fmt_fields(fields::TextFields)
            .without_time()
            .with_ansi(colors)
            .try_init(),
        LogFormat::Text => builder
            .fmt_fields(fields::TextFields)
            .with_ansi(false)
            .try_init(),
    };
}

/// Whether logs are JSON lines (`--log-format json`).
fn json_logs() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

/// The counts of a run's closing summary, as fields of the JSON summary event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SummaryCounts {
    /// The job's name.
    pub job: String,
    /// The run's exit code.
    pub exit_code: i32,
    /// Steps run (not skipped).
    pub steps: u64,
    /// Loop items run.
    pub loop_items: u64,
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Logins (or InstAccess mints).
    pub logins: u64,
    /// Requests sent.
    pub requests: u64,
    /// Retries after transient failures.
    pub retries: u64,
    /// DAP queries that were snapshots.
    pub snapshots: u64,
    /// DAP queries that were incremental.
    pub incremental: u64,
    /// Failures (steps and items).
    pub failures: u64,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Whether the state file was written.
    pub state_saved: bool,
}

/// Emits the summary as one event whose fields are the counts (`--log-format json`).
macro_rules! summary_event {
    ($level:ident, $c:expr, $note:expr, $text:expr) => {
        tracing::$level!(
            summary = true,
            note = $note,
            job = %$c.job,
            exit_code = $c.exit_code,
            steps = $c.steps,
            loop_items = $c.loop_items,
            files = $c.files,
            bytes = $c.bytes,
            logins = $c.logins,
            requests = $c.requests,
            retries = $c.retries,
            snapshots = $c.snapshots,
            incremental = $c.incremental,
            failures = $c.failures,
            duration_ms = $c.duration_ms,
            state_saved = $c.state_saved,
            "{}",
            $text
        )
    };
}

/// Prints the closing summary of a run on stderr, each line (or entry of a few lines) with its
/// own level: as is on a terminal; every line timestamped with its level in a log file
/// (cron), so that a table that loaded is not logged at ERROR because another failed; in JSON
/// mode one event whose fields are the counts, holding the first line and those of its level,
/// then one event per other line at its level (so every stderr line is JSON). `-q` shows it
/// only when the run failed.
pub fn print_summary(
    lines: &[(tracing::Level, &str, Option<&str>)],
    counts: &SummaryCounts,
    quiet: bool,
) {
    let success = counts.exit_code == 0;
    let Some((head_level, _, _)) = lines.first() else {
        return;
    };
    if json_logs() {
        // A line's note is a field of its event, never `= note:` text in its message.
        let (with_head, others): (Vec<_>, Vec<_>) = lines
            .iter()
            .enumerate()
            .partition(|(i, (level, _, _))| *i == 0 || level == head_level);
        let text: Vec<&str> = with_head.iter().map(|(_, (_, t, _))| *t).collect();
        let text = text.join("\n");
        let notes: Vec<&str> = with_head.iter().filter_map(|(_, (_, _, n))| *n).collect();
        let note = (!notes.is_empty()).then(|| notes.join("\n"));
        let note = note.as_deref();
        if success {
            summary_event!(info, counts, note, text);
        } else {
            summary_event!(error, counts, note, text);
        }
        for (_, (level, text, note)) in others {
            log_at(*level, text, *note);
        }
    } else if !quiet || !success {
        for (level, text, note) in lines {
            let text = crate::error::advice::render(text, *note, None);
            eprint_lines(&text, level.as_str());
        }
    }
}

/// A log event at a level known only at run time, its note a field.
fn log_at(level: tracing::Level, text: &str, note: Option<&str>) {
    match level {
        tracing::Level::ERROR => tracing::error!(note, "{text}"),
        tracing::Level::WARN => tracing::warn!(note, "{text}"),
        tracing::Level::INFO => tracing::info!(note, "{text}"),
        tracing::Level::DEBUG => tracing::debug!(note, "{text}"),
        _ => tracing::trace!(note, "{text}"),
    }
}

/// Prints the closing line of a command that ran several jobs (`-q`: only when one failed).
pub fn print_jobs_line(text: &str, jobs: usize, code: crate::error::ExitCode, quiet: bool) {
    let success = code == crate::error::ExitCode::Success;
    if json_logs() {
        if success {
            tracing::info!(jobs_summary = true, jobs, exit_code = code.code(), "{text}");
        } else {
            tracing::error!(jobs_summary = true, jobs, exit_code = code.code(), "{text}");
        }
    } else if !quiet || !success {
        eprint_lines(text, if success { "INFO" } else { "ERROR" });
    }
}

/// Prints text that is not a log event (a summary) on stderr, each line timestamped when logs
/// are (cron), the way the log formatter writes its lines.
pub fn eprint_lines(text: &str, level: &str) {
    let mut out = String::new();
    if STAMPED.get() == Some(&true) {
        let prefix = format!("{} {level:>5}", timestamp());
        for line in text.lines() {
            out.push_str(&prefix);
            out.push(' ');
            out.push_str(line);
            out.push('\n');
        }
    } else {
        out.push_str(text);
        out.push('\n');
    }
    let write = || {
        let mut err = io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
        let _ = err.flush();
    };
    match MULTI.get() {
        Some(m) => m.suspend(write),
        None => write(),
    }
}

/// The current time as the log formatter writes it (RFC 3339, microseconds, UTC).
fn timestamp() -> String {
    crate::timestamp::now_micros()
}

/// Gives the continuation lines of one formatted event (`= help:` lines, a multi-line
/// message) the first line's timestamp and level.
fn stamp_continuations(text: &str) -> String {
    let mut lines = text.split_inclusive('\n');
    let Some(first) = lines.next() else {
        return text.to_owned();
    };
    // `2026-11-24T02:15:01.123456Z  INFO message`: the prefix ends after the level.
    let prefix = first
        .find(' ')
        .and_then(|ts_end| {
            let rest = &first[ts_end..];
            let level_start = ts_end + rest.len() - rest.trim_start().len();
            first[level_start..]
                .find(' ')
                .map(|level_len| &first[..level_start + level_len])
        })
        .unwrap_or("");
    if prefix.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() * 2);
    out.push_str(first);
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        out.push_str(prefix);
        out.push(' ');
        out.push_str(line);
    }
    out
}

/// Prints the error that ends a command: `error: ...` in text mode, each line timestamped when
/// the log is (not a terminal), or the diagnostics as they are; in JSON mode one event per
/// diagnostic with its `file`, `line` and `column` as fields, then one with the count, or one
/// event for any other error.
pub fn print_error(e: &crate::error::Error) {
    print_error_of(e, None);
}

/// [`print_error`] for the error that ended one of several jobs: the message names the job.
pub fn print_error_of(e: &crate::error::Error, job: Option<&str>) {
    let mut text = crate::secret::redact(&e.to_string());
    if let Some(job) = job {
        text = format!("job `{job}`: {text}");
    }
    let note = e.note().map(|n| crate::secret::redact(&n));
    let help = e.help().map(|h| crate::secret::redact(&h));
    match e {
        crate::error::Error::Invalid(diags) if json_logs() => {
            for d in diags.located() {
                let message = crate::secret::redact(&d.message);
                tracing::error!(
                    file = %d.file,
                    line = d.line,
                    column = d.column,
                    label = d.label.as_deref(),
                    help = d.help.as_deref(),
                    "{message}"
                );
            }
            tracing::error!(
                problems = diags.len(),
                "{}",
                crate::diagnostic::count_line(diags.len())
            );
        }
        // The rendered diagnostics stay as rustc renders its own, whatever the mode: their
        // `--> file:line:col` lines start the line, where editors' and CI's problem matchers
        // look for them (`--log-format json` gives each problem's place as fields).
        crate::error::Error::Invalid(_) => eprintln!("{text}"),
        _ if json_logs() => {
            tracing::error!(note = note.as_deref(), help = help.as_deref(), "{text}");
        }
        _ => print_error_message(&crate::error::advice::render(
            &text,
            note.as_deref(),
            help.as_deref(),
        )),
    }
}

/// Prints the message of an error that ends a command as the last line of its log: one event
/// in JSON mode; in text mode `error: ...`, timestamped with its level like every other line
/// when stderr is not a terminal (cron).
pub fn print_error_message(text: &str) {
    if json_logs() {
        tracing::error!("{text}");
    } else {
        eprint_lines(&format!("error: {text}"), "ERROR");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_lines_get_the_first_lines_timestamp_and_level() {
        let event = "2026-11-24T02:15:01.123456Z ERROR step `x` failed\n  = help: retry\n";
        assert_eq!(
            stamp_continuations(event),
            "2026-11-24T02:15:01.123456Z ERROR step `x` failed\n2026-11-24T02:15:01.123456Z ERROR   = help: retry\n"
        );
        let padded = "2026-11-24T02:15:01.123456Z  INFO a\nb\n";
        assert_eq!(
            stamp_continuations(padded),
            "2026-11-24T02:15:01.123456Z  INFO a\n2026-11-24T02:15:01.123456Z  INFO b\n"
        );
        assert_eq!(stamp_continuations("one line\n"), "one line\n");
    }
}
