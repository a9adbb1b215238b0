//! The token cache between runs: trusted only when no one else could have written it, and
//! written where a relative path says, whatever the job's path.

use std::path::Path;

use crate::common::*;

const JOB: &str = r#"name = "tables"
[gateway]
token_cache = "cache/token.json"

[[step]]
id = "tables"
get = "/dap/query/canvas/table"
"#;

fn edit_token(path: &Path, token: &str) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["access_token"] = token.into();
    std::fs::write(path, v.to_string()).unwrap();
}

fn cached_token(path: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

/// A cache file that others can write, in a folder that others can write, or owned by another
/// user could hold a planted token. Like ssh, such a cache is ignored with a warning: a fresh
/// login, and the planted token never leaves.
#[cfg(unix)]
#[test]
fn a_token_cache_others_could_write_is_ignored() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let ws = Workspace::default_sandbox();
    ws.job("job.toml", JOB);
    ws.dap().args(&["job.toml"]).status(0).run();
    let cache = ws.path().join("cache/token.json");
    let folder = ws.path().join("cache");
    let chmod = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let planted = "eyJplanted.token.value";
    let mut logins = 1;

    // A file others can write, holding a planted token.
    edit_token(&cache, planted);
    chmod(&cache, 0o666);
    ws.dap()
        .args(&["job.toml"])
        .status(0)
        .stderr_has(&["ignoring the token cache", "others can write"])
        .run();
    logins += 1;
    let c = ws.counters();
    assert_eq!((c.logins, c.unauthorized), (logins, 0), "{c:?}");
    // Replaced by a private file with the run's own token, which the next run uses.
    assert_eq!(std::fs::metadata(&cache).unwrap().mode() & 0o777, 0o600);
    assert_ne!(cached_token(&cache), planted);
    ws.dap().args(&["job.toml"]).status(0).run();
    assert_eq!(ws.counters().logins, logins);

    // A folder others can write: they could have replaced the file.
    chmod(&folder, 0o777);
    edit_token(&cache, planted);
    chmod(&cache, 0o600);
    ws.dap()
        .args(&["job.toml"])
        .status(0)
        .stderr_has(&["ignoring the token cache", "others can write"])
        .run();
    logins += 1;
    let c = ws.counters();
    assert_eq!((c.logins, c.unauthorized), (logins, 0), "{c:?}");
    chmod(&folder, 0o700);

    // A file another user owns (only root can give a file away).
    if std::fs::metadata(ws.path()).unwrap().uid() == 0 {
        edit_token(&cache, planted);
        std::os::unix::fs::chown(&cache, Some(65534), Some(65534)).unwrap();
        ws.dap()
            .args(&["job.toml"])
            .status(0)
            .stderr_has(&["ignoring the token cache", "owned by another user"])
            .run();
        logins += 1;
        let c = ws.counters();
        assert_eq!((c.logins, c.unauthorized), (logins, 0), "{c:?}");
    }
}

/// `dap-run job.toml` (no folder in the path) writes a relative `token_cache` beside the job,
/// as `./job.toml` does (it once failed with "No such file or directory").
#[test]
fn a_relative_token_cache_is_written_when_the_job_path_has_no_folder() {
    let ws = Workspace::default_sandbox();
    ws.job(
        "job.toml",
        r#"
[gateway]
token_cache = "tok.json"

[[step]]
id = "list"
get = "/dap/query/canvas/table"
"#,
    );
    let run = ws
        .dap()
        .args(&["job.toml", "--output-dir", "out"])
        .status(0)
        .stderr_lacks(&["token cache"])
        .run();
    assert!(ws.path().join("tok.json").is_file(), "{}", run.stderr);
    // The next run reuses the cached token: no second login.
    ws.dap()
        .args(&["job.toml", "--output-dir", "out"])
        .status(0)
        .run();
    assert_eq!(ws.counters().logins, 1);
}
