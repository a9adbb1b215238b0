//! `Test`: one command of the binary as data, in the manner of just's test builder. A test says
//! where it runs (a new workspace with a sandbox, or [`Workspace::dap`] for one more command in
//! an existing one), which job (an example, edited, or inline text), which arguments, and then
//! what it expects; [`Test::run`] runs it and checks, before handing back the [`Outcome`]:
//!
//! - the exit status, which every test states ([`Test::status`]; [`Test::status_one_of`] only
//!   for generated input whose outcome the test checks afterwards); one that does not fails;
//! - stderr: what the test states ([`Test::stderr_has`], [`Test::stderr_lacks`],
//!   [`Test::stderr`], [`Test::stderr_snapshot`]), or, when it states nothing, that a
//!   successful command warned of nothing and logged no error (but what [`Test::may_warn`]
//!   allows); a failing command's test must say what its stderr says;
//! - always: no panic message, and no secret of the workspace in stdout or stderr.
//!
//! Edits that do not match panic, so a scenario can never silently run the unedited job.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// A job's text made once the workspace exists (its sandbox's URLs are known only then).
type JobText = Box<dyn FnOnce(&Workspace) -> String>;
/// Turns the prepared command of the binary into the command to run (`script`, `setpriv`).
type Wrap = Box<dyn FnOnce(Command) -> Command>;

/// Where a test runs.
enum Place {
    /// A workspace made at run time, with a sandbox of these settings.
    New(Box<SandboxConfig>),
    In(Workspace),
}

/// What stderr must show.
enum Said {
    Has(String),
    Lacks(String),
    Exact(String),
    Snapshot { name: String, module: String },
}

pub struct Test {
    place: Place,
    job: Option<(String, String)>,
    job_with: Option<(String, JobText)>,
    files: Vec<(String, String)>,
    command: Option<Vec<String>>,
    args: Vec<String>,
    /// `<job> --output-dir out` first (a test of `Test::new()` with a job and no `command`).
    job_first: bool,
    env: Vec<(String, Option<String>)>,
    current_dir: Option<PathBuf>,
    wrap: Option<Wrap>,
    status: Option<Vec<i32>>,
    stderr: Vec<Said>,
    /// Warnings a successful command may give (whether it does depends on timing).
    may_warn: Vec<String>,
    stdout: Vec<(bool, String)>,
}

impl Default for Test {
    fn default() -> Self {
        Self::new()
    }
}

impl Test {
    /// A new workspace with a default sandbox, no job yet. With a job and no
    /// [`command`](Self::command), the command is `<job> --output-dir out <args>`.
    pub fn new() -> Self {
        Self::at(Place::New(Box::default()))
    }

    /// A command in `ws`: its arguments are the whole command line.
    pub(super) fn in_workspace(ws: Workspace) -> Self {
        let mut t = Self::at(Place::In(ws));
        t.job_first = false;
        t
    }

    fn at(place: Place) -> Self {
        Test {
            place,
            job: None,
            job_with: None,
            files: Vec::new(),
            command: None,
            args: Vec::new(),
            job_first: true,
            env: Vec::new(),
            current_dir: None,
            wrap: None,
            status: None,
            stderr: Vec::new(),
            may_warn: Vec::new(),
            stdout: Vec::new(),
        }
    }

    #[track_caller]
    fn config(&mut self) -> &mut SandboxConfig {
        match &mut self.place {
            Place::New(config) => config,
            Place::In(_) => panic!("the sandbox of an existing workspace is already running"),
        }
    }

    /// The sandbox's settings.
    #[track_caller]
    pub fn sandbox(mut self, config: SandboxConfig) -> Self {
        *self.config() = config;
        self
    }

    /// Faults the sandbox injects.
    #[track_caller]
    pub fn faults(mut self, faults: Faults) -> Self {
        self.config().faults = faults;
        self
    }

    /// `examples/<name>` as the job.
    pub fn example(mut self, name: &str) -> Self {
        let text = std::fs::read_to_string(examples_dir().join(name)).expect("example exists");
        self.job = Some((name.to_owned(), text));
        self
    }

    /// An inline job file.
    pub fn job(mut self, name: &str, text: &str) -> Self {
        self.job = Some((name.to_owned(), text.to_owned()));
        self
    }

    /// A job whose text needs the workspace (its sandbox's Canvas URL, say).
    pub fn job_with(
        mut self,
        name: &str,
        text: impl FnOnce(&Workspace) -> String + 'static,
    ) -> Self {
        self.job_with = Some((name.to_owned(), Box::new(text)));
        self
    }

    /// Another file in the workspace (a project file, a second job), folders created.
    pub fn file(mut self, name: &str, text: &str) -> Self {
        self.files.push((name.to_owned(), text.to_owned()));
        self
    }

    /// The whole command line instead of `<job> --output-dir out <args>`: `{job}` stands for
    /// the job's path (a test of `check`, `plan`, several jobs or a usage error).
    pub fn command(mut self, words: &[&str]) -> Self {
        self.command = Some(words.iter().map(|w| (*w).to_owned()).collect());
        self
    }

    /// Replaces `from` by `to` in the job; panics if `from` is not there.
    #[track_caller]
    pub fn edit(mut self, from: &str, to: &str) -> Self {
        let (_, text) = self.job.as_mut().expect("a job before edit()");
        assert!(text.contains(from), "the job has no `{from}` to edit");
        *text = text.replacen(from, to, 1);
        self
    }

    /// Appends TOML to the job (gateway settings, more steps).
    pub fn append(mut self, more: &str) -> Self {
        let (_, text) = self.job.as_mut().expect("a job before append()");
        text.push('\n');
        text.push_str(more);
        self
    }

    /// Only these tables (the examples' `tables` variable).
    pub fn tables(self, tables: &[&str]) -> Self {
        let list = serde_json::to_string(tables).unwrap();
        self.args(&["--var", &format!("tables={list}")])
    }

    /// More arguments.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// An environment variable of the command.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), Some(value.to_owned())));
        self
    }

    /// Unsets a variable the workspace sets (a credential, the gateway's URL).
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.push((key.to_owned(), None));
        self
    }

    /// Runs the command in `dir` instead of the workspace (`HOME` stays the workspace).
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.current_dir = Some(dir.to_owned());
        self
    }

    /// Runs the binary through another program: `wrap` gets the prepared command and returns
    /// the one to run (`script` for a terminal, `setpriv`, `sh -c 'ulimit …; exec "$0" "$@"'`).
    pub fn wrap(mut self, wrap: impl FnOnce(Command) -> Command + 'static) -> Self {
        self.wrap = Some(Box::new(wrap));
        self
    }

    /// The exit status the command must end with. Every test states one.
    pub fn status(mut self, code: i32) -> Self {
        self.status = Some(vec![code]);
        self
    }

    /// One of these exit statuses, for generated input whose outcome the test does not predict
    /// (it then checks that what the run left agrees with the status it ended with). A
    /// failure's stderr needs no statement; a success still warns of nothing unstated.
    pub fn status_one_of(mut self, codes: &[i32]) -> Self {
        self.status = Some(codes.to_vec());
        self
    }

    /// Each of `parts` appears in stderr (an empty list states nothing).
    pub fn stderr_has(mut self, parts: &[&str]) -> Self {
        self.stderr
            .extend(parts.iter().map(|p| Said::Has((*p).to_owned())));
        self
    }

    /// None of `parts` appears in stderr.
    pub fn stderr_lacks(mut self, parts: &[&str]) -> Self {
        self.stderr
            .extend(parts.iter().map(|p| Said::Lacks((*p).to_owned())));
        self
    }

    /// A warning the command may or may not give (it depends on timing, such as a token found
    /// close to its expiry): the default check lets a line with one of `parts` pass.
    pub fn may_warn(mut self, parts: &[&str]) -> Self {
        self.may_warn.extend(parts.iter().map(|p| (*p).to_owned()));
        self
    }

    /// Stderr is exactly `text`.
    pub fn stderr(mut self, text: &str) -> Self {
        self.stderr.push(Said::Exact(text.to_owned()));
        self
    }

    /// The whole stderr against the snapshot `it__<module>__<name>` (beside the calling
    /// module's other snapshots), with what changes from run to run (ports, times, durations,
    /// temp paths, stamps) replaced by placeholders.
    #[track_caller]
    pub fn stderr_snapshot(mut self, name: &str) -> Self {
        let caller = std::panic::Location::caller().file();
        let module = Path::new(caller).file_stem().unwrap().to_string_lossy();
        self.stderr.push(Said::Snapshot {
            name: name.to_owned(),
            module: module.into_owned(),
        });
        self
    }

    /// Each of `parts` appears in stdout.
    pub fn stdout_has(mut self, parts: &[&str]) -> Self {
        self.stdout
            .extend(parts.iter().map(|p| (false, (*p).to_owned())));
        self
    }

    /// Stdout is exactly `text`.
    pub fn stdout(mut self, text: &str) -> Self {
        self.stdout.push((true, text.to_owned()));
        self
    }

    /// Makes the workspace, writes the files and the job, and prepares the command.
    fn prepare(&mut self) -> (Workspace, Command, PathBuf) {
        let ws = match std::mem::replace(&mut self.place, Place::New(Box::default())) {
            Place::New(config) => Workspace::new(*config),
            Place::In(ws) => ws,
        };
        self.place = Place::In(ws.clone());
        for (name, text) in &self.files {
            ws.job(name, text);
        }
        let job = match (&self.job, self.job_with.take()) {
            (Some((name, text)), _) => ws.job(name, text),
            (None, Some((name, text))) => {
                let text = text(&ws);
                ws.job(&name, &text)
            }
            (None, None) => ws.path().join("job.toml"),
        };
        let mut cmd = ws.command();
        let path = job.to_str().expect("a UTF-8 path");
        match &self.command {
            Some(words) => {
                cmd.args(words.iter().map(|w| w.replace("{job}", path)));
            }
            None if self.job_first && job.exists() => {
                cmd.arg(&job).args(["--output-dir", "out"]);
            }
            None => {}
        }
        cmd.args(self.args.iter().map(|w| w.replace("{job}", path)));
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        if let Some(wrap) = self.wrap.take() {
            cmd = wrap(cmd);
        }
        (ws, cmd, job)
    }

    /// Runs the command and checks what it must do; see the module's documentation.
    #[track_caller]
    pub fn run(mut self) -> Outcome {
        let (ws, mut cmd, job) = self.prepare();
        let started = Instant::now();
        let output = cmd.output().expect("run dap-run");
        let outcome = Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            took: started.elapsed(),
            state_file: job.with_extension("state.json"),
            ws,
        };
        self.check(&outcome);
        outcome
    }

    /// Starts the command; [`Running::wait`] checks it as [`run`](Self::run) does,
    /// [`Running::kill`] kills it (SIGKILL) and checks nothing of its output.
    pub fn spawn(mut self) -> Running {
        let (ws, mut cmd, job) = self.prepare();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dap-run");
        Running {
            child,
            test: self,
            ws,
            job,
            started: Instant::now(),
        }
    }

    /// The checks every run gets.
    #[track_caller]
    fn check(&self, o: &Outcome) {
        let Some(status) = &self.status else {
            panic!(
                "the test states no exit status (`.status(n)`); it ended with {}:\n--- stderr\n{}",
                o.code, o.stderr
            );
        };
        assert!(
            status.contains(&o.code),
            "exit status {} (expected {status:?})\n--- stdout\n{}\n--- stderr\n{}",
            o.code,
            o.stdout,
            o.stderr
        );
        for (what, text) in [("stderr", &o.stderr), ("stdout", &o.stdout)] {
            assert!(
                !text.contains("panicked at") && !text.contains("RUST_BACKTRACE"),
                "a panic's message in {what}:\n{text}"
            );
            for secret in o.ws.secrets() {
                assert!(
                    !text.contains(&secret),
                    "`{secret}` leaked into {what}:\n{text}"
                );
            }
        }
        if self.stderr.is_empty() {
            assert!(
                o.code == 0 || status.len() > 1,
                "a failing command's test states what its stderr says (`.stderr_has`, `.stderr`, `.stderr_snapshot`):\n{}",
                o.stderr
            );
            let complaints: Vec<&str> = o
                .stderr
                .lines()
                .filter(|l| complains(l) && !self.may_warn.iter().any(|w| l.contains(w.as_str())))
                .collect();
            assert!(
                o.code != 0 || complaints.is_empty(),
                "a successful command warned or logged an error the test does not state:\n{}\n--- stderr\n{}",
                complaints.join("\n"),
                o.stderr
            );
        }
        for said in &self.stderr {
            match said {
                Said::Has(part) => assert!(
                    o.stderr.contains(part),
                    "stderr lacks `{part}`:\n{}",
                    o.stderr
                ),
                Said::Lacks(part) => assert!(
                    !o.stderr.contains(part),
                    "stderr has `{part}`:\n{}",
                    o.stderr
                ),
                Said::Exact(text) => assert_eq!(&o.stderr, text, "stderr"),
                Said::Snapshot { name, module } => o.snapshot(module, name),
            }
        }
        for (exact, part) in &self.stdout {
            if *exact {
                assert_eq!(&o.stdout, part, "stdout");
            } else {
                assert!(
                    o.stdout.contains(part),
                    "stdout lacks `{part}`:\n{}",
                    o.stdout
                );
            }
        }
    }
}

/// A line of a warning or an error: a log line at WARN or ERROR (text or JSON), or a
/// diagnostic (`error: …`, `warning: …`).
fn complains(line: &str) -> bool {
    line.contains(" WARN ")
        || line.contains(" ERROR ")
        || line.contains(r#""level":"WARN""#)
        || line.contains(r#""level":"ERROR""#)
        || line.starts_with("error")
        || line.starts_with("warning")
}

/// A command started by [`Test::spawn`].
pub struct Running {
    pub child: Child,
    test: Test,
    ws: Workspace,
    job: PathBuf,
    started: Instant,
}

impl Running {
    /// Whether the command still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits for the command to end (at most `limit`, then it is killed and the test fails)
    /// and checks it as [`Test::run`] does.
    #[track_caller]
    pub fn wait(mut self, limit: Duration) -> Outcome {
        while self.is_running() {
            if self.started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("dap-run still ran after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let output = self.child.wait_with_output().expect("dap-run's output");
        let outcome = Outcome {
            code: output.status.code().unwrap_or_else(|| {
                use std::os::unix::process::ExitStatusExt as _;
                128 + output.status.signal().unwrap_or(0)
            }),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            took: self.started.elapsed(),
            state_file: self.job.with_extension("state.json"),
            ws: self.ws,
        };
        self.test.check(&outcome);
        outcome
    }

    /// Kills the command with SIGKILL, as `kill -9` would, and reaps it. Returns whether it
    /// was still running (a kill that came too late interrupted nothing).
    pub fn kill(mut self) -> bool {
        let running = self.is_running();
        let _ = self.child.kill();
        let _ = self.child.wait();
        running
    }
}

/// What a [`Test`] run left: the workspace (sandbox counters, files), the output, how long the
/// command took.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
    pub ws: Workspace,
    state_file: PathBuf,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Outcome {
    /// Each of `parts` appears in stderr (checks that need the outcome first, e.g. a value read
    /// from a file).
    #[track_caller]
    pub fn stderr_has(&self, parts: &[&str]) -> &Self {
        for p in parts {
            assert!(
                self.stderr.contains(p),
                "stderr lacks `{p}`:\n{}",
                self.stderr
            );
        }
        self
    }

    /// Each of `parts` appears in stdout.
    #[track_caller]
    pub fn stdout_has(&self, parts: &[&str]) -> &Self {
        for p in parts {
            assert!(
                self.stdout.contains(p),
                "stdout lacks `{p}`:\n{}",
                self.stdout
            );
        }
        self
    }

    /// Every line of stderr starts with an RFC 3339 UTC timestamp (a cron log).
    #[track_caller]
    pub fn every_line_stamped(&self) -> &Self {
        assert_every_line_stamped(&self.stderr);
        self
    }

    /// Every line of stderr as a JSON object (`--log-format json`).
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        json_lines(&self.stderr)
    }

    /// Stdout as one JSON document.
    #[track_caller]
    pub fn stdout_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    #[track_caller]
    fn snapshot(&self, module: &str, name: &str) {
        let dir = self.ws.path().display().to_string();
        let mut settings = insta::Settings::clone_current();
        settings
            .set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        let name = format!("it__{module}__{name}");
        settings.add_filter(&regex_escape(&dir), "[ws]");
        for (re, to) in STDERR_FILTERS {
            settings.add_filter(re, *to);
        }
        settings.bind(|| insta::assert_snapshot!(name, self.stderr));
    }

    /// The output folder.
    pub fn out(&self) -> PathBuf {
        self.ws.path().join("out")
    }

    /// The job's state file, parsed, if there is one.
    pub fn state(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(&self.state_file).ok()?;
        Some(serde_json::from_str(&text).expect("the state file is whole JSON"))
    }

    /// No temporary file anywhere in the workspace, and no state when `state` is false.
    #[track_caller]
    pub fn left_clean(&self, state: bool) -> &Self {
        let files = files_under(self.ws.path());
        assert!(
            !files.iter().any(|f| f.contains(".dap-run-tmp-")),
            "temporary files left: {files:?}"
        );
        assert_eq!(self.state().is_some(), state, "state file present");
        self
    }

    /// No secret of the workspace (see [`Workspace::secrets`]) in any file of the workspace
    /// (the token cache under `.cache/` and the downloaded data excepted); the run's stdout and
    /// stderr were checked already.
    #[track_caller]
    pub fn no_secret(&self) -> &Self {
        let needles = self.ws.secrets();
        for f in files_under(self.ws.path()) {
            if f.starts_with(".cache/") || f.ends_with(".gz") {
                continue;
            }
            let bytes = std::fs::read(self.ws.path().join(&f)).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            for n in &needles {
                assert!(!text.contains(n.as_str()), "`{n}` leaked into {f}:\n{text}");
            }
        }
        self
    }
}

/// What varies between runs of the same scenario, for stderr snapshots.
const STDERR_FILTERS: &[(&str, &str)] = &[
    (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?", "[time]"),
    (r"\d{8}T\d{6}Z", "[stamp]"),
    (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
    (r"\b\d+(\.\d+)?\s?(ms|µs|s|m)\b", "[dur]"),
    // Counts that depend on timing: polls within a deadline, the requests they make.
    (r"\b\d+ polls\b", "[n] polls"),
    (r"\b\d+ requests\b", "[n] requests"),
    (
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[uuid]",
    ),
];

pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
