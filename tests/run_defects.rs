//! Regressions of the run-level defects of issue 12: each test runs the binary and checks what
//! the defect got wrong.

mod common;

use common::*;

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
            "refusing to send credentials to the gateway `http://api-gateway.example.com` over plain http",
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
