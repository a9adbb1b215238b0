//! The files a nightly leaves: no run replaces what an earlier run downloaded, even when the
//! gateway, having no new data, answers a second run with the same `until` as the first.
//!
//! The sandbox's `no_new_data_after` stops its data at start, so every job reports the same
//! `at`/`until`, as the real gateway's does when nothing changed between two runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;

const TABLES: &str = r#"tables=["accounts","users"]"#;

/// The layout of the first nightly example: one folder per `until`, which two jobs can share.
const UNTIL_LAYOUT: &str = r#"download = { urls = "$.urls.*.url", to = "{{ item.table }}/{{ (item.until or item.at) | stamp }}/part-{{ part | pad(5) }}.jsonl.gz" }"#;

/// A sandbox whose data does not change: every job reports the time the sandbox started.
fn no_new_data() -> Workspace {
    Workspace::new(SandboxConfig {
        no_new_data_after: Some(Duration::ZERO),
        ..Default::default()
    })
}

/// The nightly example, with its `download` line replaced by `download` when given.
fn nightly(ws: &Workspace, download: Option<&str>) -> PathBuf {
    let text = std::fs::read_to_string(examples_dir().join("nightly.toml")).unwrap();
    let text = match download {
        None => text,
        Some(line) => {
            let lines: Vec<&str> = text
                .lines()
                .map(|l| {
                    if l.starts_with("download = ") {
                        line
                    } else {
                        l
                    }
                })
                .collect();
            assert!(lines.contains(&line), "nightly.toml has a `download` line");
            lines.join("\n")
        }
    };
    ws.job("nightly.toml", &text)
}

fn run(ws: &Workspace, job: &Path) -> Test {
    ws.dap().args(&[
        "run",
        job.to_str().unwrap(),
        "--output-dir",
        "out",
        "--var",
        TABLES,
    ])
}

/// Every file under `out/`, with its bytes.
fn files(ws: &Workspace) -> BTreeMap<String, Vec<u8>> {
    let out = ws.path().join("out");
    files_under(&out)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(out.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

fn state(ws: &Workspace) -> Option<String> {
    std::fs::read_to_string(ws.path().join("nightly.state.json")).ok()
}

#[test]
fn a_snapshot_is_never_replaced_by_a_later_empty_incremental_of_the_same_until() {
    let ws = no_new_data();
    let job = nightly(&ws, Some(UNTIL_LAYOUT));
    run(&ws, &job).status(0).run();
    let snapshot = files(&ws);
    assert_eq!(snapshot.len(), 4, "{:?}", snapshot.keys());
    for f in snapshot.keys() {
        assert!(
            gzip_jsonl_lines(&ws.path().join("out").join(f)) > 0,
            "{f} holds the snapshot's rows"
        );
    }
    let saved = state(&ws).expect("state after the first run");

    // Same `until`, so the same paths: the empty incremental must not take the snapshot's place.
    let accounts = snapshot.keys().next().unwrap();
    let second = run(&ws, &job)
        .status(5)
        .stderr_has(&["step `download` (item `users`)"])
        .run();
    for line in [
        format!(
            "error: step `download` (item `accounts`): `out/{accounts}` and 1 more file are already there with other bytes (written by an earlier run, or by another item of this run): they are kept, and none of this item's 2 downloaded files was placed"
        ),
        "  = note: nothing is lost: the run fails, so its state is not saved and the next run asks for the same data again".to_owned(),
        "  = help: give each gateway job its own folder in `download.to`, e.g. `{{ item.table }}/{{ (item.until or item.at) | stamp }}_{{ item.job_id }}/part-{{ part | pad(5) }}.jsonl.gz` (a gateway with no new data answers again with the same `until`); or move the file away if nothing needs it".to_owned(),
    ] {
        assert!(second.stderr.contains(&line), "no `{line}` in\n{}", second.stderr);
    }
    assert_eq!(
        files(&ws),
        snapshot,
        "the snapshot's files, byte for byte, and no other"
    );
    assert_eq!(
        state(&ws).as_deref(),
        Some(saved.as_str()),
        "state as it was"
    );
}

#[test]
fn a_rerun_handed_the_same_gateway_job_keeps_its_files_and_succeeds() {
    // The first run fails on `users`, so no state is saved; the next run (of `accounts` alone:
    // the gateway would hand back `users`' failed job too) asks `accounts` the same query, the
    // gateway hands back the same job, and its files are already there.
    let ws = Workspace::with_faults(Faults {
        fail_tables: vec!["users".into()],
        ..Default::default()
    });
    let job = nightly(&ws, Some(UNTIL_LAYOUT));
    run(&ws, &job)
        .status(1)
        .stderr_has(&["the job for table `users` ended `failed`"])
        .run();
    let first = files(&ws);
    assert_eq!(first.len(), 2, "accounts' parts: {:?}", first.keys());
    assert!(state(&ws).is_none());

    ws.dap()
        .args(&[
            "run",
            job.to_str().unwrap(),
            "--output-dir",
            "out",
            "--var",
            r#"tables=["accounts"]"#,
        ])
        .status(0)
        .stderr_has(&["already there with the same bytes; kept as it was"])
        .run();
    assert_eq!(
        files(&ws),
        first,
        "the same files, byte for byte, and no other"
    );
    assert_eq!(
        ws.counters().job_queries.len(),
        3,
        "accounts asked twice, users once"
    );
    assert!(state(&ws).is_some());
}

/// Each of `before`'s files is still there with the same bytes.
#[track_caller]
fn assert_kept(before: &BTreeMap<String, Vec<u8>>, now: &BTreeMap<String, Vec<u8>>) {
    for (f, bytes) in before {
        assert!(
            now.get(f) == Some(bytes),
            "{f} is not as the earlier run wrote it"
        );
    }
}

/// The folders of `table` under `out/`, sorted.
fn folders(ws: &Workspace, table: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(ws.path().join("out").join(table))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn nightlies_that_get_the_same_until_keep_every_runs_files() {
    let ws = no_new_data();
    let job = nightly(&ws, None);
    run(&ws, &job).status(0).run();
    let first = files(&ws);
    assert_eq!(first.len(), 4, "{:?}", first.keys());
    let saved = state(&ws).expect("state");
    let until: serde_json::Value = serde_json::from_str(&saved).unwrap();
    let stamp = until["state"]["until"]["accounts"]
        .as_str()
        .unwrap()
        .replace(['-', ':'], "");

    // No new data: the same `until`, another gateway job, its own folder.
    run(&ws, &job)
        .status(0)
        .stderr_has(&["queries: 2 incremental, 0 snapshots"])
        .run();
    let after_second = files(&ws);
    assert_kept(&first, &after_second);
    assert_eq!(after_second.len(), 8, "{:?}", after_second.keys());
    for table in ["accounts", "users"] {
        let runs = table_runs(&ws.path().join("out"), table);
        assert_eq!(runs.len(), 2, "{table}: {runs:?}");
        for (folder, _) in &runs {
            assert!(folder.starts_with(&format!("{stamp}_")), "{table}/{folder}");
        }
    }
    let new: Vec<&String> = after_second
        .keys()
        .filter(|f| !first.contains_key(*f))
        .collect();
    for f in &new {
        assert_eq!(
            gzip_jsonl_lines(&ws.path().join("out").join(f)),
            0,
            "{f}: an incremental with nothing new"
        );
    }
    assert_eq!(
        state(&ws).as_deref(),
        Some(saved.as_str()),
        "`until` did not move"
    );

    // The same query again: the gateway hands back the same job, whose files are there.
    run(&ws, &job)
        .status(0)
        .stderr_has(&["already there with the same bytes; kept as it was"])
        .run();
    assert_eq!(files(&ws), after_second, "nothing added, nothing changed");

    // A day later that job has expired: a new job, with the same `until` still.
    ws.sandbox().advance_clock(Duration::from_secs(25 * 3_600));
    run(&ws, &job).status(0).run();
    let after_fourth = files(&ws);
    assert_kept(&after_second, &after_fourth);
    assert_eq!(after_fourth.len(), 12, "{:?}", after_fourth.keys());
    assert_eq!(state(&ws).as_deref(), Some(saved.as_str()));
    assert!(
        files_under(ws.path())
            .iter()
            .all(|f| !f.contains(".dap-run-tmp-")),
        "no temporary file left"
    );
}

#[test]
fn folders_of_the_until_layout_carry_on_in_the_job_layout_without_a_new_snapshot() {
    // A user of the earlier layout takes the new example: the state still says where each
    // table stands, so the next run asks for changes, and the old folders stay first.
    let ws = no_new_data();
    run(&ws, &nightly(&ws, Some(UNTIL_LAYOUT))).status(0).run();
    let old = files(&ws);
    let old_folders: Vec<String> = ["accounts", "users"]
        .iter()
        .map(|table| {
            let names = folders(&ws, table);
            assert_eq!(names.len(), 1, "{table}: {names:?}");
            names[0].clone()
        })
        .collect();

    run(&ws, &nightly(&ws, None))
        .status(0)
        .stderr_has(&["queries: 2 incremental, 0 snapshots"])
        .run();
    let c = ws.counters();
    assert!(
        c.job_queries[2..].iter().all(|q| q.get("since").is_some()),
        "{:?}",
        c.job_queries
    );
    assert_kept(&old, &files(&ws));
    for (table, old_folder) in ["accounts", "users"].iter().zip(&old_folders) {
        let now = folders(&ws, table);
        assert_eq!(now.len(), 2, "{table}: {now:?}");
        assert_eq!(&now[0], old_folder);
        assert!(
            now[1].starts_with(&format!("{old_folder}_")),
            "{table}: the new folder sorts after the old one of the same `until`: {now:?}"
        );
    }
}
