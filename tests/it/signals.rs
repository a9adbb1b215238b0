//! Signals: SIGTERM or SIGINT stops a run caught in the middle of a download (a store on
//! loopback that trickles one byte at a time) with its summary, reports and state as they must
//! be, and the signal's exit code for what it kept from starting. The trickling store is shared
//! with `output_files` (two jobs in one output folder).

use std::io::{BufRead as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;

/// An object store on loopback: `/urls` names one object on itself, `/trickle` sends that
/// object one byte every 50 ms, for minutes. `started` is set once a download has begun.
pub(crate) struct Trickle {
    pub(crate) url: String,
    pub(crate) started: Arc<AtomicBool>,
}

pub(crate) fn trickle_store() -> Trickle {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let started = Arc::new(AtomicBool::new(false));
    let flag = started.clone();
    let base = url.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let flag = flag.clone();
            let base = base.clone();
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                // The rest of the request head.
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                }
                if line.contains("/urls") {
                    let body = format!(r#"{{"urls":[{{"url":"{base}/trickle"}}]}}"#);
                    let _ = write!(
                        conn,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    return;
                }
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n"
                );
                flag.store(true, Ordering::SeqCst);
                for _ in 0..100_000 {
                    if conn.write_all(b"x").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        }
    });
    Trickle { url, started }
}

/// A job whose first step saves state-worthy values through the sandbox, and whose second
/// step (when `slow` is true) downloads from the trickling store.
pub(crate) fn slow_job(ws: &Workspace, name: &str, store: &str) -> std::path::PathBuf {
    ws.job(
        &format!("{name}.toml"),
        &format!(
            r#"
name = "{name}"

[vars]
slow = false

[state]
runs = {{}}

[[step]]
id = "tables"
get = "/dap/query/canvas/table"
outputs = {{ tables = "$.tables" }}
persist = {{ "runs.last" = "{{{{ run.id }}}}" }}

[[step]]
id = "object"
when = "slow"
get = "{store}/urls"
download = {{ urls = "$.urls.*.url", to = "object.bin" }}
"#
        ),
    )
}

pub(crate) fn temp_files(dir: &Path) -> Vec<String> {
    files_under(dir)
        .into_iter()
        .filter(|f| f.contains(".dap-run-tmp-"))
        .collect()
}

/// Waits for `cond`, failing (not hanging) after a generous bound.
pub(crate) fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn send_signal(run: &Running, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &run.child.id().to_string()])
        .status()
        .expect("kill(1) runs");
    assert!(status.success());
}

/// The first SIGTERM or SIGINT stops the run: the download in flight is abandoned and its
/// temporary file removed, the summary and the report are written, the state is left as it
/// was, and the exit code is 143 (TERM) or 130 (INT).
#[test]
fn a_signal_stops_the_run_with_summary_report_and_state_untouched() {
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let ws = Workspace::default_sandbox();
        let store = trickle_store();
        let job = slow_job(&ws, "slow", &store.url);
        let job = job.to_str().unwrap();
        // A first, quick run saves the state the interrupted run must leave alone.
        ws.dap().args(&[job, "--output-dir", "out"]).status(0).run();
        let state_before = std::fs::read(ws.path().join("slow.state.json")).unwrap();

        let child = ws
            .dap()
            .args(&[job, "--output-dir", "out", "--var", "slow=true"])
            .args(&["--report", "json=report.json"])
            .status(code)
            .stderr_has(&[
                &format!("received SIG{signal}"),
                &format!("slow: failed (exit {code})"),
            ])
            .spawn();
        let out = ws.path().join("out");
        wait_for("the download to start", || {
            store.started.load(Ordering::SeqCst) && !temp_files(&out).is_empty()
        });
        send_signal(&child, signal);
        let run = child.wait(Duration::from_secs(60));
        // Every summary line of a log carries the time and level.
        let lines: Vec<&str> = run.stderr.lines().collect();
        let at = lines
            .iter()
            .position(|l| {
                l.ends_with(&format!(
                    "interrupted by SIG{signal}: the work in flight was abandoned"
                ))
            })
            .unwrap_or_else(|| panic!("{}", run.stderr));
        assert!(
            lines[at + 1].contains(" WARN state left as it was"),
            "{}",
            run.stderr
        );
        let report: serde_json::Value =
            serde_json::from_str(&ws.read("report.json")).expect("the JSON report is written");
        assert_eq!(report["interrupted"], format!("SIG{signal}"));
        assert_eq!(report["exit_code"], code);
        assert_eq!(
            std::fs::read(ws.path().join("slow.state.json")).unwrap(),
            state_before,
            "state left as it was"
        );
        assert_eq!(temp_files(&out), Vec::<String>::new(), "no temporary files");
        assert!(!out.join("object.bin").exists(), "no partial download");
    }
}

/// A signal in a loop: the item in flight is abandoned, the items not started are reported as
/// not started (summary and JUnit), and nothing is written.
#[test]
fn a_signal_during_a_loop_reports_the_items_not_started() {
    let ws = Workspace::default_sandbox();
    let store = trickle_store();
    let job = ws.job(
        "loop.toml",
        &format!(
            r#"
name = "loop"

[vars]
parts = ["one", "two", "three"]

[[step]]
id = "object"
for_each = "parts"
concurrency = 1
get = "{}/urls"
download = {{ urls = "$.urls.*.url", to = "{{{{ item }}}}.bin" }}
"#,
            store.url
        ),
    );
    let child = ws
        .dap()
        .args(&[job.to_str().unwrap(), "--output-dir", "out"])
        .args(&["--report", "junit=junit.xml"])
        .status(143)
        .stderr_has(&[
            "interrupted by SIGTERM: the work in flight was abandoned; not started: 2 loop items",
        ])
        .spawn();
    let out = ws.path().join("out");
    wait_for("the first download to start", || {
        !temp_files(&out).is_empty()
    });
    send_signal(&child, "TERM");
    child.wait(Duration::from_secs(60));
    let junit = ws.read("junit.xml");
    assert!(
        junit.contains("interrupted by SIGTERM: abandoned"),
        "the item in flight: {junit}"
    );
    assert_eq!(
        junit
            .matches("skipped: the run was interrupted by SIGTERM")
            .count(),
        2,
        "{junit}"
    );
    assert_eq!(files_under(&out), Vec::<String>::new(), "nothing written");
}

/// A job of several that a signal kept from starting is reported with the signal's exit code
/// and its own reason (not as a usage error).
#[test]
fn a_job_a_signal_kept_from_starting_has_the_signals_exit_code() {
    let ws = Workspace::default_sandbox();
    let store = trickle_store();
    let slow = format!(
        "name = \"slow\"\n[[step]]\nid = \"object\"\nget = \"{}/urls\"\ndownload = {{ urls = \"$.urls.*.url\", to = \"x.bin\" }}\n",
        store.url
    );
    let first = ws.job("first.toml", &slow);
    let second = ws.job("second.toml", &slow.replacen("\"slow\"", "\"later\"", 1));
    let child = ws
        .dap()
        .args(&["run", first.to_str().unwrap(), second.to_str().unwrap()])
        .args(&["--report", "json=report.json"])
        .status(143)
        .stderr_has(&["received SIGTERM"])
        .spawn();
    wait_for("the first job's download to start", || {
        store.started.load(Ordering::SeqCst)
    });
    send_signal(&child, "TERM");
    child.wait(Duration::from_secs(60));
    let report: serde_json::Value = serde_json::from_str(&ws.read("report.json")).unwrap();
    assert_eq!(report["exit_code"], 143, "{report:#}");
    let later = &report["jobs"][1];
    assert_eq!(later["job"], "later", "{report:#}");
    assert_eq!(later["exit_code"], 143, "{report:#}");
    assert_eq!(
        later["error"], "not started: the command was stopped by SIGTERM",
        "{report:#}"
    );
}
