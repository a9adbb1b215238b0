//! The overlap lock: a second run of a job exits 75 naming the holder, the lock dies with its
//! process (even on kill -9), and a lock or state file that is a symlink is refused.

use std::time::{Duration, Instant};

use crate::common::*;

#[test]
fn a_second_run_exits_75_naming_the_holder_and_the_lock_dies_with_it() {
    // Every answer takes 1.5 s, so the first run holds the lock for a while.
    let ws = Workspace::new(SandboxConfig {
        latency: Duration::from_millis(1500),
        ..Default::default()
    });
    ws.example("tables.toml");
    let lock = ws.path().join("tables.lock");
    let args = ["tables.toml", "--output-dir", "out"];
    let first = ws.dap().args(&args).status(0).spawn();
    let pid = first.child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.contains(&format!("pid {pid} "))) {
        assert!(
            Instant::now() < deadline,
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Exit 75, not a wait for the lock (which would end with the first run's 0).
    ws.dap()
        .args(&args)
        .status(75)
        .stderr_has(&[
            &format!("another run of this job is in progress (pid {pid} since 20"),
            "tables.lock",
        ])
        .run();

    // kill -9: no cleanup runs, yet the lock goes with the process.
    assert!(first.kill(), "the first run still held the lock");
    assert!(
        lock.exists(),
        "the lock file stays; the lock on it does not"
    );
    ws.dap().args(&args).status(0).run();
}

/// A link in place of the lock or state file is refused (exit 5) and its target is left alone
/// (the lock file once followed a link and truncated its target).
#[cfg(unix)]
#[test]
fn a_symlinked_lock_or_state_file_is_refused_and_its_target_untouched() {
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
        ws.dap()
            .args(&[job.to_str().unwrap(), "--output-dir", "out"])
            .status(5)
            .stderr_has(&["symbolic link"])
            .run();
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me\n");
        std::fs::remove_file(&at).unwrap();
    }
    assert_eq!(ws.counters().requests, 0);
    ws.dap()
        .args(&[job.to_str().unwrap(), "--output-dir", "out"])
        .status(0)
        .run();
}
