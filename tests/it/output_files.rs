//! The files a run writes: a later run never overwrites an earlier one's, a run removes only
//! its own job's temporary files, and outputs follow the umask while the state and the token
//! cache stay private.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::*;
use crate::signals::{send_signal, slow_job, temp_files, trickle_store, wait_for};

#[test]
fn a_later_run_never_overwrites_an_earlier_runs_files() {
    let ws = Workspace::default_sandbox();
    let job = ws.example("nightly.toml");
    let out = ws.path().join("out");
    run_job(&ws, &job, &[]).status(0).run();
    let snapshot = |out: &Path| -> Vec<(String, Vec<u8>)> {
        files_under(out)
            .into_iter()
            .map(|f| {
                let bytes = std::fs::read(out.join(&f)).unwrap();
                (f, bytes)
            })
            .collect()
    };
    let first = snapshot(&out);
    assert_eq!(first.len(), 10, "{first:?}");
    let state1 = read_json(&ws.path().join("nightly.state.json"));

    run_job(&ws, &job, &[]).status(0).run();
    let state2 = read_json(&ws.path().join("nightly.state.json"));
    let second = snapshot(&out);
    assert_eq!(second.len(), 20, "the second run adds its own files");
    for (f, bytes) in &first {
        let now = second.iter().find(|(g, _)| g == f);
        assert_eq!(
            now.map(|(_, b)| b),
            Some(bytes),
            "{f} kept as the first run wrote it"
        );
    }
    // The layout: <table>/<until of the gateway job, basic format>_<job id>/part-NNNNN.jsonl.gz.
    for t in TABLES {
        let runs = table_runs(&out, t);
        let stamp = |s: &serde_json::Value| {
            s["state"]["until"][t]
                .as_str()
                .unwrap()
                .replace(['-', ':'], "")
        };
        let folders: Vec<&str> = runs
            .iter()
            .map(|(d, _)| d.split_once('_').map_or(d.as_str(), |(until, _)| until))
            .collect();
        let mut expected = vec![stamp(&state1), stamp(&state2)];
        expected.sort();
        assert_eq!(folders, expected, "{t}");
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Saved files, downloads and reports follow the umask; the state file and the token cache
/// stay 0600 whatever the umask.
#[cfg(unix)]
#[test]
fn outputs_follow_the_umask_and_state_and_token_cache_stay_private() {
    for (umask, expected) in [("022", 0o644), ("002", 0o664), ("077", 0o600)] {
        let ws = Workspace::default_sandbox();
        let job = example_variant(
            &ws,
            "nightly.toml",
            &[(
                "[vars]",
                "[gateway]\ntoken_cache = \"token.json\"\n\n[vars]",
            )],
        );
        let script = format!("umask {umask}; exec \"$0\" \"$@\"");
        run_job(
            &ws,
            &job,
            &["--report", "json=reports/r.json", "--report", "junit=r.xml"],
        )
        .wrap(move |cmd| through("sh", &["-c", &script], cmd))
        .status(0)
        .run();
        let out = ws.path().join("out");
        let files = files_under(&out);
        assert_eq!(files.len(), 10, "{files:?}");
        for f in &files {
            assert_eq!(mode(&out.join(f)), expected, "umask {umask}: {f}");
        }
        assert_eq!(
            mode(&ws.path().join("reports/r.json")),
            expected,
            "umask {umask}: report"
        );
        assert_eq!(
            mode(&ws.path().join("r.xml")),
            expected,
            "umask {umask}: report"
        );
        assert_eq!(
            mode(&ws.path().join("nightly.state.json")),
            0o600,
            "umask {umask}: state"
        );
        assert_eq!(
            mode(&ws.path().join("token.json")),
            0o600,
            "umask {umask}: token cache"
        );
    }
}

/// `job` downloading from the trickling store into `shared/`, stopped by SIGTERM (143).
fn spawn_slow(ws: &Workspace, job: &Path) -> Running {
    ws.dap()
        .args(&[
            job.to_str().unwrap(),
            "--output-dir",
            "shared",
            "--var",
            "slow=true",
        ])
        .status(143)
        .stderr_has(&["received SIGTERM"])
        .spawn()
}

/// Two jobs sharing an output folder: a run removes only its own job's leftovers (the lock is
/// per job, so removing every `.dap-run-tmp-*` file deleted another job's download in
/// progress), and a user's file named like a temporary file stays.
#[test]
fn a_run_removes_only_its_own_jobs_temporary_files() {
    let ws = Workspace::default_sandbox();
    let store = trickle_store();
    let a = slow_job(&ws, "a", &store.url);
    let b = slow_job(&ws, "b", &store.url);
    let shared = ws.path().join("shared");

    // A killed run of `b` leaves its temporary file behind.
    let killed = spawn_slow(&ws, &b);
    wait_for("b's download to start", || !temp_files(&shared).is_empty());
    assert!(killed.kill(), "b was still downloading");
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
    ws.dap()
        .args(&[b.to_str().unwrap(), "--output-dir", "shared"])
        .status(0)
        .run();
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
    running.wait(Duration::from_secs(60));
    assert_eq!(
        temp_files(&shared),
        lookalikes.map(String::from).to_vec(),
        "only the look-alikes are left"
    );
}
