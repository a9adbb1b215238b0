//! Files are complete or absent: a run killed with SIGKILL at any moment leaves every file at a
//! final path whole and the state file whole JSON, and the next run removes the temporary
//! files it left. Slow, so `#[ignore]`d in a plain `cargo test`; `.ci/run` runs it.

use std::path::Path;
use std::time::Instant;

use crate::common::*;

// ---------------------------------------------------------------------------------------------
// Kill -9 at random moments.

/// Decodes a whole gzip file (checking its CRC and length); panics if it is cut short. Cheaper
/// than [`gzip_jsonl_lines`] on large files: it does not parse the JSON.
fn gzip_whole(path: &Path) -> u64 {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut r = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f));
    std::io::copy(&mut r, &mut std::io::sink())
        .unwrap_or_else(|e| panic!("{} is not whole gzip: {e}", path.display()))
}

/// Size and time of every final file, to check only what changed.
fn final_files(out: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
    files_under(out)
        .into_iter()
        .filter(|f| !f.contains(".dap-run-tmp-"))
        .map(|f| {
            let m = std::fs::metadata(out.join(&f)).unwrap();
            (f, m.len(), m.modified().unwrap())
        })
        .collect()
}

/// Kills `examples/nightly.toml` with SIGKILL at random moments; after each kill every file at
/// a final path is complete, the state file parses, and the next run succeeds and removes the
/// temporary files left behind. Run by `.ci/run` (`--ignored`): it takes under a minute.
#[test]
#[ignore = "slow: run by .ci/run with --ignored"]
fn kill_nine_at_random_moments_never_leaves_a_partial_file() {
    let ws = Workspace::new(SandboxConfig {
        large_object_bytes: 10 * 1024 * 1024,
        objects_per_job: 2,
        ..Default::default()
    });
    let job = ws.example("nightly.toml");
    let out = ws.path().join("out");
    let args = [job.to_str().unwrap(), "--output-dir", "out", "-q"];
    let started = Instant::now();
    ws.dap().args(&args).status(0).run();
    let full = started.elapsed();
    let mut checked: Vec<(String, u64, std::time::SystemTime)> = Vec::new();
    let check_files = |checked: &mut Vec<_>| {
        let now = final_files(&out);
        for entry in &now {
            if entry.0.ends_with(".gz") && !checked.contains(entry) {
                assert!(gzip_whole(&out.join(&entry.0)) > 0, "{}", entry.0);
            }
        }
        *checked = now;
        let state = std::fs::read_to_string(ws.path().join("nightly.state.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&state).expect("state file is whole JSON");
    };
    check_files(&mut checked);
    let before = checked.len();
    let mut rng = fastrand::Rng::with_seed(kill_seed());
    let mut temps_seen = 0;
    for trial in 0..20 {
        let run = ws.dap().args(&args).spawn();
        // A moment anywhere in a run's time, and a little after.
        std::thread::sleep(full.mul_f64(rng.f64() * 1.1));
        run.kill();
        check_files(&mut checked);
        assert!(
            checked.len() >= before,
            "trial {trial}: files from the previous run are gone"
        );
        temps_seen += files_under(&out)
            .iter()
            .filter(|f| f.contains(".dap-run-tmp-"))
            .count();
        if trial % 5 == 4 {
            ws.dap().args(&args).status(0).run();
            let left: Vec<_> = files_under(&out)
                .into_iter()
                .filter(|f| f.contains(".dap-run-tmp-"))
                .collect();
            assert!(left.is_empty(), "trial {trial}: the next run left {left:?}");
            check_files(&mut checked);
        }
    }
    ws.dap().args(&args).status(0).run();
    assert_eq!(
        files_under(&out)
            .iter()
            .filter(|f| f.contains(".dap-run-tmp-"))
            .count(),
        0
    );
    eprintln!("kill test: a full run took {full:?}; temp files seen after kills: {temps_seen}");
    // Downloads are most of a run: kills that never caught one prove nothing.
    assert!(temps_seen > 0, "no kill left a temporary file behind");
}
