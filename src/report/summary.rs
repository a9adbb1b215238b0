//! The closing summary a run prints on stderr: its counts, its queries, the first error in
//! plain words, what was not done; and the line that closes a command of several jobs.

use std::fmt::Write as _;

use super::JobResult;
use crate::error::ExitCode;
use crate::record::RunReport;

/// Human size: `1.2 MB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// One line (or the few lines of one entry) of the closing summary, with the level of its own
/// outcome: a table that loaded is INFO even when another one failed, so `grep ERROR` in a
/// cron log finds only what went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryLine {
    /// INFO for what went well, WARN for what was not done, ERROR for what failed.
    pub level: tracing::Level,
    /// The text (redacted).
    pub text: String,
    /// Context beside it (redacted), as data: the text log writes it as `= note:` lines under
    /// the text ([`SummaryLine::rendered`]), a JSON log as the event's `note` field.
    pub note: Option<String>,
}

impl SummaryLine {
    /// The line as the text log writes it: its text, then its note as `  = note:` lines.
    pub fn rendered(&self) -> String {
        crate::error::advice::render(&self.text, self.note.as_deref(), None)
    }
}

/// The closing summary: counts, then the first error in plain words.
pub fn summary(r: &RunReport) -> String {
    summary_lines(r)
        .iter()
        .map(SummaryLine::rendered)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The closing summary, line by line, each with its level: the counts (the run's level), the
/// queries and each loaded table (INFO), the first error (ERROR), what was not run or not
/// saved (WARN), the state saved (INFO).
pub fn summary_lines(r: &RunReport) -> Vec<SummaryLine> {
    use tracing::Level;
    let mut lines: Vec<SummaryLine> = Vec::new();
    // Pushes a line; returns its index, for a note given later.
    let mut line = |level: Level, text: String| {
        lines.push(SummaryLine {
            level,
            text: crate::secret::redact(&text),
            note: None,
        });
        lines.len() - 1
    };
    let steps = r.steps.iter().filter(|s| !s.skipped).count();
    let items: usize = r
        .steps
        .iter()
        .filter(|s| s.looped)
        .map(|s| s.items.len())
        .sum();
    let (files, bytes) = r.files();
    let code = r.exit_code();
    let failed = code != ExitCode::Success;
    let verdict = if failed {
        format!("failed (exit {})", code.code())
    } else {
        "ok".to_owned()
    };
    line(
        if failed { Level::ERROR } else { Level::INFO },
        format!(
            "{}: {verdict}: {steps} step{}, {items} loop item{}, {files} file{} ({}), {} login{}, {} request{}, {} retr{}, {:.1}s",
            r.job,
            plural(steps),
            plural(items),
            plural(files),
            human_bytes(bytes),
            r.logins,
            plural(r.logins as usize),
            r.requests,
            plural(r.requests as usize),
            r.retries,
            if r.retries == 1 { "y" } else { "ies" },
            r.duration.as_secs_f64()
        ),
    );
    if let Some(text) = queries_line(r) {
        line(Level::INFO, text);
    }
    // What each `load` step did to its table.
    for item in r.steps.iter().flat_map(|s| s.items.iter()) {
        let o = &item.outputs;
        let (Some(mode), Some(until)) = (
            o.shared("mode").and_then(|v| v.as_str()),
            o.shared("until").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        if !o.contains_key("upserted") {
            continue;
        }
        let name = format!(
            "{}.{}",
            o.shared("namespace").and_then(|v| v.as_str()).unwrap_or(""),
            o.shared("table").and_then(|v| v.as_str()).unwrap_or("")
        );
        let how = match (
            o.shared("since").and_then(|v| v.as_str()),
            o.shared("reason").and_then(|v| v.as_str()),
        ) {
            (Some(since), _) => format!("{mode} since {since}"),
            (None, Some(reason)) => format!("{mode} ({reason})"),
            (None, None) => mode.to_owned(),
        };
        let n = |k: &str| o.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        line(
            Level::INFO,
            format!(
                "  {name}: {how} until {until}: {} upserted, {} deleted, {} rows",
                n("upserted"),
                n("deleted"),
                n("rows")
            ),
        );
    }
    let failures: Vec<_> = r.errors().collect();
    let mut first_note = None;
    if let Some((_, _, first)) = failures.first() {
        let at = line(Level::ERROR, format!("error: {first}"));
        let more = (failures.len() > 1).then(|| {
            let n = failures.len() - 1;
            format!("{n} more failure{} above", plural(n))
        });
        first_note = crate::error::advice::join(first.note(), more).map(|n| (at, n));
    }
    let skipped: usize = r
        .steps
        .iter()
        .flat_map(|s| s.items.iter())
        .filter(|i| i.skipped)
        .count();
    if let Some(why) = r.interrupted {
        let mut text = format!(
            "interrupted by {}: the work in flight was abandoned",
            why.signal()
        );
        let steps = r.steps.iter().filter(|s| s.skipped).count();
        let mut not_started = Vec::new();
        if steps > 0 {
            not_started.push(format!("{steps} step{}", plural(steps)));
        }
        if skipped > 0 {
            not_started.push(format!("{skipped} loop item{}", plural(skipped)));
        }
        if !not_started.is_empty() {
            let _ = write!(text, "; not started: {}", not_started.join(", "));
        }
        line(Level::WARN, text);
    } else if skipped > 0 {
        line(
            Level::WARN,
            format!(
                "{skipped} loop item{} not run after the authentication failure",
                plural(skipped)
            ),
        );
    }
    let not_saved = "state not saved: the next run starts from the same point";
    if let Some(e) = &r.state_error {
        line(Level::ERROR, format!("error: {e}"));
        line(Level::WARN, not_saved.to_owned());
    } else if !failed && r.state_written {
        line(Level::INFO, "state saved for the next run".to_owned());
    } else if r.interrupted.is_some() {
        line(
            Level::WARN,
            "state left as it was: the next run starts from the same point".to_owned(),
        );
    } else if failed
        && r.steps
            .iter()
            .any(|s| s.items.iter().any(|i| !i.persist_is_empty()))
    {
        line(Level::WARN, not_saved.to_owned());
    }
    if let Some((at, note)) = first_note {
        lines[at].note = Some(crate::secret::redact(&note));
    }
    lines
}

/// The summary's counts as data, for the fields of the JSON summary event.
pub fn summary_counts(r: &RunReport) -> crate::progress::SummaryCounts {
    let (files, bytes) = r.files();
    let queries = r
        .steps
        .iter()
        .flat_map(|s| s.items.iter())
        .filter_map(|i| i.query.as_ref());
    let (mut snapshots, mut incremental) = (0, 0);
    for q in queries {
        match q.kind {
            crate::query::QueryKind::Snapshot => snapshots += 1,
            crate::query::QueryKind::Incremental => incremental += 1,
        }
    }
    crate::progress::SummaryCounts {
        job: r.job.clone(),
        exit_code: r.exit_code().code(),
        steps: r.steps.iter().filter(|s| !s.skipped).count() as u64,
        loop_items: r
            .steps
            .iter()
            .filter(|s| s.looped)
            .map(|s| s.items.len() as u64)
            .sum(),
        files: files as u64,
        bytes,
        logins: r.logins,
        requests: r.requests,
        retries: r.retries,
        snapshots,
        incremental,
        failures: r.errors().count() as u64 + u64::from(r.state_error.is_some()),
        duration_ms: r.duration.as_millis() as u64,
        state_saved: r.state_written,
    }
}

/// `queries: 3 incremental, 2 snapshots (canvas.users, canvas.courses)`: every DAP query the
/// run started, the snapshots by name, so a nightly that fell back to snapshots says so.
fn queries_line(r: &RunReport) -> Option<String> {
    let queries: Vec<&crate::query::QueryRecord> = r
        .steps
        .iter()
        .flat_map(|s| s.items.iter())
        .filter_map(|i| i.query.as_ref())
        .collect();
    if queries.is_empty() {
        return None;
    }
    let incremental = queries
        .iter()
        .filter(|q| q.kind == crate::query::QueryKind::Incremental)
        .count();
    let snapshots: Vec<String> = queries
        .iter()
        .filter(|q| q.kind == crate::query::QueryKind::Snapshot)
        .map(|q| match q.refusal_type() {
            Some(t) => format!(
                "{}.{}: the gateway refused the incremental ({t})",
                q.namespace, q.table
            ),
            None => format!("{}.{}", q.namespace, q.table),
        })
        .collect();
    let mut line = format!("queries: {incremental} incremental");
    if !snapshots.is_empty() {
        let _ = write!(
            line,
            ", {} snapshot{} ({})",
            snapshots.len(),
            plural(snapshots.len()),
            snapshots.join(", ")
        );
    } else {
        line.push_str(", 0 snapshots");
    }
    Some(line)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The closing line of several jobs: `3 jobs: nightly ok, tables failed (exit 1), ...; exit 1`.
pub fn jobs_line(jobs: &[JobResult], code: ExitCode) -> String {
    let each: Vec<String> = jobs
        .iter()
        .map(|j| match j.code {
            ExitCode::Success => format!("{} ok", j.job),
            ExitCode::Locked => format!(
                "{} skipped (exit 75, its previous run holds the lock)",
                j.job
            ),
            c => format!("{} failed (exit {})", j.job, c.code()),
        })
        .collect();
    format!(
        "{} jobs: {}; exit {}",
        jobs.len(),
        each.join(", "),
        code.code()
    )
}
