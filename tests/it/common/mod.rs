//! Shared harness for integration tests: a sandbox in-process, the real binary in a temp dir.
//!
//! Every run of the binary starts from a clean environment (no DAP_* or proxy variables, HOME
//! in the temp dir) so the developer's machine cannot leak into a test.

#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use dap_run::sandbox::{Counters, Faults, Sandbox, SandboxConfig};

mod db;
mod gateway;
mod test;
pub use db::{Engine, TestDb};
pub use gateway::{FakeGateway, FakeJob, STALL, schema};
pub use test::{Outcome, TEST_SECRET, Test, regex_escape};

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

/// A test workspace: a temp dir with copies of job files, and a sandbox.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub sandbox: Sandbox,
}

impl Workspace {
    /// A workspace with a sandbox started with `config`.
    pub fn new(config: SandboxConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let sandbox = Sandbox::start(config).expect("sandbox starts");
        Workspace { dir, sandbox }
    }

    /// A workspace with a sandbox that injects `faults`.
    pub fn with_faults(faults: Faults) -> Self {
        Self::new(SandboxConfig {
            faults,
            ..Default::default()
        })
    }

    /// A workspace with a default sandbox.
    pub fn default_sandbox() -> Self {
        Self::new(SandboxConfig::default())
    }

    /// The temp dir.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies `examples/<name>` into the workspace; returns its path.
    pub fn example(&self, name: &str) -> PathBuf {
        let to = self.path().join(name);
        std::fs::copy(examples_dir().join(name), &to).expect("copy example");
        to
    }

    /// Writes a job file into the workspace; returns its path.
    pub fn job(&self, name: &str, text: &str) -> PathBuf {
        let to = self.path().join(name);
        std::fs::write(&to, text).expect("write job");
        to
    }

    /// The binary, in the workspace, with a clean environment pointing at the sandbox and its
    /// default credentials.
    pub fn cmd(&self) -> Command {
        let mut c = bare_cmd(self.path());
        c.env("DAP_API_URL", self.sandbox.url())
            .env("DAP_CLIENT_ID", "sandbox")
            .env("DAP_CLIENT_SECRET", "sandbox");
        c
    }

    /// Runs the binary with `args` (with the sandbox environment).
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd().args(args).output().expect("run dap-run"))
    }

    /// Counters of the sandbox.
    pub fn counters(&self) -> Counters {
        self.sandbox.counters()
    }

    /// Reads a file under the workspace.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }
}

/// The binary in `dir` with no DAP_* variables, no proxies, HOME and XDG_CACHE_HOME in `dir`.
pub fn bare_cmd(dir: &Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin!("dap-run"));
    c.current_dir(dir).env_clear();
    for keep in ["PATH", "LANG", "SYSTEMROOT"] {
        if let Ok(v) = std::env::var(keep) {
            c.env(keep, v);
        }
    }
    c.env("HOME", dir)
        .env("XDG_CACHE_HOME", dir.join(".cache"))
        .env("TERM", "dumb");
    c
}

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

/// What a run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts the exit code, printing the output when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
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

/// Whether the external program `tool` runs (`tool --version`). A missing tool skips the
/// calling test with a line saying so, except under `CI=true`, where it fails the test: CI
/// installs what the suite needs, so a missing tool there is a broken CI, not a pass.
#[track_caller]
pub fn tool_available(tool: &str, package: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v != "true"),
            "`{tool}` is required under CI=true (Debian package `{package}`)"
        );
        eprintln!("skipped: `{tool}` ({package}) is not installed");
    }
    found
}
