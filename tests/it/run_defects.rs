//! Regressions of the run-level defects of issue 12: each test runs the binary and checks what
//! the defect got wrong.

use crate::common::*;

/// Issue 12, defect 9: `check` passed what the run refused or panicked on. Each of these is
/// refused by `check` with its location, and nothing is sent.
#[test]
fn issue_12_check_refuses_what_the_run_would_refuse() {
    let ws = Workspace::default_sandbox();
    let cases = [
        (
            "pad_too_wide.toml",
            "`pad(99999999999)` is wider than a file name can be",
            "pad_too_wide.toml:6:",
        ),
        (
            "header_name_crlf.toml",
            "`X-Team\\r\\nX-Injected` is not a valid header name",
            "header_name_crlf.toml:6:",
        ),
        (
            "plain_http_gateway.toml",
            "refusing to send credentials to the gateway `http://api-gateway.example.com/` over plain http",
            "plain_http_gateway.toml:4:",
        ),
    ];
    for (file, message, at) in cases {
        let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/bad_jobs")
            .join(file);
        std::fs::copy(&from, ws.path().join(file)).unwrap();
        let run = ws.run(&["check", file]);
        run.expect_code(2);
        assert!(run.stderr.contains(message), "{file}: {}", run.stderr);
        assert!(run.stderr.contains(at), "{file}: {}", run.stderr);
    }
    assert_eq!(ws.counters().requests, 0);
}

/// Issue 12, defect 9: a `pad` width that only the run knows (from a variable) fails the item
/// with a message instead of aborting the process.
#[test]
fn issue_12_a_huge_pad_width_at_run_time_fails_without_a_panic() {
    let ws = Workspace::default_sandbox();
    let job = ws.job(
        "pad.toml",
        r#"
[vars]
width = 99999999999

[[step]]
id = "list"
get = "/dap/query/canvas/table"
save = "tables-{{ 1 | pad(width) }}.json"
"#,
    );
    ws.run(&["check", job.to_str().unwrap()]).expect_code(0);
    let run = ws.run(&[job.to_str().unwrap(), "--output-dir", "out"]);
    run.expect_code(1);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(
        run.stderr.contains("pad(99999999999) is wider than 255"),
        "{}",
        run.stderr
    );
}

/// Issue 12, defect 6: when the state file cannot be written, the summary and the reports were
/// skipped. They are written; the exit code is 5 and the message says what happened.
#[test]
fn issue_12_a_state_file_that_cannot_be_written_still_gets_summary_and_reports() {
    let ws = Workspace::new(SandboxConfig {
        latency: std::time::Duration::from_millis(400),
        ..Default::default()
    });
    let job = ws.job(
        "tables.toml",
        r#"
[state]
seen = {}

[[step]]
id = "list"
get = "/dap/query/canvas/table"
outputs = { tables = "$.tables" }
save = "tables.json"
persist = { "seen.tables" = "{{ tables | length }}" }
"#,
    );
    std::fs::create_dir(ws.path().join("st")).unwrap();
    let child = ws
        .cmd()
        .args([
            job.to_str().unwrap(),
            "--output-dir",
            "out",
            "--state-dir",
            "st",
            "--report",
            "json=report.json",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the gateway sees the login, the run has read its state; then the state folder
    // becomes a file, so the state cannot be written at the end.
    let waited = std::time::Instant::now();
    while ws.counters().requests == 0 {
        assert!(waited.elapsed().as_secs() < 30, "the run sent nothing");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::rename(ws.path().join("st"), ws.path().join("st-moved")).unwrap();
    std::fs::write(ws.path().join("st"), "not a folder").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("cannot write the state file"), "{stderr}");
    assert!(
        stderr.contains("state not saved: the next run starts from the same point"),
        "the summary is printed: {stderr}"
    );
    assert!(ws.path().join("out/tables.json").exists());
    let report: serde_json::Value =
        serde_json::from_str(&ws.read("report.json")).expect("the JSON report is written");
    assert_eq!(report["state_written"], false);
    assert!(
        report["state_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot write the state file")),
        "{report}"
    );
}

/// Issue 12, defect 5: `dap-run job.toml` (no folder in the path) with a relative
/// `token_cache` failed to write the cache ("No such file or directory"); `./job.toml` worked.
#[test]
fn issue_12_a_relative_token_cache_is_written_when_the_job_path_has_no_folder() {
    let ws = Workspace::default_sandbox();
    ws.job(
        "job.toml",
        r#"
[gateway]
token_cache = "tok.json"

[[step]]
id = "list"
get = "/dap/query/canvas/table"
"#,
    );
    let run = ws.run(&["job.toml", "--output-dir", "out"]);
    run.expect_code(0);
    assert!(!run.stderr.contains("token cache"), "{}", run.stderr);
    assert!(ws.path().join("tok.json").is_file(), "{}", run.stderr);
    // The next run reuses the cached token: no second login.
    ws.run(&["job.toml", "--output-dir", "out"]).expect_code(0);
    assert_eq!(ws.counters().logins, 1);
}

/// Issue 12, defect 3: the lock file followed a symbolic link and truncated its target. A link
/// in place of the lock or state file is refused (exit 5) and its target is left alone.
#[cfg(unix)]
#[test]
fn issue_12_a_symlinked_lock_or_state_file_is_refused_and_its_target_untouched() {
    let ws = Workspace::default_sandbox();
    let job = ws.job(
        "job.toml",
        "[state]\nseen = {}\n[[step]]\nid = \"list\"\nget = \"/dap/query/canvas/table\"\n",
    );
    let precious = ws.path().join("precious.txt");
    std::fs::write(&precious, "keep me\n").unwrap();
    for link in ["job.lock", "job.state.json"] {
        let at = ws.path().join(link);
        std::os::unix::fs::symlink(&precious, &at).unwrap();
        let run = ws.run(&[job.to_str().unwrap(), "--output-dir", "out"]);
        run.expect_code(5);
        assert!(
            run.stderr.contains("symbolic link"),
            "{link}: {}",
            run.stderr
        );
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me\n");
        std::fs::remove_file(&at).unwrap();
    }
    assert_eq!(ws.counters().requests, 0);
    ws.run(&[job.to_str().unwrap(), "--output-dir", "out"])
        .expect_code(0);
}
