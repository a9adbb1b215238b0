//! Run-level regressions of issue 12 that need a run caught in the middle of a download: a
//! signal (defect 7) and two jobs sharing an output folder (defect 1). Each runs the binary and
//! checks the exit code, stderr, reports and files. (Defect 6 is in `run_defects`.)

use std::io::{BufRead as _, Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;

/// An object store on loopback: `/urls` names one object on itself, `/trickle` sends that
/// object one byte every 50 ms, for minutes. `started` is set once a download has begun.
struct Trickle {
    url: String,
    started: Arc<AtomicBool>,
}

fn trickle_store() -> Trickle {
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
fn slow_job(ws: &Workspace, name: &str, store: &str) -> std::path::PathBuf {
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

fn temp_files(dir: &Path) -> Vec<String> {
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

/// Waits for the child to exit, killing it if it does not within a generous bound.
pub(crate) fn wait_exit(mut child: Child) -> Run {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("dap-run did not exit after the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Run {
        code: child.wait().unwrap().code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

pub(crate) fn send_signal(child: &Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill(1) runs");
    assert!(status.success());
}

/// Issue 12, defect 7: the first SIGTERM or SIGINT stops the run: the download in flight is
/// abandoned and its temporary file removed, the summary and the report are written, the
/// state is left as it was, and the exit code is 143 (TERM) or 130 (INT).
#[test]
fn issue_12_a_signal_stops_the_run_with_summary_report_and_state_untouched() {
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let ws = Workspace::default_sandbox();
        let store = trickle_store();
        let job = slow_job(&ws, "slow", &store.url);
        let job = job.to_str().unwrap();
        // A first, quick run saves the state the interrupted run must leave alone.
        ws.run(&[job, "--output-dir", "out"]).expect_code(0);
        let state_before = std::fs::read(ws.path().join("slow.state.json")).unwrap();

        let child = ws
            .cmd()
            .args([job, "--output-dir", "out", "--var", "slow=true"])
            .args(["--report", "json=report.json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = ws.path().join("out");
        wait_for("the download to start", || {
            store.started.load(Ordering::SeqCst) && !temp_files(&out).is_empty()
        });
        send_signal(&child, signal);
        let run = wait_exit(child);
        run.expect_code(code);
        assert!(
            run.stderr.contains(&format!("received SIG{signal}")),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(&format!("slow: failed (exit {code})")),
            "summary: {}",
            run.stderr
        );
        // Every summary line of a log carries the time and level (issue 13.8).
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

fn spawn_slow(ws: &Workspace, job: &Path) -> Child {
    ws.cmd()
        .args([
            job.to_str().unwrap(),
            "--output-dir",
            "shared",
            "--var",
            "slow=true",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Issue 12, defect 1: two jobs sharing an output folder. The start-up clean-up of a run
/// removed every `.dap-run-tmp-*` file in the folder while the lock is per job, so a second
/// job deleted the first one's download in progress. A run removes only its own job's
/// leftovers, and a user's file named like a temporary file stays.
#[test]
fn issue_12_a_run_removes_only_its_own_jobs_temporary_files() {
    let ws = Workspace::default_sandbox();
    let store = trickle_store();
    let a = slow_job(&ws, "a", &store.url);
    let b = slow_job(&ws, "b", &store.url);
    let shared = ws.path().join("shared");

    // A killed run of `b` leaves its temporary file behind.
    let mut killed = spawn_slow(&ws, &b);
    wait_for("b's download to start", || !temp_files(&shared).is_empty());
    killed.kill().unwrap();
    killed.wait().unwrap();
    let left_by_b = temp_files(&shared);
    assert_eq!(left_by_b.len(), 1, "{left_by_b:?}");

    // `a` downloads into the same folder.
    let running = spawn_slow(&ws, &a);
    wait_for("a's download to start", || temp_files(&shared).len() == 2);
    let of_a: Vec<String> = temp_files(&shared)
        .into_iter()
        .filter(|f| !left_by_b.contains(f))
        .collect();
    // Files of users that only look like temporary files.
    let lookalikes = [".dap-run-tmp-notes.txt", ".dap-run-tmp-x1Y2z3"];
    for name in lookalikes {
        std::fs::write(shared.join(name), "mine").unwrap();
    }

    // `b` runs again while `a` downloads: it removes its own leftover only.
    ws.run(&[b.to_str().unwrap(), "--output-dir", "shared"])
        .expect_code(0);
    let now = temp_files(&shared);
    assert!(
        !now.contains(&left_by_b[0]),
        "b's leftover is removed: {now:?}"
    );
    assert!(
        now.contains(&of_a[0]),
        "a's download in progress stays: {now:?}"
    );
    for name in lookalikes {
        assert_eq!(std::fs::read_to_string(shared.join(name)).unwrap(), "mine");
    }

    // `a` is still downloading; stopped, it removes its own temporary file and no other.
    assert!(store.started.load(Ordering::SeqCst));
    send_signal(&running, "TERM");
    wait_exit(running).expect_code(143);
    assert_eq!(
        temp_files(&shared),
        lookalikes.map(String::from).to_vec(),
        "only the look-alikes are left"
    );
}

/// Issue 12, defect 7, in a loop: the item in flight is abandoned, the items not started are
/// reported as not started (summary and JUnit), and nothing is written.
#[test]
fn issue_12_a_signal_during_a_loop_reports_the_items_not_started() {
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
        .cmd()
        .args([job.to_str().unwrap(), "--output-dir", "out"])
        .args(["--report", "junit=junit.xml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = ws.path().join("out");
    wait_for("the first download to start", || {
        !temp_files(&out).is_empty()
    });
    send_signal(&child, "TERM");
    let run = wait_exit(child);
    run.expect_code(143);
    assert!(
        run.stderr.contains(
            "interrupted by SIGTERM: the work in flight was abandoned; not started: 2 loop items"
        ),
        "{}",
        run.stderr
    );
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

/// Issue 11: a job of several that a signal kept from starting is reported with the signal's
/// exit code and its own reason (it was a usage error recognised by its text).
#[test]
fn issue_11_a_job_a_signal_kept_from_starting_has_the_signals_exit_code() {
    let ws = Workspace::default_sandbox();
    let store = trickle_store();
    let slow = format!(
        "name = \"slow\"\n[[step]]\nid = \"object\"\nget = \"{}/urls\"\ndownload = {{ urls = \"$.urls.*.url\", to = \"x.bin\" }}\n",
        store.url
    );
    let first = ws.job("first.toml", &slow);
    let second = ws.job("second.toml", &slow.replacen("\"slow\"", "\"later\"", 1));
    let child = ws
        .cmd()
        .arg("run")
        .args([&first, &second])
        .args(["--report", "json=report.json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first job's download to start", || {
        store.started.load(Ordering::SeqCst)
    });
    send_signal(&child, "TERM");
    let run = wait_exit(child);
    run.expect_code(143);
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
