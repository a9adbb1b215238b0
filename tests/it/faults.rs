//! The gateway's and the object store's faults, each scenario once: what the run prints (a stderr snapshot
//! where the output is deterministic), its exit code, what the gateway saw, and that the files
//! and state left behind are whole or absent.

use std::time::Duration;

use crate::common::*;

fn nightly() -> Test {
    Test::new().example("nightly.toml").append(FAST_RETRY)
}

/// Every `part-*.jsonl.gz` of `table` decompresses whole into JSON lines, two parts in one
/// run's folder.
#[track_caller]
fn assert_table_complete(t: &Outcome, table: &str) {
    let runs = table_runs(&t.out(), table);
    assert_eq!(runs.len(), 1, "{table}: {runs:?}");
    let (folder, parts) = &runs[0];
    assert_eq!(parts, &["part-00000.jsonl.gz", "part-00001.jsonl.gz"]);
    for p in parts {
        let f = t.out().join(table).join(folder).join(p);
        assert!(gzip_jsonl_lines(&f) > 0, "{} has rows", f.display());
    }
}

#[test]
fn retry_after_is_honoured() {
    let t = nightly()
        .faults(Faults {
            fail_429: 2,
            retry_after: Some(1),
            ..Default::default()
        })
        .status(0)
        .stderr_has(&["retrying in 1s"])
        .run();
    t.left_clean(true).no_secret();
    assert_eq!(t.ws.counters().rate_limited, 2);
    // The backoff alone would wait at most 200ms: the one-second Retry-After was honoured.
    assert!(t.took >= Duration::from_secs(1), "took {:?}", t.took);
    for table in TABLES {
        assert_table_complete(&t, table);
    }
}

#[test]
fn an_expired_object_url_is_refreshed_once() {
    let t = nightly()
        .faults(Faults {
            expire_object_urls: 1,
            ..Default::default()
        })
        .status(0)
        .stderr_has(&[
            "the object store refused the URL (expired?); asking the gateway for fresh URLs",
        ])
        .run();
    t.left_clean(true).no_secret();
    for table in TABLES {
        assert_table_complete(&t, table);
    }
    let c = t.ws.counters();
    assert_eq!(
        c.routes["POST /dap/object/url"], 6,
        "five tables and one refresh"
    );
    assert_eq!(c.object_downloads, 10);
    assert_eq!(
        c.object_auth_rejected, 0,
        "no token sent to the object store"
    );
}

#[test]
fn a_job_running_past_the_poll_deadline_fails_with_exit_4() {
    let t = nightly()
        .sandbox(SandboxConfig {
            polls_to_complete: 1_000_000,
            ..Default::default()
        })
        .edit(
            "every = \"500ms..1m\", timeout = \"2h\"",
            "every = \"100ms..200ms\", timeout = \"1s\"",
        )
        .tables(&["accounts"])
        .args(&["-q"])
        .status(4)
        .stderr_snapshot("poll_deadline")
        .stderr_has(&[
            "step `wait` (item `accounts`)",
            "did not hold within the poll timeout of 1s",
            "help: raise `poll.timeout`",
        ])
        .run();
    t.left_clean(false).no_secret();
    assert!(!t.out().join("accounts").exists());
    assert!(t.took < Duration::from_secs(10), "took {:?}", t.took);
}

#[test]
fn a_failed_gateway_job_names_the_table_and_writes_no_state() {
    let t = nightly()
        .faults(Faults {
            fail_tables: vec!["users".into()],
            ..Default::default()
        })
        .status(1)
        .stderr_has(&["the job for table `users` ended `failed`: ProcessingError: processing the query for table `users` failed"])
        .run();
    t.left_clean(false).no_secret();
    for table in TABLES.iter().filter(|t| **t != "users") {
        assert_table_complete(&t, table);
    }
    assert!(!t.out().join("users").exists());

    // One table alone: the whole message, as a user reads it.
    nightly()
        .faults(Faults {
            fail_tables: vec!["users".into()],
            ..Default::default()
        })
        .tables(&["users"])
        .args(&["-q"])
        .status(1)
        .stderr_snapshot("failed_job")
        .run();
}

#[test]
fn a_failed_gateway_job_leaves_the_previous_state_as_it_was() {
    // A good run writes state; a later failing run leaves it as it was. (A fresh sandbox: the
    // gateway answers an identical query with the existing job, failed or not.)
    let ws = Workspace::default_sandbox();
    let job = ws.example("nightly.toml");
    let args = ["run", job.to_str().unwrap(), "--output-dir", "out"];
    ws.dap().args(&args).status(0).run();
    let before = std::fs::read(ws.path().join("nightly.state.json")).unwrap();
    ws.sandbox().set_faults(Faults {
        fail_tables: vec!["users".into()],
        ..Default::default()
    });
    ws.dap()
        .args(&args)
        .status(1)
        .stderr_has(&["`users`"])
        .run();
    let after = std::fs::read(ws.path().join("nightly.state.json")).unwrap();
    assert_eq!(
        before, after,
        "a failed run leaves the state file unchanged"
    );
    // The other tables' second run landed in folders of its own; `users` has only the first.
    for table in TABLES {
        let runs = table_runs(&ws.path().join("out"), table).len();
        assert_eq!(runs, if table == "users" { 1 } else { 2 }, "{table}");
    }
}

#[test]
fn plain_http_to_a_non_loopback_gateway_is_refused_before_sending() {
    for (i, url) in ["http://api-gateway.example.com", "http://10.1.2.3:9"]
        .into_iter()
        .enumerate()
    {
        let by_env = Test::new()
            .example("tables.toml")
            .env("DAP_API_URL", url)
            .status(2)
            .stderr_has(&[
                &format!(
                    " ERROR error: refusing to send credentials to the gateway `{url}/` over plain http\n"
                ),
                " ERROR   = help: use https://",
            ])
            .run();
        by_env.every_line_stamped().no_secret();
        assert_eq!(by_env.ws.counters().requests, 0);
        let by_flag = Test::new()
            .example("tables.toml")
            .args(&["--gateway-url", url])
            .status(2)
            .stderr_snapshot(&format!("plain_http_{i}"))
            .run();
        assert_eq!(by_flag.ws.counters().requests, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Storms: a few faults are retried and the run succeeds; endless ones fail within the retry
// budget with exit 4, a message naming step and table, and a hint.

fn storm(faults: Faults) -> Test {
    nightly().faults(faults)
}

/// Runs `t`: it succeeds (saying `says`), every table whole and state written.
#[track_caller]
fn assert_succeeded(t: Test, says: &[&str]) -> Outcome {
    let t = t.status(0).stderr_has(says).run();
    t.left_clean(true).no_secret();
    for table in TABLES {
        assert_table_complete(&t, table);
    }
    t
}

/// Runs `t`: it fails with exit 4, says `lines` and a fix, and writes no state and no
/// partial file.
#[track_caller]
fn assert_failed(t: Test, lines: &[&str]) -> Outcome {
    let t = t.status(4).stderr_has(lines).stderr_has(&["help:"]).run();
    t.left_clean(false).no_secret();
    for f in files_under(&t.out()) {
        if f.ends_with(".gz") {
            gzip_jsonl_lines(&t.out().join(f));
        }
    }
    t
}

#[test]
fn a_storm_of_429_without_retry_after_is_retried_and_succeeds() {
    let t = assert_succeeded(
        storm(Faults {
            fail_429: 2,
            ..Default::default()
        }),
        &["retrying"],
    );
    assert_eq!(t.ws.counters().rate_limited, 2);
}

#[test]
fn endless_429_fails_with_exit_4_naming_step_table_and_fix() {
    let t = assert_failed(
        storm(Faults {
            fail_429: 10_000,
            ..Default::default()
        }),
        &[
            "step `query` (item `accounts`)",
            "429",
            "lower the loop's concurrency",
        ],
    );
    // Bounded: 3 attempts for each of the 5 tables, nothing more.
    let c = t.ws.counters();
    assert_eq!(c.rate_limited, 15, "{c:?}");
}

#[test]
fn a_storm_of_503_is_retried_and_succeeds() {
    assert_succeeded(
        storm(Faults {
            fail_503: 2,
            ..Default::default()
        }),
        &["retrying"],
    );
}

#[test]
fn endless_503_fails_with_exit_4_after_bounded_attempts() {
    let t = storm(Faults {
        fail_503: 10_000,
        ..Default::default()
    });
    let items: Vec<String> = TABLES
        .iter()
        .map(|t| format!("step `query` (item `{t}`)"))
        .collect();
    let mut lines: Vec<&str> = items.iter().map(String::as_str).collect();
    lines.extend([
        "503 Service Unavailable after 3 attempts",
        "help: the gateway is failing; try again later",
    ]);
    let t = assert_failed(t, &lines);
    let data_requests: u64 =
        t.ws.counters()
            .routes
            .iter()
            .filter(|(k, _)| k.ends_with("/data"))
            .map(|(_, v)| v)
            .sum();
    assert_eq!(data_requests, 15);
}

#[test]
fn dropped_connections_are_retried_and_succeed() {
    assert_succeeded(
        storm(Faults {
            drop_connections: 2,
            ..Default::default()
        }),
        &["retrying"],
    );
}

#[test]
fn endless_dropped_connections_fail_with_exit_4() {
    assert_failed(
        storm(Faults {
            drop_connections: 10_000,
            ..Default::default()
        }),
        &["step `query` (item `users`)", "failed after 3 attempt(s)"],
    );
}

#[test]
fn responses_slower_than_the_timeout_fail_with_exit_4() {
    let t = nightly()
        .sandbox(SandboxConfig {
            latency: Duration::from_millis(1500),
            ..Default::default()
        })
        .edit("timeout = \"2s\"", "timeout = \"200ms\"");
    let t = assert_failed(t, &["timed out"]);
    // 3 attempts of 200ms plus backoff per request, not 3 x 1.5s: the login alone would take
    // 4.5s at the sandbox's latency.
    assert!(t.took < Duration::from_secs(10), "took {:?}", t.took);
}

#[test]
fn one_second_tokens_are_renewed_and_the_run_succeeds() {
    let t = nightly()
        .sandbox(SandboxConfig {
            token_ttl: Duration::from_secs(1),
            polls_to_complete: 3,
            ..Default::default()
        })
        .edit("[gateway]\n", "[gateway]\ntoken_cache = false\n")
        // A one-second token can arrive with less left than the client likes.
        .may_warn(&["the login answered a token that is already expiring"]);
    let t = assert_succeeded(t, &[]);
    let c = t.ws.counters();
    assert!(c.logins >= 2, "tokens were renewed: {c:?}");
}

#[test]
fn object_urls_that_keep_expiring_fail_with_exit_4() {
    assert_failed(
        storm(Faults {
            expire_object_urls: 10_000,
            ..Default::default()
        }),
        &[
            "step `download` (item `accounts`)",
            "403",
            "the URL was refreshed once already",
        ],
    );
}
