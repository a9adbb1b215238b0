//! Loading job files: every problem of a file at once, each with `file:line:col`, whatever
//! kind (TOML types, unknown keys, validation), and nothing sent.

use crate::common::*;

fn bad_job(ws: &Workspace, name: &str) -> String {
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/bad_jobs")
        .join(name);
    std::fs::copy(&from, ws.path().join(name)).unwrap();
    name.to_owned()
}

/// A TOML type error (`concurrency = "eight"`) hides no other problem of the file: two type
/// errors, an unknown `auth`, a malformed duration, a bad step id and an
/// undefined variable are all reported, in file order, each located.
#[test]
fn a_type_error_hides_no_other_problem() {
    let ws = Workspace::default_sandbox();
    let file = bad_job(&ws, "type_error_and_others.toml");
    let run = ws
        .dap()
        .args(&["check", &file])
        .status(2)
        .stderr_has(&["nothing was sent"])
        .run();
    let expected = [
        (
            "type_error_and_others.toml:6:15",
            "`concurrency` must be a whole number 1-256",
        ),
        ("type_error_and_others.toml:9:8", "unknown auth `oauth`"),
        (
            "type_error_and_others.toml:10:11",
            "invalid duration `5 parsecs`",
        ),
        (
            "type_error_and_others.toml:16:6",
            "step id `list-tables` is not a valid identifier",
        ),
        (
            "type_error_and_others.toml:17:",
            "undefined variable `namespce`",
        ),
        (
            "type_error_and_others.toml:18:",
            "`every` must be a duration or a range in quotes",
        ),
    ];
    let mut from = 0;
    for (at, message) in expected {
        let m = run.stderr[from..]
            .find(message)
            .unwrap_or_else(|| panic!("`{message}` (in order) in\n{}", run.stderr));
        let loc = run.stderr[from + m..]
            .find(at)
            .unwrap_or_else(|| panic!("`{at}` after `{message}` in\n{}", run.stderr));
        from += m + loc;
    }
    assert!(
        run.stderr
            .contains("error: 6 problems found; nothing was sent"),
        "{}",
        run.stderr
    );
    assert_eq!(ws.counters().requests, 0);
}

/// Every unknown key of a file is reported at once, at its key, with the closest known key,
/// in tables at every depth (top level, `[gateway.retry]`, a step, its inline `poll`).
#[test]
fn every_unknown_key_is_reported_at_its_key() {
    let ws = Workspace::default_sandbox();
    let job = ws.job(
        "typos.toml",
        "nme = \"x\"\n[gateway.retry]\natempts = 3\n[[step]]\nid = \"a\"\nget = \"/x\"\ngett = 2\npoll = { until = \"true\", evry = \"1s\" }\n",
    );
    let run = ws
        .dap()
        .args(&["check", job.to_str().unwrap()])
        .status(2)
        .stderr_has(&["4 problems found; nothing was sent"])
        .run();
    for (key, at, suggestion) in [
        ("nme", "typos.toml:1:1", "name"),
        ("atempts", "typos.toml:3:1", "attempts"),
        ("gett", "typos.toml:7:1", "get"),
        ("evry", "typos.toml:8:26", "every"),
    ] {
        assert!(
            run.stderr.contains(&format!("unknown key `{key}`")),
            "{key}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(at), "{at}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("did you mean `{suggestion}`?")),
            "{suggestion}: {}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("4 problems found"), "{}", run.stderr);
}

/// Found while adding the project file's schema: an unknown key inside the project file's
/// `[gateway]` (`urll`, `atempts`) was silently ignored, so the job went to the default gateway
/// without a word. Every unknown key of the project file is reported at its key, with the
/// closest known one, like a job file's.
#[test]
fn every_unknown_key_of_the_project_file_is_reported_at_its_key() {
    let t = Test::new()
        .file(
            "dap-run.toml",
            "[gateway]\nurll = \"https://gateway.example\"\n[gateway.retry]\natempts = 3\n[vars]\nx = 1\n",
        )
        .job("job.toml", "[[step]]\nid = \"a\"\nget = \"/x\"\n")
        .command(&["check", "job.toml"])
        .status(2)
    .stderr_has(&[
        "error: unknown key `urll`\n --> dap-run.toml:2:1\n",
        "did you mean `url`?",
        "error: unknown key `atempts`\n --> dap-run.toml:4:1\n",
        "did you mean `attempts`?",
        "error: unknown key `vars`\n --> dap-run.toml:5:2\n",
        "= help: expected one of `gateway`",
        "error: 3 problems found; nothing was sent",
    ]).run();
    assert_eq!(t.ws.counters().requests, 0);
}

/// A value of the wrong type is reported with the file's other problems, not instead of them.
#[test]
fn a_value_of_the_wrong_type_is_reported_with_the_files_other_problems() {
    let ws = Workspace::default_sandbox();
    let job = ws.job(
        "typed.toml",
        r#"[defaults]
concurrency = "eight"

[vars]
namespace = "canvas"

[[step]]
id = "tables"
get = "/dap/query/{{ namespce }}/table"
poll = { until = "true", every = 5 }
"#,
    );
    let r = ws
        .dap()
        .args(&["check", job.to_str().unwrap()])
        .status(2)
        .stderr_has(&["3 problems found; nothing was sent"])
        .run();
    for expected in [
        "typed.toml:2:15",
        "`concurrency` must be a whole number 1-256",
        "typed.toml:10:",
        "`every` must be a duration or a range in quotes",
        "undefined variable `namespce` in step `tables`",
        "did you mean `namespace`?",
        "3 problems found",
    ] {
        assert!(r.stderr.contains(expected), "`{expected}` in\n{}", r.stderr);
    }
    assert_eq!(ws.counters().requests, 0);
}

/// `check` refuses what the run would refuse (or, once, panicked on), each with its location,
/// and nothing is sent.
#[test]
fn check_refuses_what_the_run_would_refuse() {
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
        ws.dap()
            .args(&["check", file])
            .status(2)
            .stderr_has(&[message])
            .stderr_has(&[at])
            .run();
    }
    assert_eq!(ws.counters().requests, 0);
}
