//! The whole DAP sync as a job file: `examples/nightly.toml` against the sandbox.
//!
//! Polling, streamed downloads (gzip kept or decompressed), expired-URL refresh, state carried
//! between runs and written only after a fully successful run, and per-route pacing.

use std::path::Path;

use crate::common::*;

const TABLES: [&str; 5] = ["accounts", "courses", "enrollments", "users", "submissions"];

fn run_nightly(ws: &Workspace, job: &Path) -> Test {
    ws.dap()
        .args(&["run", job.to_str().unwrap(), "--output-dir", "out"])
}

fn state(ws: &Workspace) -> Option<serde_json::Value> {
    let path = ws.path().join("nightly.state.json");
    std::fs::read_to_string(path)
        .ok()
        .map(|s| serde_json::from_str(&s).expect("state file is JSON"))
}

/// Every `part-*.jsonl.gz` of `table` decompresses whole into JSON lines, two parts in each
/// run's folder; returns the number of run folders.
fn assert_table_complete(ws: &Workspace, table: &str) -> usize {
    let out = ws.path().join("out");
    let runs = table_runs(&out, table);
    assert!(!runs.is_empty(), "{table} has files");
    for (folder, parts) in &runs {
        assert_eq!(
            parts,
            &["part-00000.jsonl.gz", "part-00001.jsonl.gz"],
            "{table}/{folder}"
        );
        for p in parts {
            let f = out.join(table).join(folder).join(p);
            assert!(gzip_jsonl_lines(&f) > 0, "{} has rows", f.display());
        }
    }
    runs.len()
}

fn assert_no_temp_files(ws: &Workspace) {
    let files = files_under(&ws.path().join("out"));
    assert!(
        files.iter().all(|f| !f.contains(".dap-run-tmp-")),
        "temporary files left behind: {files:?}"
    );
}

#[test]
fn nightly_runs_twice_incrementally() {
    let ws = Workspace::new(SandboxConfig {
        polls_to_complete: 2,
        ..Default::default()
    });
    let job = ws.example("nightly.toml");

    let first = run_nightly(&ws, &job).status(0).run();
    eprintln!("nightly, 5 tables, 2 polls per job: {:?}", first.took);
    for t in TABLES {
        assert_table_complete(&ws, t);
    }
    assert_no_temp_files(&ws);
    let saved = state(&ws).expect("the first run writes state");
    let until = saved["state"]["until"].as_object().expect("state.until");
    assert_eq!(until.len(), TABLES.len(), "{saved}");
    let c = ws.counters();
    assert_eq!(c.logins, 1);
    assert_eq!(c.job_queries.len(), TABLES.len());
    for (q, table) in c.job_queries.iter().zip(&c.job_query_tables) {
        assert!(
            q.get("since").is_none(),
            "first run is a snapshot: {table} {q}"
        );
        assert_eq!(q["format"], "jsonl");
    }
    // Three polls per job (two `waiting`/`running`, then `complete`), no more.
    assert_eq!(c.routes["GET /dap/job/{id}"], 3 * TABLES.len() as u64);

    run_nightly(&ws, &job).status(0).run();
    let c = ws.counters();
    assert_eq!(c.job_queries.len(), 2 * TABLES.len());
    let mut seen = Vec::new();
    for (q, table) in c
        .job_queries
        .iter()
        .zip(&c.job_query_tables)
        .skip(TABLES.len())
    {
        let table = table.strip_prefix("canvas/").expect("namespace canvas");
        assert_eq!(
            q["since"], until[table],
            "the second run asks `{table}` for changes since its saved `until`"
        );
        seen.push(table.to_owned());
    }
    seen.sort();
    let mut expected: Vec<String> = TABLES.iter().map(|t| t.to_string()).collect();
    expected.sort();
    assert_eq!(seen, expected);
    for t in TABLES {
        assert_eq!(assert_table_complete(&ws, t), 2, "one folder per run");
    }
    let next = state(&ws).expect("state");
    assert_ne!(next, saved, "the second run moves `until` on");
}

#[test]
fn failed_download_names_the_table_and_writes_no_state() {
    let ws = Workspace::default_sandbox();
    // One table, one object at a time: the first two object requests (the URL and its one
    // refresh) are refused, so exactly the first table's first part fails.
    let job = example_variant(
        &ws,
        "nightly.toml",
        &[
            (
                "concurrency = 8\npost = \"/dap/object/url\"",
                "concurrency = 1\npost = \"/dap/object/url\"",
            ),
            (
                "to = \"{{ item.table }}/{{ (item.until or item.at) | stamp }}_{{ item.job_id }}/part-{{ part | pad(5) }}.jsonl.gz\" }",
                "to = \"{{ item.table }}/{{ (item.until or item.at) | stamp }}_{{ item.job_id }}/part-{{ part | pad(5) }}.jsonl.gz\", concurrency = 1 }",
            ),
        ],
    );
    ws.sandbox().set_faults(Faults {
        expire_object_urls: 2,
        ..Default::default()
    });
    run_nightly(&ws, &job)
        .status(4)
        .stderr_has(&["step `download` (item `accounts`)"])
        .stderr_has(&["answered 403 Forbidden: AccessDenied: Request has expired"])
        .stderr_has(&["the URL was refreshed once already"])
        .run();
    assert!(
        files_under(&ws.path().join("out/accounts"))
            .iter()
            .all(|f| !f.ends_with("part-00000.jsonl.gz")),
        "the refused part is absent"
    );
    for t in TABLES.iter().filter(|t| **t != "accounts") {
        assert_table_complete(&ws, t);
    }
    assert!(state(&ws).is_none(), "no state after a failed download");
    assert_no_temp_files(&ws);
    // One refresh only.
    assert_eq!(ws.counters().routes["POST /dap/object/url"], 6);
}

#[test]
fn decompress_writes_plain_jsonl() {
    let ws = Workspace::default_sandbox();
    let job = example_variant(
        &ws,
        "nightly.toml",
        &[(
            "to = \"{{ item.table }}/{{ (item.until or item.at) | stamp }}_{{ item.job_id }}/part-{{ part | pad(5) }}.jsonl.gz\" }",
            "to = \"{{ item.table }}/{{ (item.until or item.at) | stamp }}_{{ item.job_id }}/part-{{ part | pad(5) }}.jsonl\", decompress = true }",
        )],
    );
    run_nightly(&ws, &job).status(0).run();
    for t in TABLES {
        let runs = table_runs(&ws.path().join("out"), t);
        assert_eq!(runs.len(), 1, "{t}: {runs:?}");
        let dir = ws.path().join("out").join(t).join(&runs[0].0);
        assert_eq!(runs[0].1, ["part-00000.jsonl", "part-00001.jsonl"]);
        for p in ["part-00000.jsonl", "part-00001.jsonl"] {
            let text = std::fs::read_to_string(dir.join(p)).expect("plain UTF-8 text");
            let lines: Vec<&str> = text.lines().collect();
            assert!(!lines.is_empty());
            for line in lines {
                serde_json::from_str::<serde_json::Value>(line)
                    .unwrap_or_else(|e| panic!("{t}/{p}: not JSON: {e}: {line}"));
            }
        }
    }
}

#[test]
fn pacing_keeps_within_the_gateways_limits() {
    let ws = Workspace::new(SandboxConfig {
        rate_limits: true,
        ..Default::default()
    });
    let job = example_variant(
        &ws,
        "nightly.toml",
        &[(
            "[vars]",
            "[gateway.rate_limits]\n\"POST /dap/query/*/table/*/data\" = \"2/s\"\n\"POST /dap/object/url\" = \"3/s\"\n\n[vars]",
        )],
    );
    let run = run_nightly(&ws, &job).status(0).run();
    let c = ws.counters();
    assert_eq!(c.rate_limited, 0, "no 429 from the gateway");
    assert_eq!(c.job_queries.len(), TABLES.len());
    assert_eq!(c.routes["POST /dap/object/url"], TABLES.len() as u64);
    assert!(
        run.stderr.contains("pacing: waiting"),
        "the budgets held requests back: {}",
        run.stderr
    );
    for t in TABLES {
        assert_table_complete(&ws, t);
    }
}

/// With the sandbox counting its limits per second (5 creates a window), 12 tables started at
/// once need three windows. Paced at the same budget, dap-run gets no 429; the same job with its
/// pacing lifted does get them, so the first half of the test can fail.
#[test]
fn pacing_avoids_the_429s_an_unpaced_run_gets() {
    let twelve = r#"tables = ["accounts", "courses", "enrollments", "users", "submissions", "assignments", "quizzes", "discussion_topics", "groups", "course_sections", "enrollment_terms", "wiki_pages"]"#;
    let run_with = |budget: &str| {
        let ws = Workspace::new(SandboxConfig {
            rate_limits: true,
            rate_limit_window: std::time::Duration::from_secs(1),
            ..Default::default()
        });
        let rates = format!(
            "[gateway.rate_limits]\n\"POST /dap/query/*/table/*/data\" = \"{budget}\"\n\n[vars]"
        );
        let job = example_variant(
            &ws,
            "nightly.toml",
            &[
                ("[vars]", rates.as_str()),
                (
                    r#"tables = ["accounts", "courses", "enrollments", "users", "submissions"]"#,
                    twelve,
                ),
            ],
        );
        (run_nightly(&ws, &job), ws)
    };
    let (paced, ws) = run_with("5/s");
    let paced = paced
        .status(0)
        .stderr_has(&["pacing: waiting", " 0 retries"])
        .run();
    let c = ws.counters();
    assert_eq!(
        c.rate_limited, 0,
        "paced: no 429 from the gateway\n{}",
        paced.stderr
    );
    assert_eq!(c.job_queries.len(), 12);

    let (unpaced, ws) = run_with("unlimited");
    let unpaced = unpaced.status(0).stderr_has(&["retrying"]).run();
    assert!(
        ws.counters().rate_limited > 0,
        "without pacing the same run must meet the gateway's limit, or this test proves nothing\n{}",
        unpaced.stderr
    );
}

/// The documented wait after polling for `elapsed_ms`: a tenth of it, within `every`'s bounds
/// (written here from the README, not taken from `dap_run::poll`, which it checks).
fn a_tenth_within(elapsed_ms: u64, min_ms: u64, max_ms: u64) -> u64 {
    (elapsed_ms / 10).clamp(min_ms, max_ms)
}

/// The polls a job finishing after `job_ms` costs when every answer is instant: one at 0, then
/// one after each documented wait, up to the first at or after `job_ms`.
fn polls_for(job_ms: u64, min_ms: u64, max_ms: u64) -> u64 {
    let (mut t, mut polls) = (0, 1);
    while t < job_ms {
        t += a_tenth_within(t, min_ms, max_ms);
        polls += 1;
    }
    polls
}

/// The `poll N after E ms; polling again in W ms` lines of a `-v` run: (elapsed, wait) in ms.
fn poll_waits(stderr: &str) -> Vec<(u64, u64)> {
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.split(" after ").nth(1)?;
            let (elapsed, rest) = rest.split_once(" ms; polling again in ")?;
            let wait = rest.split_once(" ms")?.0;
            Some((elapsed.parse().ok()?, wait.parse().ok()?))
        })
        .collect()
}

#[test]
fn polls_wait_a_tenth_of_the_elapsed_time_within_every() {
    // Jobs that stay running for 40 polls, so the waits reach both bounds of `every`.
    let ws = Workspace::new(SandboxConfig {
        polls_to_complete: 40,
        ..Default::default()
    });
    let job = example_variant(
        &ws,
        "nightly.toml",
        &[("every = \"500ms..1m\"", "every = \"10ms..40ms\"")],
    );
    let run = ws
        .dap()
        .args(&["-v", "run", job.to_str().unwrap(), "--output-dir", "out"])
        .status(0)
        .run();
    let waits = poll_waits(&run.stderr);
    // Every poll but the one that saw `complete` logged its wait.
    assert_eq!(waits.len(), 40 * TABLES.len(), "{}", run.stderr);
    for &(elapsed, wait) in &waits {
        assert_eq!(wait, a_tenth_within(elapsed, 10, 40), "after {elapsed} ms");
    }
    assert!(waits.iter().any(|&(_, w)| w == 10), "{waits:?}");
    assert!(waits.iter().any(|&(_, w)| w == 40), "{waits:?}");
    assert!(waits.iter().any(|&(_, w)| w > 10 && w < 40), "{waits:?}");
    // The sandbox saw exactly those polls, plus the last one of each table.
    let c = ws.counters();
    assert_eq!(c.routes["GET /dap/job/{id}"], 41 * TABLES.len() as u64);
}

#[test]
fn time_based_jobs_cost_no_more_polls_than_the_schedule() {
    // Jobs that complete 1.5 s after they were created, as the real gateway's do after some
    // time; polled from 50 ms, a tenth of the time waited, up to 10 s.
    let job_time = std::time::Duration::from_millis(1_500);
    let ws = Workspace::new(SandboxConfig {
        job_time: Some(job_time),
        ..Default::default()
    });
    let job = example_variant(
        &ws,
        "nightly.toml",
        &[("every = \"500ms..1m\"", "every = \"50ms..10s\"")],
    );
    let run = ws
        .dap()
        .args(&[
            "-v",
            "run",
            job.to_str().unwrap(),
            "--output-dir",
            "out",
            "--report",
            "json=report.json",
        ])
        .status(0)
        .run();
    let report: serde_json::Value = serde_json::from_str(&ws.read("report.json")).unwrap();
    let wait = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "wait")
        .expect("the wait step");
    let most = polls_for(job_time.as_millis() as u64, 50, 10_000) + 1;
    let mut total = 0;
    for item in wait["items"].as_array().unwrap() {
        let polls = item["requests"].as_u64().unwrap();
        // Slow answers only make fewer polls; the schedule is the most a table can cost.
        assert!(
            (1..=most).contains(&polls),
            "{}: {polls} polls, at most {most}",
            item["label"]
        );
        total += polls;
    }
    // The sandbox counted exactly the polls the runner reports, and each one but the last of
    // each table waited as the schedule says.
    let c = ws.counters();
    assert_eq!(c.routes["GET /dap/job/{id}"], total);
    let waits = poll_waits(&run.stderr);
    assert_eq!(waits.len() as u64, total - TABLES.len() as u64);
    for (elapsed, wait) in waits {
        assert_eq!(
            wait,
            a_tenth_within(elapsed, 50, 10_000),
            "after {elapsed} ms"
        );
    }
    for t in TABLES {
        assert_table_complete(&ws, t);
    }
}

#[test]
fn a_body_that_is_only_saved_streams_whole_to_each_file() {
    let ws = Workspace::new(SandboxConfig {
        large_object_bytes: 3_000_000,
        objects_per_job: 1,
        ..Default::default()
    });
    let job = ws.job(
        "save.toml",
        r#"
[[step]]
id = "query"
post = "/dap/query/canvas/table/accounts/data"
json = { format = "jsonl" }
outputs = { job_id = "$.id" }

[[step]]
id = "wait"
get = "/dap/job/{{ job_id }}"
poll = { until = "status == 'complete'", every = "20ms..100ms", timeout = "30s" }
outputs = { status = "$.status", objects = "$.objects" }

[[step]]
id = "urls"
post = "/dap/object/url"
json = "{{ objects }}"
outputs = { urls = "$.urls.*.url" }

[[step]]
id = "fetch"
for_each = "urls"
as = "url"
get = "{{ url | safe }}"
save = ["object-{{ index }}.gz", "copy-{{ index }}.gz"]
"#,
    );
    let run = ws
        .dap()
        .args(&["run", job.to_str().unwrap(), "--output-dir", "out"])
        .status(0)
        .run();
    let saved = ws.path().join("out/object-0.gz");
    let bytes = std::fs::read(&saved).unwrap();
    assert!(bytes.len() >= 2_900_000, "{} bytes", bytes.len());
    assert_eq!(
        bytes,
        std::fs::read(ws.path().join("out/copy-0.gz")).unwrap()
    );
    assert!(gzip_jsonl_lines(&saved) > 0);
    assert_eq!(ws.counters().object_downloads, 1);
    assert!(run.stderr.contains("2 files"), "{}", run.stderr);
    assert_no_temp_files(&ws);
}
