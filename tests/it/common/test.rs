//! `Test`: one scenario as data, in the manner of just's test builder. A test says which sandbox
//! (faults, knobs), which job (an example, edited, or inline text), which arguments, and then
//! what it expects: the exit code, lines of stderr or a whole stderr snapshot, the files and the
//! state left behind, and no secret anywhere. Edits that do not match panic, so a scenario can
//! never silently run the unedited job.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;

/// A client secret distinctive enough to search for in every output (the sandbox's default,
/// `sandbox`, is a word the logs use).
pub const TEST_SECRET: &str = "cs-test-7d1e0a9f44";

/// A job's text made once the sandbox runs (its URLs are known only then).
type JobText = Box<dyn FnOnce(&Workspace) -> String>;

pub struct Test {
    config: SandboxConfig,
    job: Option<(String, String)>,
    job_with: Option<(String, JobText)>,
    files: Vec<(String, String)>,
    command: Option<Vec<String>>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Test {
    /// A default sandbox, no job yet.
    pub fn new() -> Self {
        Test {
            config: SandboxConfig {
                client_secret: TEST_SECRET.to_owned(),
                ..Default::default()
            },
            job: None,
            job_with: None,
            files: Vec::new(),
            command: None,
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// The sandbox's settings (the test secret is kept).
    pub fn sandbox(mut self, config: SandboxConfig) -> Self {
        self.config = SandboxConfig {
            client_secret: TEST_SECRET.to_owned(),
            ..config
        };
        self
    }

    /// Faults the sandbox injects.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.config.faults = faults;
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

    /// A job whose text needs the running sandbox (its Canvas URL, say).
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

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Runs the job (`<job> --output-dir out <args>`, or the [`command`](Self::command)) in a
    /// new workspace.
    pub fn run(self) -> Outcome {
        use base64::Engine as _;
        // What must never be printed: the secret, its Basic form, the Canvas token, any token
        // (the sandbox's are JWTs, which all start `eyJ`).
        let secrets = vec![
            TEST_SECRET.to_owned(),
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{TEST_SECRET}", self.config.client_id)),
            self.config.canvas_token.clone(),
            "eyJ".to_owned(),
        ];
        let ws = Workspace::new(self.config);
        for (name, text) in &self.files {
            let path = ws.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).expect("create the file's folder");
            std::fs::write(&path, text).expect("write the file");
        }
        let job = match (&self.job, self.job_with) {
            (Some((name, text)), _) => ws.job(name, text),
            (None, Some((name, text))) => {
                let text = text(&ws);
                ws.job(&name, &text)
            }
            (None, None) => {
                assert!(self.command.is_some(), "a job to run, or a command");
                ws.path().join("job.toml")
            }
        };
        let mut cmd = ws.cmd();
        cmd.env("DAP_CLIENT_SECRET", TEST_SECRET);
        match &self.command {
            Some(words) => {
                let job = job.to_str().expect("a UTF-8 path");
                cmd.args(words.iter().map(|w| w.replace("{job}", job)));
            }
            None => {
                cmd.arg(&job).args(["--output-dir", "out"]);
            }
        }
        cmd.args(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let run = Run::from(cmd.output().expect("run dap-run"));
        Outcome {
            took: started.elapsed(),
            state_file: job.with_extension("state.json"),
            secrets,
            ws,
            run,
        }
    }
}

/// What a [`Test`] run left: the workspace (sandbox counters, files), the run, its duration.
pub struct Outcome {
    pub ws: Workspace,
    pub run: Run,
    pub took: Duration,
    state_file: PathBuf,
    secrets: Vec<String>,
}

impl Outcome {
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        self.run.expect_code(code);
        self
    }

    /// Each of `lines` appears in stderr.
    #[track_caller]
    pub fn stderr_has(&self, lines: &[&str]) -> &Self {
        for l in lines {
            assert!(
                self.run.stderr.contains(l),
                "stderr lacks `{l}`:\n{}",
                self.run.stderr
            );
        }
        self
    }

    /// Each of `parts` appears in stdout.
    #[track_caller]
    pub fn stdout_has(&self, parts: &[&str]) -> &Self {
        for p in parts {
            assert!(
                self.run.stdout.contains(p),
                "stdout lacks `{p}`:\n{}",
                self.run.stdout
            );
        }
        self
    }

    /// Every line of stderr starts with an RFC 3339 UTC timestamp (a cron log).
    #[track_caller]
    pub fn every_line_stamped(&self) -> &Self {
        assert_every_line_stamped(&self.run.stderr);
        self
    }

    /// Every line of stderr as a JSON object (`--log-format json`).
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        json_lines(&self.run.stderr)
    }

    /// The whole stderr against a snapshot, with what changes from run to run (ports, times,
    /// durations, temp paths, stamps) replaced by placeholders.
    #[track_caller]
    pub fn stderr_snapshot(&self, name: &str) -> &Self {
        let dir = self.ws.path().display().to_string();
        // Stored beside the calling module's other snapshots: `it__<module>__<name>.snap`.
        let caller = std::panic::Location::caller().file();
        let module = Path::new(caller).file_stem().unwrap().to_string_lossy();
        let mut settings = insta::Settings::clone_current();
        settings
            .set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        let name = format!("it__{module}__{name}");
        settings.add_filter(&regex_escape(&dir), "[ws]");
        for (re, to) in STDERR_FILTERS {
            settings.add_filter(re, *to);
        }
        settings.bind(|| insta::assert_snapshot!(name, self.run.stderr));
        self
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

    /// The client secret, its base64 Basic form, the Canvas API token and any access token
    /// (the sandbox's are JWTs, which all start `eyJ`) appear in no output and no file of the
    /// workspace (the token cache under `.cache/` and the downloaded data excepted).
    #[track_caller]
    pub fn no_secret(&self) -> &Self {
        let needles = &self.secrets;
        let mut texts = vec![
            ("stderr".to_owned(), self.run.stderr.clone()),
            ("stdout".to_owned(), self.run.stdout.clone()),
        ];
        for f in files_under(self.ws.path()) {
            if f.starts_with(".cache/") || f.ends_with(".gz") {
                continue;
            }
            let bytes = std::fs::read(self.ws.path().join(&f)).unwrap_or_default();
            texts.push((f, String::from_utf8_lossy(&bytes).into_owned()));
        }
        for (where_, text) in &texts {
            for n in needles {
                assert!(!text.contains(n), "`{n}` leaked into {where_}:\n{text}");
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
