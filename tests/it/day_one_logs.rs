//! Day one, continued (issue 13, items 7 and 8): several job files in one command, a project
//! file that shares `[gateway]` settings, and logs that help (`-vv`, loop labels, JSON fields,
//! timestamps on every line of a cron log).

use std::path::PathBuf;

use serde_json::Value as Json;

use crate::common::*;

/// The `tables` example named `name`, requiring `extra` tables on top of the example's.
fn tables_job(ws: &Workspace, file: &str, name: &str, extra: &[&str]) -> PathBuf {
    ws.job(file, &tables_text(name, extra))
}

/// The text of [`tables_job`].
fn tables_text(name: &str, extra: &[&str]) -> String {
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

#[test]
fn issue_13_several_jobs_run_in_turn_and_exit_with_the_most_serious_code() {
    let ws = Workspace::default_sandbox();
    let a = tables_job(&ws, "a.toml", "a", &[]);
    let b = tables_job(&ws, "b.toml", "b", &["nope"]);
    let r = ws.run(&[
        "run",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--report",
        "json=r.json",
        "--report",
        "junit=r.xml",
    ]);
    r.expect_code(1);
    // Each its own summary, and one closing line.
    assert!(r.stderr.contains("INFO a: ok: 1 step"), "{}", r.stderr);
    assert!(
        r.stderr.contains("ERROR b: failed (exit 1): 1 step"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("ERROR 2 jobs: a ok, b failed (exit 1); exit 1"),
        "{}",
        r.stderr
    );
    // Each its own output folder and lock; one login each (a run each, in turn).
    assert!(ws.path().join("output/a/tables.json").is_file());
    assert!(ws.path().join("output/b/tables.json").is_file());
    assert!(ws.path().join("a.lock").exists() && ws.path().join("b.lock").exists());
    assert_eq!(ws.counters().logins, 2);
    // One report for the command: the jobs' reports inside.
    let report: Json = serde_json::from_str(&ws.read("r.json")).unwrap();
    assert_eq!(report["exit_code"], 1);
    let jobs = report["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(
        (&jobs[0]["job"], &jobs[0]["exit_code"]),
        (&"a".into(), &0.into())
    );
    assert_eq!(
        (&jobs[1]["job"], &jobs[1]["exit_code"]),
        (&"b".into(), &1.into())
    );
    let xml = ws.read("r.xml");
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suites: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .map(|n| n.attribute("name").unwrap())
        .collect();
    assert_eq!(suites, ["a", "b"]);

    // A job whose previous run still holds its lock is skipped (75), but does not hide the
    // other job's failure; without a failure, 75 is the command's code.
    let held = dap_run::state::lock(&ws.path().join("a.lock")).unwrap();
    let r = ws.run(&[a.to_str().unwrap(), b.to_str().unwrap()]);
    r.expect_code(1);
    assert_every_line_stamped(&r.stderr);
    assert!(
        r.stderr
            .contains("ERROR error: job `a`: another run of this job is in progress"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(
            "2 jobs: a skipped (exit 75, its previous run holds the lock), b failed (exit 1); exit 1"
        ),
        "{}",
        r.stderr
    );
    let c = tables_job(&ws, "c.toml", "c", &[]);
    let r = ws.run(&[a.to_str().unwrap(), c.to_str().unwrap()]);
    r.expect_code(75);
    drop(held);
}

#[test]
fn issue_13_several_jobs_are_all_validated_before_anything_is_sent() {
    let ws = Workspace::default_sandbox();
    let a = tables_job(&ws, "a.toml", "a", &[]);
    let bad1 = ws.job(
        "bad1.toml",
        "[[step]]\nid = \"x\"\nget = \"/dap/{{ namespce }}\"\n",
    );
    let bad2 = ws.job("bad2.toml", "[[step]]\nid = \"y\"\ngett = \"/x\"\n");
    let r = ws.run(&[
        "run",
        a.to_str().unwrap(),
        bad1.to_str().unwrap(),
        bad2.to_str().unwrap(),
    ]);
    r.expect_code(2);
    assert!(r.stderr.contains("bad1.toml:3:"), "{}", r.stderr);
    assert!(r.stderr.contains("bad2.toml:3:"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("error: 2 problems found; nothing was sent"),
        "{}",
        r.stderr
    );
    assert_eq!(ws.counters().requests, 0);
    assert!(!ws.path().join("output").exists());

    // --output-dir would put two jobs' files in one folder; two jobs of one name likewise.
    let b = tables_job(&ws, "b.toml", "b", &[]);
    let r = ws.run(&[
        "run",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--output-dir",
        "out",
    ]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("`--output-dir` with several jobs"),
        "{}",
        r.stderr
    );
    let a2 = tables_job(&ws, "a2.toml", "a", &[]);
    let r = ws.run(&["run", a.to_str().unwrap(), a2.to_str().unwrap()]);
    r.expect_code(2);
    assert!(r.stderr.contains("are both named `a`"), "{}", r.stderr);
    assert_eq!(ws.counters().requests, 0);
}

#[test]
fn issue_13_plan_and_check_take_several_jobs() {
    let ws = Workspace::default_sandbox();
    let a = tables_job(&ws, "a.toml", "a", &[]);
    let b = tables_job(&ws, "b.toml", "b", &[]);
    let r = ws.run(&["plan", a.to_str().unwrap(), b.to_str().unwrap()]);
    r.expect_code(0);
    let single_a = ws.run(&["plan", a.to_str().unwrap()]);
    let single_b = ws.run(&["plan", b.to_str().unwrap()]);
    assert_eq!(
        r.stdout,
        format!("{}\n{}", single_a.stdout, single_b.stdout)
    );
    let r = ws.run(&[
        "plan",
        "--format",
        "json",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    r.expect_code(0);
    let plans: Json = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(plans.as_array().unwrap().len(), 2);
    assert_eq!(plans[1]["job"], "b");
    let r = ws.run(&["check", a.to_str().unwrap(), b.to_str().unwrap()]);
    r.expect_code(0);
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
}

#[test]
fn issue_13_json_logs_carry_the_summary_counts_and_the_diagnostics_places() {
    let t = Test::new()
        .job("a.toml", &tables_text("a", &["nope"]))
        .command(&["--log-format", "json", "run", "{job}"])
        .run();
    t.expect_code(1);
    let events = t.json_lines();
    let summary = events
        .iter()
        .find(|e| e["summary"] == true)
        .expect("summary event");
    assert_eq!(summary["level"], "ERROR");
    assert_eq!(summary["job"], "a");
    assert_eq!(summary["exit_code"], 1);
    assert_eq!(summary["steps"], 1);
    assert_eq!(summary["loop_items"], 0);
    assert_eq!(summary["files"], 1);
    assert_eq!(summary["logins"], 1);
    assert_eq!(summary["requests"], 2);
    assert_eq!(summary["retries"], 0);
    assert_eq!(summary["failures"], 1);
    assert_eq!(summary["state_saved"], false);
    assert!(summary["bytes"].as_u64().unwrap() > 0);
    assert!(summary["duration_ms"].is_u64());
    assert!(
        summary["message"]
            .as_str()
            .unwrap()
            .starts_with("a: failed (exit 1)")
    );

    let t = Test::new()
        .job(
            "bad.toml",
            "[[step]]\nid = \"x\"\nget = \"/dap/{{ namespce }}\"\nconcurrency = 0\n",
        )
        .command(&["--log-format", "json", "check", "{job}"])
        .run();
    t.expect_code(2);
    let events = t.json_lines();
    let places: Vec<(String, u64, u64)> = events
        .iter()
        .filter(|e| e["line"].is_u64())
        .map(|e| {
            assert!(e["file"].as_str().unwrap().ends_with("bad.toml"), "{e}");
            assert!(!e["message"].as_str().unwrap().contains("-->"), "{e}");
            (
                e["message"].as_str().unwrap().to_owned(),
                e["line"].as_u64().unwrap(),
                e["column"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(places.len(), 2, "{places:?}");
    assert!(
        places
            .iter()
            .any(|(m, l, c)| m.contains("namespce") && *l == 3 && *c == 16),
        "{places:?}"
    );
    assert!(places.iter().any(|(_, l, _)| *l == 4), "{places:?}");
    let last = events.last().unwrap();
    assert_eq!(last["problems"], 2);
    assert_eq!(last["message"], "2 problems found; nothing was sent");
}

#[test]
fn issue_13_every_line_of_a_cron_log_is_timestamped() {
    // A failed run: a summary of several lines (the error, the state note), an error event.
    let t = Test::new()
        .file("a.toml", &tables_text("a", &["nope"]))
        .file("b.toml", &tables_text("b", &[]))
        .command(&["run", "a.toml", "b.toml"])
        .run();
    t.expect_code(1).every_line_stamped().stderr_has(&[
        // The summary's continuation line.
        " ERROR error: step `tables`: check failed: missing from `canvas`: nope",
    ]);
    assert!(t.run.stderr.lines().count() > 10, "{}", t.run.stderr);
    // A log event of several lines (a message with `= help:`): each line stamped.
    Test::new()
        .job(
            "c.toml",
            "[[step]]\nid = \"x\"\nget = \"/dap/query/canvas/table\"\noutputs = { x = \"$.nope\" }\n",
        )
        .command(&["run", "{job}"])
        .run()
        .expect_code(1)
        .every_line_stamped()
        .stderr_has(&[" ERROR   = help: check the path"]);
}

/// A job that loops over TOML tables (the schema of two tables of one namespace).
const TABLE_LOOP: &str = r#"
name = "schemas"
[vars]
tables = [{ namespace = "canvas", table = "users" }, { namespace = "canvas", table = "courses" }]

[[step]]
id = "schema"
for_each = "tables"
get = "/dap/query/{{ item.namespace }}/table/{{ item.table }}/schema"
outputs = { version = "$.version" }
"#;

#[test]
fn issue_13_loop_items_are_named_by_their_value_or_a_label_template() {
    // `dap-run FLAGS run JOB --report junit=r.xml`: its stderr and its JUnit report.
    let run = |flags: &[&str], text: &str| {
        let mut words = flags.to_vec();
        words.extend(["run", "{job}", "--report", "junit=r.xml"]);
        let t = Test::new().job("schemas.toml", text).command(&words).run();
        t.expect_code(0);
        let xml = t.ws.read("r.xml");
        (t.run.stderr, xml)
    };
    // By default: the whole value, not its first field (`canvas` named both items).
    let (stderr, xml) = run(&[], TABLE_LOOP);
    for t in ["users", "courses"] {
        assert!(
            stderr.contains(&format!(
                "(item `namespace=canvas, table={t}`): output version = "
            )) || xml.contains(&format!("schema[namespace=canvas, table={t}]")),
            "{stderr}"
        );
    }
    // A `label` template names them in logs and reports.
    let labelled = TABLE_LOOP.replace(
        "for_each = \"tables\"",
        "for_each = \"tables\"\nlabel = \"{{ item.namespace }}.{{ item.table }}\"",
    );
    let (stderr, xml) = run(&["-vv"], &labelled);
    assert!(
        stderr.contains("step `schema` (item `canvas.users`): output version = "),
        "{stderr}"
    );
    assert!(xml.contains("name=\"schema[canvas.courses]\""), "{xml}");
    // A loop over an earlier loop's records names its items as that loop did.
    let chained = format!(
        "{labelled}\n[[step]]\nid = \"again\"\nfor_each = \"schema\"\nget = \"/dap/query/{{{{ item.namespace }}}}/table/{{{{ item.table }}}}/schema\"\n"
    );
    let (_, xml) = run(&["-v"], &chained);
    assert!(xml.contains("name=\"again[canvas.users]\""), "{xml}");

    // `check` validates the template like every other, and refuses it without a loop.
    let bad = TABLE_LOOP.replace(
        "for_each = \"tables\"",
        "for_each = \"tables\"\nlabel = \"{{ item.tabel }}\"",
    ) + "\n[[step]]\nid = \"one\"\nget = \"/dap/query/canvas/table\"\nlabel = \"x\"\n";
    Test::new()
        .job("bad.toml", &bad)
        .command(&["check", "{job}"])
        .run()
        .expect_code(2)
        .stderr_has(&[
            "tabel",
            "did you mean `table`?",
            "`label` names the items of a loop, but the step has no `for_each`",
            "error: 2 problems found",
        ]);
}

#[test]
fn issue_13_vv_shows_request_bodies_outputs_and_poll_statuses_and_no_secret() {
    let run = |flag: &str| {
        let t = Test::new()
            .sandbox(SandboxConfig {
                polls_to_complete: 2,
                ..Default::default()
            })
            .example("nightly.toml")
            .command(&[flag, "run", "{job}", "--output-dir", "out"])
            .run();
        // Redacted: no secret, no token, in any line (nor in any file).
        t.expect_code(0).no_secret();
        t.run.stderr
    };
    let vv = run("-vv");
    let v = run("-v");
    // -vv shows what -v does not: the bodies sent, each output, each poll's status.
    for (what, needle) in [
        ("a query body", "request body: {\"format\":\"jsonl\"}"),
        ("an object URL request body", "request body: [{\"id\":"),
        ("an output", "(item `users`): output job_id = "),
        (
            "a poll status",
            "(item `users`): poll 1: status=\"running\"",
        ),
        ("the last poll", ": status=\"complete\""),
        ("an answer", "answered"),
    ] {
        assert!(vv.contains(needle), "-vv shows {what}: {vv}");
        assert!(!v.contains(needle), "-v does not show {what}");
    }
    // No pre-signed URL query and no Basic header either.
    for (name, log) in [("-v", &v), ("-vv", &vv)] {
        assert!(!log.contains("X-Amz-"), "{name}: a pre-signed URL's query");
        assert!(!log.contains("Basic "), "{name}: a Basic header");
    }
}

#[test]
fn issue_13_a_project_file_shares_the_gateway_settings_of_its_jobs() {
    let ws = Workspace::default_sandbox();
    // The project names the gateway and its credentials' variables; the jobs say nothing of
    // it. Without the project the jobs would go to the default gateway.
    std::fs::write(
        ws.path().join("dap-run.toml"),
        format!(
            "[gateway]\nurl = \"{}\"\nclient_id = \"{{{{ env.PROJECT_ID }}}}\"\nclient_secret = \"{{{{ env.PROJECT_SECRET }}}}\"\ntimeout = \"20s\"\n",
            ws.sandbox.url()
        ),
    )
    .unwrap();
    let a = tables_job(&ws, "a.toml", "a", &[]);
    let b = tables_job(&ws, "b.toml", "b", &[]);
    let r = Run::from(
        bare_cmd(ws.path())
            .env("PROJECT_ID", "sandbox")
            .env("PROJECT_SECRET", "sandbox")
            .args(["run", a.to_str().unwrap(), b.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    r.expect_code(0);
    assert_eq!(ws.counters().logins, 2);
    let plan = ws.run(&["plan", a.to_str().unwrap()]);
    assert!(plan.stdout.contains(&ws.sandbox.url()), "{}", plan.stdout);
    assert!(plan.stdout.contains("20s"), "{}", plan.stdout);

    // A job overrides a key: its own timeout wins, the rest is inherited.
    let text = std::fs::read_to_string(&a).unwrap();
    let over = ws.job(
        "over.toml",
        &text
            .replacen("[vars]", "[gateway]\ntimeout = \"5s\"\n\n[vars]", 1)
            .replace("name = \"a\"", "name = \"over\""),
    );
    let plan = ws.run(&["plan", over.to_str().unwrap()]);
    assert!(
        plan.stdout.contains("5s") && !plan.stdout.contains("20s"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains(&ws.sandbox.url()), "{}", plan.stdout);

    // A mistake in the project file is reported in the project file, with the job's own.
    std::fs::write(
        ws.path().join("dap-run.toml"),
        "[gateway]\nurl = \"https://example.com\"\ntimeout = \"soon\"\nauth = \"client_credential\"\n",
    )
    .unwrap();
    let bad = ws.job(
        "bad.toml",
        "[[step]]\nid = \"x\"\nget = \"/dap/{{ namespce }}\"\n",
    );
    let r = ws.run(&["check", bad.to_str().unwrap()]);
    r.expect_code(2);
    assert!(r.stderr.contains("dap-run.toml:3:11"), "{}", r.stderr);
    assert!(r.stderr.contains("dap-run.toml:4:8"), "{}", r.stderr);
    assert!(r.stderr.contains("bad.toml:3:"), "{}", r.stderr);
    assert!(r.stderr.contains("error: 3 problems found"), "{}", r.stderr);
    // And the project file itself is not a job.
    let r = ws.run(&["check", ws.path().join("dap-run.toml").to_str().unwrap()]);
    r.expect_code(2);
    assert!(r.stderr.contains("is the project file"), "{}", r.stderr);
}

/// A job with one request and nothing else.
const ONE_STEP: &str = "[[step]]\nid = \"a\"\nget = \"/dap/query/canvas/table\"\n";

/// Issue 13 (left by stop 17): the single error that ends a command was printed without a
/// timestamp in a cron log, and a misplaced run option's error was plain text even with
/// `--log-format json`. Each is now a line of its log like the others; the diagnostics of an
/// invalid job stay rustc's block, whose `-->` lines editors' problem matchers look for.
#[test]
fn issue_13_the_error_that_ends_a_command_is_a_line_of_its_log() {
    // A gateway failure that ends the run before a request.
    Test::new()
        .example("tables.toml")
        .env("DAP_API_URL", "http://10.1.2.3:9")
        .run()
        .expect_code(2)
        .every_line_stamped()
        .stderr_has(&[
            " ERROR error: refusing to send credentials to the gateway `http://10.1.2.3:9/`",
            " ERROR   = help: use https://",
        ])
        .no_secret();
    // Usage errors: no job file, run options before another subcommand, a missing file.
    for (words, says) in [
        (&["run"][..], " ERROR error: no job file given"),
        (
            &["--output-dir", "o", "check", "{job}"],
            " ERROR error: a job file or run option comes before the subcommand",
        ),
        (
            &["run", "missing.toml"],
            " ERROR error: cannot read job file `missing.toml`",
        ),
    ] {
        Test::new()
            .job("job.toml", ONE_STEP)
            .command(words)
            .run()
            .expect_code(2)
            .every_line_stamped()
            .stderr_has(&[says]);
    }
    // With `--log-format json` each is one JSON object: level, message.
    for words in [
        &[
            "--log-format",
            "json",
            "--output-dir",
            "o",
            "check",
            "{job}",
        ][..],
        &[
            "--log-format",
            "json",
            "run",
            "{job}",
            "--gateway-url",
            "http://10.1.2.3:9",
        ],
    ] {
        let t = Test::new().job("job.toml", ONE_STEP).command(words).run();
        t.expect_code(2);
        let events = t.json_lines();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["level"], "ERROR");
        assert!(events[0]["timestamp"].is_string(), "{}", events[0]);
        let message = events[0]["message"].as_str().unwrap();
        assert!(
            message.contains("before the subcommand") || message.contains("over plain http"),
            "{message}"
        );
    }
    // The diagnostics of an invalid job: the block as rustc prints it.
    let t = Test::new()
        .job(
            "bad.toml",
            "[[step]]\nid = \"a\"\nget = \"/dap/{{ namespce }}\"\n",
        )
        .run();
    t.expect_code(2);
    let lines: Vec<&str> = t.run.stderr.lines().collect();
    assert!(
        lines[0].starts_with("error: undefined variable `namespce`"),
        "{}",
        t.run.stderr
    );
    assert!(lines[1].starts_with(" --> "), "{}", t.run.stderr);
    assert_eq!(
        lines.last().unwrap(),
        &"error: 1 problem found; nothing was sent"
    );
}

/// Issue 13 (left by stop 17): a client secret written in the project file was reported as
/// "written in the job file". It is reported in the project file, at its line and column,
/// once however many jobs inherit it, and the secret itself is not printed; one in a job file
/// (a Canvas token too) is reported in the job file.
#[test]
fn issue_13_a_literal_secret_in_the_project_file_is_reported_there() {
    const LITERAL: &str = "literal-s3cret-0b5e";
    let project = format!("[gateway]\ntimeout = \"20s\"\nclient_secret = \"{LITERAL}\"\n");
    let job = |name: &str| format!("name = \"{name}\"\n{ONE_STEP}");
    let t = Test::new()
        .file("jobs/dap-run.toml", &project)
        .file("jobs/a.toml", &job("a"))
        .file("jobs/b.toml", &job("b"))
        .command(&["check", "jobs/a.toml", "jobs/b.toml"])
        .run();
    t.expect_code(2)
        .stderr_has(&[
            "error: the client secret is written in the project file\n --> jobs/dap-run.toml:3:17\n",
            "3 | client_secret = ***\n",
            "= help: read it from the environment: `client_secret = \"{{ env.DAP_CLIENT_SECRET }}\"`",
            "error: 1 problem found; nothing was sent",
        ])
        .no_secret();
    assert!(!t.run.stderr.contains("job file"), "{}", t.run.stderr);
    assert!(!t.run.stderr.contains(LITERAL), "{}", t.run.stderr);
    // `run` refuses it before sending anything.
    let t = Test::new()
        .file("jobs/dap-run.toml", &project)
        .file("jobs/a.toml", &job("a"))
        .command(&["run", "jobs/a.toml"])
        .run();
    t.expect_code(2)
        .stderr_has(&["jobs/dap-run.toml:3:17"])
        .no_secret();
    assert!(!t.run.stderr.contains(LITERAL), "{}", t.run.stderr);
    assert_eq!(t.ws.counters().requests, 0);
    // In a job file, the job file is named.
    Test::new()
        .job(
            "inst.toml",
            &format!(
                "[gateway]\nauth = \"inst_access\"\ncanvas_url = \"https://c.example\"\ncanvas_token = \"{LITERAL}\"\n{ONE_STEP}"
            ),
        )
        .command(&["check", "{job}"])
        .run()
        .expect_code(2)
        .stderr_has(&["error: the Canvas API token is written in the job file\n --> "])
        .stderr_has(&["inst.toml:4:16", "4 | canvas_token = ***\n"])
        .no_secret();
}

/// Issue 13 (left by stop 17): `plan` refused jobs that share a state file as `run` does,
/// though a plan sends nothing and writes nothing. `plan` and `check` warn and go on; `run`
/// still refuses, with nothing sent and nothing written. The two state files are one through
/// `..` (`one/../state` and `two/../state`), which the comparison also caught only as text.
#[test]
fn issue_13_plan_and_check_warn_of_jobs_that_run_refuses_together() {
    let job = |name: &str| format!("name = \"{name}\"\nstate_dir = \"../state\"\n{ONE_STEP}");
    let with_jobs = |words: &[&str]| {
        Test::new()
            .file("one/x.toml", &job("one"))
            .file("two/x.toml", &job("two"))
            .command(words)
            .run()
    };
    let warning = " WARN `one/x.toml` and `two/x.toml` would share the state file `two/../state/x.state.json`; `dap-run run` refuses them in one command";
    let plan = with_jobs(&["plan", "one/x.toml", "two/x.toml"]);
    plan.expect_code(0).every_line_stamped().stderr_has(&[
        warning,
        " WARN   = help: give the jobs different file names",
    ]);
    plan.stdout_has(&["job: one", "job: two"]);
    let check = with_jobs(&["check", "one/x.toml", "two/x.toml"]);
    check.expect_code(0).stderr_has(&[warning]);
    assert_eq!(check.run.stdout.lines().count(), 2, "{}", check.run.stdout);
    // One job alone: no warning.
    let one = with_jobs(&["plan", "one/x.toml"]);
    assert_eq!(one.expect_code(0).run.stderr, "");
    // Two jobs of one name: a warning too.
    Test::new()
        .file("a.toml", ONE_STEP)
        .file("b.toml", &format!("name = \"a\"\n{ONE_STEP}"))
        .command(&["plan", "a.toml", "b.toml"])
        .run()
        .expect_code(0)
        .stderr_has(&[" WARN `a.toml` and `b.toml` are both named `a`"]);

    let run = with_jobs(&["run", "one/x.toml", "two/x.toml"]);
    run.expect_code(2).stderr_has(&[
        " ERROR error: `one/x.toml` and `two/x.toml` would share the state file `two/../state/x.state.json`",
    ]);
    assert_eq!(run.ws.counters().requests, 0);
    assert!(!run.ws.path().join("state").exists());
}
