//! The disk a replica's downloads take (docs/replica.md, "Disk"): a load's objects are removed
//! once its transaction has committed, a failed load keeps only the object its error points
//! into (until the next load of the table), a killed load's are removed by the next load of the
//! table, never while another run uses them, and `keep_downloads = true` keeps every object in
//! `<output>/<ns>/<table>/<job id>/`. Through the binary against a made-up gateway and the
//! sandbox, each scenario against SQLite, PostgreSQL and MySQL/MariaDB.

use std::fs::File;
use std::path::Path;

use serde_json::json;

use crate::common::*;

const AT: &str = "2025-01-01T00:00:00Z";
const UNTIL: &str = "2025-01-02T00:00:00Z";
const UNTIL2: &str = "2025-01-03T00:00:00Z";

/// The lock file a load holds in its folder.
const LOCK: &str = ".dap-run-load.lock";

/// A run loading `canvas.t` into `db` in `ws` (downloads under `out/`), keeping the objects
/// when `keep`.
fn load(ws: &Workspace, db: &TestDb, keep: bool) -> Test {
    let keep = if keep { ", keep_downloads = true" } else { "" };
    ws.job(
        "job.toml",
        &format!(
            "name = \"disk\"\n\n[[step]]\nid = \"load\"\nload = {{ namespace = \"canvas\", table = \"t\"{keep} }}\n"
        ),
    );
    ws.dap().args(&[
        "run",
        "job.toml",
        "--output-dir",
        "out",
        "--database",
        &db.url,
        "--report",
        "json=report.json",
    ])
}

/// A gateway serving `canvas.t` (an integer key `id`, an integer `n`).
fn gateway() -> FakeGateway {
    let gw = FakeGateway::start();
    gw.table(
        "canvas",
        "t",
        schema(
            json!({"id": {"type": "integer", "format": "int64"}}),
            json!({"n": {"type": "integer", "format": "int32"}}),
        ),
    );
    gw
}

/// A snapshot object with the rows `ids` (`n` = id).
fn rows(ids: std::ops::Range<u32>) -> String {
    let mut s = "key.id\tvalue.n\n".to_owned();
    for i in ids {
        s.push_str(&format!("{i}\t{i}\n"));
    }
    s
}

/// An incremental object: `U` records for `ids`.
fn changes(ids: std::ops::Range<u32>) -> String {
    let mut s = "meta.action\tkey.id\tvalue.n\n".to_owned();
    for i in ids {
        s.push_str(&format!("U\t{i}\t{}\n", i * 10));
    }
    s
}

/// The files under `dir/out` that are downloads (everything but the replica and the run's
/// own files at the top), and every folder under it (`canvas/`).
pub(crate) fn downloads(dir: &Path) -> Vec<String> {
    let out = dir.join("out");
    let mut found: Vec<String> = files_under(&out)
        .into_iter()
        .filter(|f| f.contains('/'))
        .collect();
    fn folders(base: &Path, d: &Path, found: &mut Vec<String>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                found.push(format!(
                    "{}/",
                    e.path().strip_prefix(base).unwrap().display()
                ));
                folders(base, &e.path(), found);
            }
        }
    }
    folders(&out, &out, &mut found);
    found.sort();
    found
}

fn report_files(dir: &Path) -> serde_json::Value {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    report["steps"][0]["items"][0]["files"].clone()
}

/// A snapshot and an incremental, each of two objects: after each, the table holds the rows
/// and the output folder holds no object and no folder; the report lists no file.
#[test]
fn a_committed_load_leaves_no_object_behind() {
    for db in TestDb::each("disk_none") {
        let gw = gateway();
        gw.job(
            "canvas",
            "t",
            FakeJob::snapshot(AT, &[&rows(0..5), &rows(5..9)]),
        );
        gw.job(
            "canvas",
            "t",
            FakeJob::incremental(UNTIL, &[&changes(0..2), &changes(7..9)]),
        );
        let ws = gw.workspace();
        load(&ws, &db, false).status(0).run();
        assert_eq!(db.rows("canvas", "t", &["id"]).len(), 9, "{db:?}");
        assert_eq!(downloads(ws.path()), Vec::<String>::new(), "{db:?}");
        assert_eq!(report_files(ws.path()), json!([]), "{db:?}");
        load(&ws, &db, false).status(0).run();
        assert_eq!(db.until("canvas", "t").as_deref(), Some(UNTIL), "{db:?}");
        assert_eq!(
            db.rows("canvas", "t", &["id", "n"])[1],
            [Some("1".into()), Some("10".into())],
            "{db:?}"
        );
        assert_eq!(downloads(ws.path()), Vec::<String>::new(), "{db:?}");
    }
}

/// With `keep_downloads = true` every load's objects stay in
/// `<output>/<ns>/<table>/<job id>/part-NNNNN.tsv.gz`, as downloaded, with nothing else; a
/// later run that does not keep its own leaves them alone.
#[test]
fn kept_downloads_stay_in_one_folder_per_gateway_job() {
    for db in TestDb::each("disk_keep") {
        let gw = gateway();
        let (a, b) = (rows(0..5), rows(5..9));
        gw.job("canvas", "t", FakeJob::snapshot(AT, &[&a, &b]));
        gw.job(
            "canvas",
            "t",
            FakeJob::incremental(UNTIL, &[&changes(0..2)]),
        );
        gw.job(
            "canvas",
            "t",
            FakeJob::incremental(UNTIL2, &[&changes(2..3)]),
        );
        let ws = gw.workspace();
        load(&ws, &db, true).status(0).run();
        let files = report_files(ws.path());
        assert_eq!(files.as_array().unwrap().len(), 2, "{db:?}: {files}");
        load(&ws, &db, true).status(0).run();
        let kept = [
            "canvas/",
            "canvas/t/",
            "canvas/t/job-1/",
            "canvas/t/job-1/part-00000.tsv.gz",
            "canvas/t/job-1/part-00001.tsv.gz",
            "canvas/t/job-2/",
            "canvas/t/job-2/part-00000.tsv.gz",
        ];
        assert_eq!(downloads(ws.path()), kept, "{db:?}");
        let text = |p: &str| {
            let mut s = String::new();
            use std::io::Read as _;
            flate2::read::GzDecoder::new(File::open(ws.path().join("out").join(p)).unwrap())
                .read_to_string(&mut s)
                .unwrap();
            s
        };
        assert_eq!(text("canvas/t/job-1/part-00000.tsv.gz"), a);
        assert_eq!(text("canvas/t/job-1/part-00001.tsv.gz"), b);
        // The option off: this load's objects go, the kept ones stay.
        load(&ws, &db, false).status(0).run();
        assert_eq!(downloads(ws.path()), kept, "{db:?}");
    }
}

/// A load that fails on a row of its second object keeps that object, and only it, for
/// diagnosis, and says so; a load refused for a reason no object holds keeps nothing; the
/// next successful run of the table leaves nothing behind.
#[test]
fn a_failed_load_keeps_only_the_object_at_fault_until_the_next_run() {
    for db in TestDb::each("disk_failed") {
        let gw = gateway();
        let short = "key.id\tvalue.n\n10\t10\n11\n";
        gw.job(
            "canvas",
            "t",
            FakeJob::snapshot(AT, &[&rows(0..5), short, &rows(5..9)]),
        );
        let ws = gw.workspace();
        let at_fault = Path::new("out/canvas/t/job-1/part-00001.tsv.gz");
        load(&ws, &db, false)
            .status(6)
            .stderr_has(&[
                "line 3: 1 fields where the header has 2",
                &format!(
                    "kept `{}` for diagnosis; the next load of the table removes it",
                    at_fault.display()
                ),
            ])
            .run();
        assert_eq!(
            downloads(ws.path()),
            [
                "canvas/",
                "canvas/t/",
                "canvas/t/job-1/",
                &format!("canvas/t/job-1/{LOCK}"),
                "canvas/t/job-1/part-00001.tsv.gz",
            ],
            "{db:?}"
        );
        assert_eq!(db.until("canvas", "t"), None, "{db:?}: nothing committed");

        // Refused by the database (a key sent twice): no object is at fault, so none is kept.
        gw.job(
            "canvas",
            "t",
            FakeJob::snapshot(AT, &[&rows(0..5), &rows(4..6)]),
        );
        load(&ws, &db, false)
            .status(6)
            .stderr_has(&["the table was left at its previous point"])
            .run();
        assert_eq!(downloads(ws.path()), Vec::<String>::new(), "{db:?}");
        gw.job("canvas", "t", FakeJob::snapshot(AT, &[&rows(0..5)]));
        load(&ws, &db, false).status(0).run();
        assert_eq!(downloads(ws.path()), Vec::<String>::new(), "{db:?}");
    }
}

/// What a run killed between its commit and the removal of its objects leaves (a folder with
/// its lock file free) is removed by the next load of the table; a folder whose lock another
/// run holds is left alone until that run is gone; a run whose gateway job's folder another
/// run holds leaves the table to it (exit 75) and touches nothing.
#[test]
fn the_next_load_removes_a_stopped_runs_objects_never_a_running_ones() {
    for db in TestDb::each("disk_stopped") {
        let gw = gateway();
        let ws = gw.workspace();
        let table = ws.path().join("out/canvas/t");
        let folder = |name: &str| {
            let f = table.join(name);
            std::fs::create_dir_all(&f).unwrap();
            std::fs::write(f.join(LOCK), "remove\n").unwrap();
            std::fs::write(f.join("part-00000.tsv.gz"), "x").unwrap();
            File::open(f.join(LOCK)).unwrap()
        };
        drop(folder("stopped"));
        let running = folder("running");
        running.lock().unwrap();
        // The gateway's next job is `job-1`: its folder is another run's.
        let same_job = folder("job-1");
        same_job.lock().unwrap();
        gw.job("canvas", "t", FakeJob::snapshot(AT, &[&rows(0..5)]));
        load(&ws, &db, false)
            .status(75)
            .stderr_has(&["another run is loading the objects of `canvas.t`"])
            .run();
        assert!(table.join("stopped/part-00000.tsv.gz").exists());
        assert!(table.join("job-1/part-00000.tsv.gz").exists());
        drop(same_job);

        gw.job("canvas", "t", FakeJob::snapshot(AT, &[&rows(0..5)]));
        load(&ws, &db, false).status(0).run();
        assert_eq!(
            downloads(ws.path()),
            [
                "canvas/",
                "canvas/t/",
                "canvas/t/running/",
                &format!("canvas/t/running/{LOCK}"),
                "canvas/t/running/part-00000.tsv.gz",
            ],
            "{db:?}"
        );
        drop(running);
        gw.job(
            "canvas",
            "t",
            FakeJob::incremental(UNTIL, &[&changes(0..1)]),
        );
        load(&ws, &db, false).status(0).run();
        assert_eq!(downloads(ws.path()), Vec::<String>::new(), "{db:?}");
    }
}

/// A run stopped by SIGTERM while a load is in flight (its first object loaded, the second
/// never arriving) abandons the load and removes its objects as it goes: exit 143, nothing
/// left, the table where it was.
#[test]
fn a_run_stopped_by_a_signal_mid_load_leaves_no_object() {
    use crate::signals::{send_signal, wait_for};
    for db in TestDb::each("disk_signal") {
        let gw = gateway();
        gw.job("canvas", "t", FakeJob::snapshot(AT, &[&rows(0..5), STALL]));
        let ws = gw.workspace();
        let child = load(&ws, &db, false)
            .status(143)
            .stderr_has(&["SIGTERM"])
            .spawn();
        let first = ws.path().join("out/canvas/t/job-1/part-00000.tsv.gz");
        wait_for("the first object", || first.exists());
        send_signal(&child, "TERM");
        child.wait(std::time::Duration::from_secs(60));
        assert_eq!(downloads(ws.path()), Vec::<String>::new(), "{db:?}");
        assert_eq!(db.until("canvas", "t"), None, "{db:?}");
    }
}

/// Runs killed at seeded moments (downloading, loading, committing), then a run to the end:
/// the output folder then holds no object and no folder of a load.
#[test]
fn a_killed_run_then_a_normal_one_leave_no_object() {
    let mut rng = fastrand::Rng::with_seed(kill_seed());
    for db in TestDb::each("disk_kill") {
        let ws = sandbox_with_rows(4000);
        ws.example("replicate.toml");
        // Loaded once first, so that the killed runs' incrementals can commit.
        replicate(&ws, Some(&db.url), r#"["users","courses"]"#)
            .status(0)
            .run();
        for _ in 0..3 {
            ws.sandbox()
                .advance_clock(std::time::Duration::from_secs(1));
            let before = ws.counters().object_downloads;
            let mut run = replicate(&ws, Some(&db.url), r#"["users","courses"]"#).spawn();
            let started = std::time::Instant::now();
            while ws.counters().object_downloads == before && run.is_running() {
                assert!(started.elapsed() < std::time::Duration::from_secs(60));
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            std::thread::sleep(std::time::Duration::from_millis(rng.u64(0..150)));
            run.kill();
        }
        ws.sandbox()
            .advance_clock(std::time::Duration::from_secs(1));
        replicate(&ws, Some(&db.url), r#"["users","courses"]"#)
            .status(0)
            .run();
        assert_eq!(downloads(ws.path()), Vec::<String>::new(), "{db:?}");
    }
}

/// `keep_downloads` is checked with the rest of the job file: a value that is not a boolean,
/// or a misspelt key, is exit 2 with its place, before anything is sent.
#[test]
fn check_refuses_a_keep_downloads_that_is_not_a_boolean() {
    let ws = Workspace::bare();
    ws.job(
        "job.toml",
        "name = \"x\"\n[[step]]\nid = \"l\"\nload = { namespace = \"canvas\", table = \"t\", keep_downloads = \"yes\" }\n[[step]]\nid = \"m\"\nload = { namespace = \"canvas\", table = \"t\", keep_download = true }\n",
    );
    ws.dap()
        .args(&["check", "job.toml"])
        .status(2)
        .stderr_has(&[
            "error: `keep_downloads` must be `true` or `false`\n --> job.toml:4:62",
            "error: unknown key `keep_download`\n --> job.toml:7:45",
            "did you mean `keep_downloads`?",
        ])
        .run();
}
