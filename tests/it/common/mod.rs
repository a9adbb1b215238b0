//! The one harness of the integration tests: the real binary, run in a [`Workspace`] (a temp
//! dir and the gateway it talks to, the in-process sandbox on port 0 by default) by a [`Test`]
//! that states the exit status and what stderr says, and checks them (with no panic and no
//! secret in any output) before the test looks further. Every run starts from a clean
//! environment (no DAP_* or proxy variables, HOME in the temp dir) so the developer's machine
//! cannot leak into a test. [`FakeGateway`] serves what a hostile gateway could send;
//! [`TestDb::each`] runs a database scenario once per database.

#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub use dap_run::sandbox::{Counters, Faults, Sandbox, SandboxConfig};

mod db;
mod gateway;
mod oracle;
mod proxy;
mod servers;
mod test;
mod workspace;
pub use db::{Engine, TableState, TestDb};
pub use gateway::{FakeGateway, FakeJob, STALL, schema, serve_on_loopback};
pub use oracle::*;
pub use proxy::*;
pub use servers::*;
pub use test::{Outcome, Running, Test, regex_escape};
pub use workspace::{TEST_SECRET, Workspace};

/// The repository's `examples/` folder.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// The job files in `examples/` (`*.toml` at its top; the project example is in a folder of
/// its own), sorted.
pub fn example_jobs() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("examples/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no examples found");
    out
}

/// Retries kept short so fault storms run in a second or two.
pub const FAST_RETRY: &str = r#"
[gateway]
timeout = "2s"

[gateway.retry]
attempts = 3
backoff = "50ms..200ms"

[gateway.rate_limits]
"POST /dap/query/*/table/*/data" = "unlimited"
"#;

/// `2026-11-24T02:15:01.123456Z`: the first word of a line is an RFC 3339 UTC timestamp.
pub fn is_timestamped(line: &str) -> bool {
    let ts = line.split_whitespace().next().unwrap_or("");
    ts.len() >= 20
        && ts.as_bytes()[4] == b'-'
        && ts.as_bytes()[10] == b'T'
        && ts.ends_with('Z')
        && humantime::parse_rfc3339(ts).is_ok()
}

/// Every line of `stderr` starts with a timestamp (a cron log), and there is at least one.
#[track_caller]
pub fn assert_every_line_stamped(stderr: &str) {
    assert!(!stderr.is_empty(), "no stderr");
    for line in stderr.lines() {
        assert!(is_timestamped(line), "not timestamped: {line:?}\n{stderr}");
    }
}

/// Each line of `stderr` parsed as JSON; panics at a line that is not.
#[track_caller]
pub fn json_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Checks a gzip file decompresses whole and every line is JSON; returns the line count.
pub fn gzip_jsonl_lines(path: &Path) -> usize {
    use std::io::BufRead as _;
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let r = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(f));
    let mut n = 0;
    for line in r.lines() {
        let line = line.unwrap_or_else(|e| panic!("{} is not valid gzip: {e}", path.display()));
        serde_json::from_str::<serde_json::Value>(&line)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}: {line}", path.display()));
        n += 1;
    }
    n
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap_or(&p).display().to_string());
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Every `.rs` file under `dir`, as paths under it, sorted.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|f| f.ends_with(".rs"))
        .map(|f| dir.join(f))
        .collect()
}

/// The parts of `table` under `out` in the nightly layout,
/// `<table>/<until>_<job id>/part-NNNNN.<ext>`: per job folder (sorted), the file names in it
/// (sorted). Panics on any other file.
pub fn table_runs(out: &Path, table: &str) -> Vec<(String, Vec<String>)> {
    let mut runs: Vec<(String, Vec<String>)> = Vec::new();
    for f in files_under(&out.join(table)) {
        let (folder, name) = f
            .split_once('/')
            .unwrap_or_else(|| panic!("{table}/{f} is not in a run folder"));
        let (until, job) = folder.split_once('_').unwrap_or((folder, ""));
        assert!(
            until.len() == 16
                && until.ends_with('Z')
                && until.as_bytes()[8] == b'T'
                && !job.is_empty(),
            "{table}/{f}: the folder is not an `until` stamp and a job id like 20260105T040012Z_<id>"
        );
        match runs.iter_mut().find(|(d, _)| d == folder) {
            Some((_, names)) => names.push(name.to_owned()),
            None => runs.push((folder.to_owned(), vec![name.to_owned()])),
        }
    }
    runs.sort();
    runs
}

/// Whether the tests run under `CI=true`.
pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| v == "true")
}

/// Something a test needs is missing (a program, a server, a server of another kind): a
/// failure under `CI=true`, where CI provides everything the suite needs, so a missing piece
/// there is a broken CI, not a pass; elsewhere a "skipped" line, and the caller returns.
#[track_caller]
pub fn missing(what: &str) {
    assert!(!under_ci(), "required under CI=true: {what}");
    eprintln!("skipped: {what}");
}

/// Whether the external program `tool` runs (`tool --version`); see [`missing`].
#[track_caller]
pub fn tool_available(tool: &str, package: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        missing(&format!(
            "`{tool}` (Debian package `{package}`) is not installed"
        ));
    }
    found
}

/// The tables of the examples' `tables` variable.
pub const TABLES: [&str; 5] = ["accounts", "courses", "enrollments", "users", "submissions"];

/// A job with one request and nothing else.
pub const ONE_STEP: &str = "[[step]]\nid = \"a\"\nget = \"/dap/query/canvas/table\"\n";

/// A job that loops over TOML tables (the schema of two tables of one namespace).
pub const TABLE_LOOP: &str = r#"
name = "schemas"
[vars]
tables = [{ namespace = "canvas", table = "users" }, { namespace = "canvas", table = "courses" }]

[[step]]
id = "schema"
for_each = "tables"
get = "/dap/query/{{ item.namespace }}/table/{{ item.table }}/schema"
outputs = { version = "$.version" }
"#;

/// A sandbox that hides `tables` from the table list.
pub fn hiding(tables: &[&str]) -> SandboxConfig {
    SandboxConfig {
        hidden_tables: tables.iter().map(|t| (*t).to_owned()).collect(),
        ..Default::default()
    }
}

/// `examples/<example>` with some text replaced (each `from` must occur exactly once), written
/// into the workspace under the example's name.
#[track_caller]
pub fn example_variant(ws: &Workspace, example: &str, edits: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(examples_dir().join(example)).unwrap();
    for (from, to) in edits {
        assert_eq!(text.matches(from).count(), 1, "`{from}` in {example}");
        text = text.replacen(from, to, 1);
    }
    ws.job(example, &text)
}

/// A JSON file, parsed.
#[track_caller]
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `query` records of the JSON report's step `query`.
pub fn report_queries(report: &serde_json::Value) -> Vec<serde_json::Value> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "query")
        .unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["query"].clone())
        .collect()
}

/// `run <job> --output-dir out <extra>` in `ws`, to state what it must do and run.
pub fn run_job(ws: &Workspace, job: &Path, extra: &[&str]) -> Test {
    ws.dap()
        .args(&["run", job.to_str().unwrap(), "--output-dir", "out"])
        .args(extra)
}

/// `cmd` run by `program` (`sh -c 'umask 077; exec "$0" "$@"'`, `setpriv …`): `program
/// pre_args… <dap-run> <args…>`, in `cmd`'s folder with `cmd`'s environment. For
/// [`Test::wrap`].
pub fn through(program: &str, pre_args: &[&str], cmd: Command) -> Command {
    let mut c = Command::new(program);
    c.args(pre_args).arg(cmd.get_program()).args(cmd.get_args());
    copy_setup(&cmd, &mut c);
    c
}

/// `cmd` on a pseudo-terminal (`script`): what it draws comes back on stdout. For
/// [`Test::wrap`].
pub fn on_a_terminal(cmd: Command) -> Command {
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"));
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(quote)
        .collect();
    let mut c = Command::new("script");
    c.args(["-qfec", &line.join(" "), "/dev/null"]);
    copy_setup(&cmd, &mut c);
    c.env("TERM", "xterm");
    c
}

fn copy_setup(from: &Command, to: &mut Command) {
    to.env_clear();
    for (k, v) in from.get_envs() {
        if let Some(v) = v {
            to.env(k, v);
        }
    }
    if let Some(dir) = from.get_current_dir() {
        to.current_dir(dir);
    }
}

/// A log line's message: `2026-11-24T02:15:01.123456Z ERROR message` → `message`.
pub fn unstamped(line: &str) -> &str {
    let mut words = line.splitn(2, 'Z');
    match (words.next(), words.next()) {
        (Some(ts), Some(rest)) if ts.len() >= 19 && ts.as_bytes()[10] == b'T' => {
            let rest = rest.trim_start();
            rest.split_once(' ').map_or(rest, |(_, message)| message)
        }
        _ => line,
    }
}

/// The `tables` example named `name`, requiring `extra` tables on top of the example's.
pub fn tables_text(name: &str, extra: &[&str]) -> String {
    let mut text = std::fs::read_to_string(examples_dir().join("tables.toml")).unwrap();
    text = text.replacen("name = \"tables\"", &format!("name = \"{name}\""), 1);
    let mut required = String::new();
    for t in extra {
        required.push_str(&format!(", \"{t}\""));
    }
    text.replacen(
        "\"submissions\"]",
        &format!("\"submissions\"{required}]"),
        1,
    )
}

/// A sandbox whose tables have `object_rows` rows in each of their two objects.
pub(crate) fn sandbox_with_rows(object_rows: usize) -> Workspace {
    Workspace::new(SandboxConfig {
        object_rows,
        ..Default::default()
    })
}

/// `run replicate.toml --output-dir out --var tables=TABLES [--database DB]`, the example
/// copied into the workspace the first time.
/// `examples/replicate.toml` in the workspace with `keep_downloads = true`: for the tests whose
/// expected rows are the objects of every committed load (a load removes them otherwise).
pub(crate) fn keeping(ws: &Workspace) -> PathBuf {
    let text = std::fs::read_to_string(ws.example("replicate.toml")).unwrap();
    let load = r#"load = { namespace = "{{ namespace }}", table = "{{ table }}","#;
    assert!(text.contains(load), "{text}");
    let kept = text.replace(
        load,
        r#"load = { namespace = "{{ namespace }}", table = "{{ table }}", keep_downloads = true,"#,
    );
    ws.job("replicate.toml", &kept)
}

pub(crate) fn replicate(ws: &Workspace, db: Option<&str>, tables: &str) -> Test {
    let job = ws.path().join("replicate.toml");
    if !job.exists() {
        ws.example("replicate.toml");
    }
    let var = format!("tables={tables}");
    let mut args = vec![
        "run",
        "replicate.toml",
        "--output-dir",
        "out",
        "--var",
        var.as_str(),
    ];
    if let Some(db) = db {
        args.extend(["--database", db]);
    }
    ws.dap().args(&args)
}

/// The `tables` example named `name`, requiring `extra` tables on top of the example's.
pub fn tables_job(ws: &Workspace, file: &str, name: &str, extra: &[&str]) -> PathBuf {
    ws.job(file, &tables_text(name, extra))
}

/// The seed of the kill tests' moments: `DAP_RUN_TEST_KILL_SEED` to repeat a run, else new.
pub fn kill_seed() -> u64 {
    let seed = match std::env::var("DAP_RUN_TEST_KILL_SEED") {
        Ok(s) => s.parse().expect("DAP_RUN_TEST_KILL_SEED is a number"),
        Err(_) => fastrand::u64(..),
    };
    eprintln!("kill moments from seed {seed} (DAP_RUN_TEST_KILL_SEED={seed} repeats them)");
    seed
}
