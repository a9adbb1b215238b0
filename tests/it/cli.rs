//! Made for cron and CI (issue 6), through the binary: reports, the summary, quiet logs when
//! not a terminal and progress on one, log levels and JSON logs, the overlap lock, `--dry-run`,
//! completions and the man page.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value as Json;

/// A client secret distinctive enough to search for in every output.
const SECRET: &str = "cli-test-secret-7f3a9c";

fn workspace(config: SandboxConfig) -> Workspace {
    Workspace::new(SandboxConfig {
        client_secret: SECRET.to_owned(),
        ..config
    })
}

/// The nightly example, with the query rate limit lifted so that a retried query (one more
/// than the gateway's 5/min) does not wait a minute.
fn nightly() -> Test {
    Test::new()
        .example("nightly.toml")
        .append("[gateway.rate_limits]\n\"POST /dap/query/*/table/*/data\" = \"unlimited\"\n")
}

/// A sandbox that hides `tables` from the table list.
fn hiding(tables: &[&str]) -> SandboxConfig {
    SandboxConfig {
        hidden_tables: tables.iter().map(|t| (*t).to_owned()).collect(),
        ..Default::default()
    }
}

fn run(ws: &Workspace, args: &[&str]) -> Run {
    Run::from(
        ws.cmd()
            .env("DAP_CLIENT_SECRET", SECRET)
            .args(args)
            .output()
            .expect("run dap-run"),
    )
}

fn assert_secret_free(what: &str, text: &str) {
    assert!(
        !text.contains(SECRET),
        "the client secret is in the {what}:\n{text}"
    );
    // Sandbox tokens are JWTs; none may reach a report or a log.
    assert!(!text.contains("eyJ"), "a token is in the {what}:\n{text}");
}

#[test]
fn junit_report_names_the_missing_table() {
    let t = Test::new()
        .sandbox(hiding(&["users"]))
        .example("tables.toml")
        .args(&["--report", "junit=reports/junit.xml"])
        .run();
    // No secret in the report (or anywhere), no temporary file beside it: renamed whole.
    t.expect_code(1)
        .left_clean(false)
        .no_secret()
        .stderr_has(&["missing from `canvas`: users"]);
    let xml = t.ws.read("reports/junit.xml");
    let doc = roxmltree::Document::parse(&xml).expect("the JUnit report is XML");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("a testsuite");
    assert_eq!(suite.attribute("name"), Some("tables"));
    assert_eq!(suite.attribute("failures"), Some("1"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 1, "one test case for the one step");
    assert_eq!(cases[0].attribute("name"), Some("tables"));
    let failures: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .collect();
    assert_eq!(failures.len(), 1, "{xml}");
    let message = failures[0].attribute("message").unwrap_or_default();
    assert_eq!(
        message, "step `tables`: check failed: missing from `canvas`: users",
        "{xml}"
    );
}

#[test]
fn junit_report_has_a_case_per_loop_item() {
    let t = Test::new()
        .example("nightly.toml")
        .args(&["--report", "junit=junit.xml"])
        .run();
    t.expect_code(0);
    let xml = t.ws.read("junit.xml");
    let doc = roxmltree::Document::parse(&xml).expect("XML");
    let names: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .filter_map(|n| n.attribute("name"))
        .collect();
    assert_eq!(names.len(), 15, "{names:?}");
    for t in ["accounts", "courses", "enrollments", "users", "submissions"] {
        for step in ["query", "wait", "download"] {
            assert!(
                names.contains(&format!("{step}[{t}]").as_str()),
                "{names:?}"
            );
        }
    }
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("failure"))
            .count(),
        0
    );
}

#[test]
fn json_report_records_steps_items_outputs_files_logins_and_retries() {
    let t = nightly()
        .faults(Faults {
            fail_503: 1,
            ..Default::default()
        })
        .args(&["--report", "json=reports/run.json"])
        .run();
    t.expect_code(0).left_clean(true).no_secret();
    let text = t.ws.read("reports/run.json");
    let report: Json = serde_json::from_str(&text).expect("the JSON report is JSON");
    assert_eq!(report["job"], "nightly");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["logins"], 1);
    assert_eq!(report["retries"], 1, "one 503 retried");
    assert!(report["requests"].as_u64().unwrap() >= 15);
    assert!(report["duration"].as_f64().is_some());
    let steps = report["steps"].as_array().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["query", "wait", "download"]);
    for s in steps {
        assert_eq!(s["items"].as_array().unwrap().len(), 5, "{}", s["id"]);
    }
    for item in steps[0]["items"].as_array().unwrap() {
        assert!(item["outputs"]["job_id"].is_string(), "{item}");
    }
    let labels: Vec<&str> = steps[1]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&"accounts"), "{labels:?}");
    assert!(steps[1]["items"][0]["outputs"]["status"] == "complete");
    let mut files = 0;
    for item in steps[2]["items"].as_array().unwrap() {
        for f in item["files"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            let on_disk = std::fs::metadata(t.ws.path().join(path))
                .unwrap_or_else(|e| panic!("{path}: {e}"))
                .len();
            assert_eq!(f["bytes"].as_u64(), Some(on_disk), "{path}");
            assert!(on_disk > 0);
            files += 1;
        }
    }
    assert_eq!(files, 10, "two objects per table");
}

/// A log line's message: `2026-11-24T02:15:01.123456Z ERROR message` → `message`.
fn unstamped(line: &str) -> &str {
    let mut words = line.splitn(2, 'Z');
    match (words.next(), words.next()) {
        (Some(ts), Some(rest)) if ts.len() >= 19 && ts.as_bytes()[10] == b'T' => {
            let rest = rest.trim_start();
            rest.split_once(' ').map_or(rest, |(_, message)| message)
        }
        _ => line,
    }
}

#[test]
fn summary_counts_everything_and_names_the_first_error() {
    let t = nightly()
        .faults(Faults {
            fail_503: 1,
            ..Default::default()
        })
        .run();
    t.expect_code(0)
        .stderr_has(&["state saved for the next run"]);
    let summary = t
        .run
        .stderr
        .lines()
        .map(unstamped)
        .find(|l| l.starts_with("nightly: "))
        .unwrap_or_else(|| panic!("no summary:\n{}", t.run.stderr));
    for part in [
        "nightly: ok: 3 steps, 15 loop items, 10 files (",
        " kB), 1 login, ",
        " requests, 1 retry, ",
    ] {
        assert!(summary.contains(part), "`{part}` not in `{summary}`");
    }
    assert!(summary.ends_with('s'), "a duration: {summary}");

    let t = Test::new()
        .sandbox(hiding(&["courses", "users"]))
        .example("tables.toml")
        .run();
    t.expect_code(1);
    // In a log (not a terminal) every line of the summary carries the time and level.
    let lines: Vec<&str> = t.run.stderr.lines().map(unstamped).collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("tables: failed (exit 1): "))
        .unwrap_or_else(|| panic!("no summary:\n{}", t.run.stderr));
    assert!(
        lines[at].starts_with("tables: failed (exit 1): 1 step, 0 loop items, 1 file ("),
        "{}",
        lines[at]
    );
    // The first error in plain words, right under the counts.
    assert_eq!(
        lines[at + 1],
        "error: step `tables`: check failed: missing from `canvas`: courses, users"
    );
}

#[test]
fn cron_stderr_has_timestamped_lines_and_no_escape_codes() {
    // Even with a TERM that could draw bars, a pipe gets plain lines.
    let t = Test::new()
        .example("nightly.toml")
        .env("TERM", "xterm-256color")
        .run();
    t.expect_code(0).every_line_stamped().no_secret();
    let r = &t.run;
    assert!(
        !r.stderr.contains('\x1b'),
        "escape codes in cron stderr:\n{:?}",
        r.stderr
    );
    assert!(
        !r.stderr.contains('\r'),
        "carriage returns in cron stderr:\n{:?}",
        r.stderr
    );
    assert_eq!(r.stdout, "", "a run prints nothing on stdout");
    assert!(
        r.stderr.lines().any(|l| l.contains(" INFO ")),
        "info lines by default in cron:\n{}",
        r.stderr
    );
}

#[test]
fn quiet_prints_nothing_on_success_and_only_errors_on_failure() {
    let quiet = ["-q", "{job}", "--output-dir", "out"];
    let t = Test::new().example("tables.toml").command(&quiet).run();
    t.expect_code(0);
    assert_eq!(t.run.stderr, "", "-q and success: silence");

    let t = Test::new()
        .sandbox(hiding(&["users"]))
        .example("tables.toml")
        .command(&quiet)
        .run();
    t.expect_code(1);
    assert!(!t.run.stderr.contains(" INFO "), "{}", t.run.stderr);
    assert!(
        t.run
            .stderr
            .lines()
            .any(|l| unstamped(l)
                == "error: step `tables`: check failed: missing from `canvas`: users"),
        "{}",
        t.run.stderr
    );
}

#[test]
fn verbose_flags_add_debug_then_trace() {
    let with = |flags: &[&str]| {
        let mut words = flags.to_vec();
        words.extend(["{job}", "--output-dir", "out"]);
        let t = Test::new().example("tables.toml").command(&words).run();
        t.expect_code(0).no_secret();
        t.run
    };
    let (plain, v, vv) = (with(&[]), with(&["-v"]), with(&["-vv"]));
    assert!(!plain.stderr.contains("DEBUG"), "{}", plain.stderr);
    assert!(v.stderr.contains("DEBUG"), "{}", v.stderr);
    assert!(!v.stderr.contains("TRACE"), "{}", v.stderr);
    assert!(vv.stderr.lines().count() >= v.stderr.lines().count());
    assert!(v.stderr.lines().count() > plain.stderr.lines().count());
}

#[test]
fn json_logs_are_one_object_per_line() {
    for (config, code) in [(SandboxConfig::default(), 0), (hiding(&["users"]), 1)] {
        let t = Test::new()
            .sandbox(config)
            .example("tables.toml")
            .command(&["--log-format", "json", "-v", "{job}", "--output-dir", "out"])
            .run();
        t.expect_code(code).no_secret();
        let mut levels = Vec::new();
        for v in t.json_lines() {
            assert!(v["timestamp"].is_string(), "{v}");
            levels.push(v["level"].as_str().unwrap().to_owned());
            assert!(v["message"].is_string(), "{v}");
        }
        assert!(levels.iter().any(|l| l == "DEBUG"), "{levels:?}");
        let summary = t
            .json_lines()
            .into_iter()
            .rev()
            .find(|v| v["summary"] == true)
            .expect("summary event");
        let message = summary["message"].as_str().unwrap();
        assert!(message.starts_with("tables: "), "{message}");
        if code == 1 {
            assert_eq!(summary["level"], "ERROR");
            assert!(
                message.contains("missing from `canvas`: users"),
                "{message}"
            );
        }
    }
    // An error that ends the command before any run is a JSON line too.
    let t = Test::new()
        .command(&["--log-format", "json", "missing.toml"])
        .run();
    assert_ne!(t.run.code, 0);
    t.json_lines();
}

#[test]
fn terminal_session_shows_progress() {
    if !tool_available("script", "bsdutils") {
        return;
    }
    let ws = workspace(SandboxConfig {
        polls_to_complete: 3,
        latency: Duration::from_millis(100),
        // Big enough that a download bar is drawn while bytes arrive.
        large_object_bytes: 15_000_000,
        objects_per_job: 1,
        ..Default::default()
    });
    let job = ws.example("nightly.toml");
    let bin = assert_cmd::cargo::cargo_bin!("dap-run");
    let inner = ws.cmd();
    // `script` gives the run a pseudo-terminal; everything it draws comes back on stdout.
    let mut c = Command::new("script");
    c.current_dir(ws.path()).env_clear();
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    c.env("TERM", "xterm").env("DAP_CLIENT_SECRET", SECRET);
    let cmdline = format!("'{}' '{}' --output-dir out", bin.display(), job.display());
    let out = c
        .args(["-qfec", &cmdline, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{tty}");
    assert!(tty.contains('\x1b'), "no terminal drawing:\n{tty:?}");
    // Downloads show bytes and a rate.
    assert!(tty.contains("/s"), "no download rate:\n{tty:?}");
    for bar in ["query", "wait", "download"] {
        assert!(tty.contains(bar), "no bar for `{bar}`:\n{tty:?}");
    }
    assert!(tty.contains("/5"), "no item counts:\n{tty:?}");
    assert!(
        tty.contains("nightly: ok: 3 steps"),
        "the summary:\n{tty:?}"
    );
    assert!(
        !tty.contains(" INFO "),
        "a terminal shows warnings only by default:\n{tty:?}"
    );
    assert_secret_free("terminal", &tty);
}

#[test]
fn second_run_exits_75_naming_the_holder_and_the_lock_dies_with_it() {
    let ws = workspace(SandboxConfig {
        latency: Duration::from_millis(1500),
        ..Default::default()
    });
    let job = ws.example("tables.toml");
    let lock = ws.path().join("tables.lock");
    let mut first = ws
        .cmd()
        .env("DAP_CLIENT_SECRET", SECRET)
        .args([job.to_str().unwrap(), "--output-dir", "out"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = first.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.contains(&format!("pid {pid} "))) {
        assert!(
            Instant::now() < deadline,
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let second = run(&ws, &[job.to_str().unwrap(), "--output-dir", "out"]);
    second.expect_code(75);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the second run must not wait"
    );
    assert!(
        second.stderr.contains(&format!(
            "another run of this job is in progress (pid {pid} since 20"
        )),
        "{}",
        second.stderr
    );
    assert!(second.stderr.contains("tables.lock"), "{}", second.stderr);

    // kill -9: no cleanup runs, yet the lock goes with the process.
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        lock.exists(),
        "the lock file stays; the lock on it does not"
    );
    run(&ws, &[job.to_str().unwrap(), "--output-dir", "out"]).expect_code(0);
}

#[test]
fn dry_run_prints_requests_and_sends_nothing() {
    let t = Test::new()
        .example("nightly.toml")
        .args(&["--dry-run"])
        .run();
    t.expect_code(0).left_clean(false);
    let c = t.ws.counters();
    assert_eq!((c.requests, c.logins), (0, 0), "a dry run sends nothing");
    let lines: Vec<&str> = t.run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("# dry run of `nightly` against http://127.0.0.1:"),
        "{}",
        t.run.stdout
    );
    let posts: Vec<&&str> = lines.iter().filter(|l| l.starts_with("POST ")).collect();
    assert_eq!(posts.len(), 5, "{}", t.run.stdout);
    assert!(
        posts[0].ends_with("/dap/query/canvas/table/accounts/data {\"format\":\"jsonl\"}"),
        "{}",
        t.run.stdout
    );
    assert_eq!(
        lines.last().unwrap(),
        &"# step `wait` loops over the results of an earlier step: stopping here"
    );
    assert!(!t.out().exists(), "no files");
}

#[test]
fn completions_and_man_page_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let r = Run::from(
            bare_cmd(dir.path())
                .args(["completions", shell])
                .output()
                .unwrap(),
        );
        r.expect_code(0);
        assert!(r.stdout.contains("dap-run"), "{shell}");
        assert!(r.stdout.contains("report"), "{shell}: flags are completed");
    }
    let r = Run::from(bare_cmd(dir.path()).arg("man").output().unwrap());
    r.expect_code(0);
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH dap-run"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("dry"), "{}", r.stdout);
    let r = Run::from(
        bare_cmd(dir.path())
            .args(["completions", "tcsh"])
            .output()
            .unwrap(),
    );
    r.expect_code(2);
}

/// Regression: `dap-run -q run job.toml` and `dap-run -vv check ...` were rejected by clap
/// because the logging flags counted as run options conflicting with the subcommand.
#[test]
fn logging_flags_work_before_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        examples_dir().join("tables.toml"),
        dir.path().join("tables.toml"),
    )
    .unwrap();
    for args in [
        &["-vv", "check", "tables.toml"][..],
        &["-q", "check", "tables.toml"],
        &["check", "-q", "tables.toml"],
    ] {
        let run = Run::from(bare_cmd(dir.path()).args(args).output().unwrap());
        run.expect_code(0);
    }
    let run = Run::from(
        bare_cmd(dir.path())
            .args(["-q", "run", "tables.toml", "--dry-run"])
            .output()
            .unwrap(),
    );
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("GET https://api-gateway.instructure.com/dap/query/canvas/table"),
        "{}",
        run.stdout
    );
    // Run options before another subcommand are an error, not silently ignored.
    let run = Run::from(
        bare_cmd(dir.path())
            .args(["--output-dir", "o", "check", "tables.toml"])
            .output()
            .unwrap(),
    );
    run.expect_code(2);
    assert!(
        run.stderr.contains("before the subcommand"),
        "{}",
        run.stderr
    );
}
