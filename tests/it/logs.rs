//! Logs: plain timestamped lines in a cron log (every line, even an error that ends a
//! command), progress and colour on a terminal (and `NO_COLOR`), `-q`, `-v`/`-vv`, JSON logs
//! with the summary's counts and the diagnostics' places, loop items named in the log.

use std::time::Duration;

use crate::common::*;

#[test]
fn cron_stderr_has_timestamped_lines_and_no_escape_codes() {
    // Even with a TERM that could draw bars, a pipe gets plain lines.
    let t = Test::new()
        .example("nightly.toml")
        .env("TERM", "xterm-256color")
        .status(0)
        .run();
    t.every_line_stamped().no_secret();
    let r = &t;
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
    let t = Test::new()
        .example("tables.toml")
        .command(&quiet)
        .status(0)
        .run();
    assert_eq!(t.stderr, "", "-q and success: silence");

    let t = Test::new()
        .sandbox(hiding(&["users"]))
        .example("tables.toml")
        .command(&quiet)
        .status(1)
        .stderr_lacks(&[" INFO "])
        .stderr_has(&["missing from `canvas`: users"])
        .run();
    assert!(
        t.stderr
            .lines()
            .any(|l| unstamped(l)
                == "error: step `tables`: check failed: missing from `canvas`: users"),
        "{}",
        t.stderr
    );
}

#[test]
fn verbose_flags_add_debug_then_trace() {
    let with = |flags: &[&str]| {
        let mut words = flags.to_vec();
        words.extend(["{job}", "--output-dir", "out"]);
        let t = Test::new()
            .example("tables.toml")
            .command(&words)
            .status(0)
            .run();
        t.no_secret();
        t
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
            .status(code);
        let t = if code == 0 {
            t.run()
        } else {
            t.stderr_has(&["missing from `canvas`: users"]).run()
        };
        t.no_secret();
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
        .status(2)
        .stderr_has(&["cannot read job file `missing.toml`"])
        .run();
    t.json_lines();
}

#[test]
fn terminal_session_shows_progress() {
    if !tool_available("script", "bsdutils") {
        return;
    }
    let t = Test::new()
        .sandbox(SandboxConfig {
            polls_to_complete: 3,
            latency: Duration::from_millis(100),
            // Big enough that a download bar is drawn while bytes arrive.
            large_object_bytes: 15_000_000,
            objects_per_job: 1,
            ..Default::default()
        })
        .example("nightly.toml")
        // `script` gives the run a pseudo-terminal; everything it draws comes back on stdout.
        .wrap(on_a_terminal)
        .status(0)
        .stdout_has(&["nightly: ok: 3 steps"])
        .run();
    let tty = &t.stdout;
    assert!(tty.contains('\x1b'), "no terminal drawing:\n{tty:?}");
    // Downloads show bytes and a rate.
    assert!(tty.contains("/s"), "no download rate:\n{tty:?}");
    for bar in ["query", "wait", "download"] {
        assert!(tty.contains(bar), "no bar for `{bar}`:\n{tty:?}");
    }
    assert!(tty.contains("/5"), "no item counts:\n{tty:?}");
    assert!(
        !tty.contains(" INFO "),
        "a terminal shows warnings only by default:\n{tty:?}"
    );
}

/// On a terminal (a pty from `script`), log lines are coloured unless NO_COLOR is set.
#[test]
fn no_color_is_honoured_on_a_terminal() {
    if !tool_available("script", "bsdutils") {
        return;
    }
    let ws = Workspace::default_sandbox();
    ws.example("tables.toml");
    let on_a_terminal = |no_color: Option<&str>| {
        let mut t = ws
            .dap()
            .args(&["-v", "run", "tables.toml", "--output-dir", "out"]);
        if let Some(v) = no_color {
            t = t.env("NO_COLOR", v);
        }
        t.wrap(on_a_terminal).status(0).run().stdout
    };
    let coloured = on_a_terminal(None);
    assert!(
        coloured.contains("\u{1b}["),
        "a terminal gets colours: {coloured}"
    );
    let plain = on_a_terminal(Some("1"));
    assert!(plain.contains("INFO step 1/1 `tables`"), "{plain}");
    assert!(!plain.contains("\u{1b}["), "NO_COLOR: {plain:?}");
}

#[test]
fn json_logs_carry_the_summary_counts_and_the_diagnostics_places() {
    let t = Test::new()
        .job("a.toml", &tables_text("a", &["nope"]))
        .command(&["--log-format", "json", "run", "{job}"])
        .status(1)
        .stderr_has(&["a: failed (exit 1)"])
        .run();
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
        .status(2)
        .stderr_has(&["2 problems found; nothing was sent"])
        .run();
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
fn every_line_of_a_cron_log_is_timestamped() {
    // A failed run: a summary of several lines (the error, the state note), an error event.
    let t = Test::new()
        .file("a.toml", &tables_text("a", &["nope"]))
        .file("b.toml", &tables_text("b", &[]))
        .command(&["run", "a.toml", "b.toml"])
        .status(1)
        .stderr_has(&[
            // The summary's continuation line.
            " ERROR error: step `tables`: check failed: missing from `canvas`: nope",
        ])
        .run();
    t.every_line_stamped();
    assert!(t.stderr.lines().count() > 10, "{}", t.stderr);
    // A log event of several lines (a message with `= help:`): each line stamped.
    Test::new()
        .job(
            "c.toml",
            "[[step]]\nid = \"x\"\nget = \"/dap/query/canvas/table\"\noutputs = { x = \"$.nope\" }\n",
        )
        .command(&["run", "{job}"])
        .status(1)
        .stderr_has(&[" ERROR   = help: check the path"]).run()
        .every_line_stamped();
}

#[test]
fn loop_items_are_named_by_their_value_or_a_label_template() {
    // `dap-run FLAGS run JOB --report junit=r.xml`: its stderr and its JUnit report.
    let run = |flags: &[&str], text: &str| {
        let mut words = flags.to_vec();
        words.extend(["run", "{job}", "--report", "junit=r.xml"]);
        let t = Test::new()
            .job("schemas.toml", text)
            .command(&words)
            .status(0)
            .run();
        let xml = t.ws.read("r.xml");
        (t.stderr, xml)
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
        .status(2)
        .stderr_has(&[
            "tabel",
            "did you mean `table`?",
            "`label` names the items of a loop, but the step has no `for_each`",
            "error: 2 problems found",
        ])
        .run();
}

#[test]
fn vv_shows_request_bodies_outputs_and_poll_statuses_and_no_secret() {
    let run = |flag: &str| {
        let t = Test::new()
            .sandbox(SandboxConfig {
                polls_to_complete: 2,
                ..Default::default()
            })
            .example("nightly.toml")
            .command(&[flag, "run", "{job}", "--output-dir", "out"])
            .status(0)
            .run();
        // Redacted: no secret, no token, in any line (nor in any file).
        t.no_secret();
        t.stderr
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

/// The single error that ends a command is a line of its log like the others: timestamped in
/// a cron log, a JSON object with `--log-format json` (a misplaced run option's error too);
/// the diagnostics of an invalid job stay rustc's block, whose `-->` lines editors' problem matchers look for.
#[test]
fn the_error_that_ends_a_command_is_a_line_of_its_log() {
    // A gateway failure that ends the run before a request.
    Test::new()
        .example("tables.toml")
        .env("DAP_API_URL", "http://10.1.2.3:9")
        .status(2)
        .stderr_has(&[
            " ERROR error: refusing to send credentials to the gateway `http://10.1.2.3:9/`",
            " ERROR   = help: use https://",
        ])
        .run()
        .every_line_stamped()
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
            .status(2)
            .stderr_has(&[says])
            .run()
            .every_line_stamped();
    }
    // With `--log-format json` each is one JSON object: level, message.
    for (words, says) in [
        (
            &[
                "--log-format",
                "json",
                "--output-dir",
                "o",
                "check",
                "{job}",
            ][..],
            "before the subcommand",
        ),
        (
            &[
                "--log-format",
                "json",
                "run",
                "{job}",
                "--gateway-url",
                "http://10.1.2.3:9",
            ],
            "over plain http",
        ),
    ] {
        let t = Test::new()
            .job("job.toml", ONE_STEP)
            .command(words)
            .status(2)
            .stderr_has(&[says])
            .run();
        let events = t.json_lines();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["level"], "ERROR");
        assert!(events[0]["timestamp"].is_string(), "{}", events[0]);
        let message = events[0]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    // The diagnostics of an invalid job: the block as rustc prints it.
    let t = Test::new()
        .job(
            "bad.toml",
            "[[step]]\nid = \"a\"\nget = \"/dap/{{ namespce }}\"\n",
        )
        .status(2)
        .stderr_has(&["error: 1 problem found; nothing was sent"])
        .run();
    let lines: Vec<&str> = t.stderr.lines().collect();
    assert!(
        lines[0].starts_with("error: undefined variable `namespce`"),
        "{}",
        t.stderr
    );
    assert!(lines[1].starts_with(" --> "), "{}", t.stderr);
    assert_eq!(
        lines.last().unwrap(),
        &"error: 1 problem found; nothing was sent"
    );
}

/// The summary's count of further failures is a note: a field of the JSON summary event, not
/// `= note:` text in its message, and a `= note:` line under the first error in the text log.
#[test]
fn the_summarys_further_failures_are_a_note_field_in_json_logs() {
    let job = "[vars]\ntables = [\"no_such_a\", \"no_such_b\"]\n\n[[step]]\nid = \"schema\"\nfor_each = \"tables\"\nas = \"table\"\nget = \"/dap/query/canvas/table/{{ table }}/schema\"\n";
    let t = Test::new()
        .job("job.toml", job)
        .command(&["--log-format", "json", "{job}", "--output-dir", "out"])
        .status(7)
        .stderr_has(&["table `no_such_a` does not exist"])
        .run();
    let summary = t
        .json_lines()
        .into_iter()
        .rev()
        .find(|v| v["summary"] == true)
        .expect("summary event");
    let message = summary["message"].as_str().unwrap();
    assert!(!message.contains("= note"), "{message}");
    assert!(message.contains("error: "), "{message}");
    assert_eq!(summary["note"], "1 more failure above", "{summary}");
    let text = Test::new()
        .job("job.toml", job)
        .status(7)
        .stderr_has(&["table `no_such_a` does not exist"])
        .run();
    // A log file's lines are stamped `<time> <LEVEL> <text>`.
    let lines: Vec<&str> = text.stderr.lines().collect();
    let at = lines
        .iter()
        .rposition(|l| l.contains(" ERROR error: "))
        .unwrap_or_else(|| panic!("{}", text.stderr));
    assert!(
        lines
            .get(at + 1)
            .is_some_and(|l| l.ends_with(" ERROR   = note: 1 more failure above")),
        "{}",
        text.stderr
    );
}
