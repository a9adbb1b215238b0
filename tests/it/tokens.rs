//! The token lifecycle through the binary against the in-process sandbox: one lazy,
//! single-flight token source per run, renewal of short-lived tokens, 401 → renew → replay once,
//! rejected logins, InstAccess, the token cache, the origin and plain-http rules, and no secret
//! or token in any output.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::*;

/// Credentials distinct from each other, so the redactor cannot hide a leak of one behind the
/// other (with the default sandbox, client id and secret are both `sandbox`).
const CLIENT_ID: &str = "tokens-client-id";
const CLIENT_SECRET: &str = "Tokens-S3cret-Canary-7f3a9b";
const CANVAS_TOKEN: &str = "tokens-canvas-token-5c1e2d";

/// The first bytes of every JWT the sandbox issues (`{"alg":...`), and of its InstAccess tokens.
const TOKEN_PREFIX: &str = "eyJhbGci";

fn config() -> SandboxConfig {
    SandboxConfig {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        canvas_token: CANVAS_TOKEN.into(),
        ..Default::default()
    }
}

/// The binary in `ws` (a sandbox of [`config`]: the distinctive credentials) with `extra`
/// environment variables.
fn run_with(ws: &Workspace, args: &[&str], extra: &[(&str, &str)]) -> Test {
    let mut t = ws.dap().args(args);
    for (k, v) in extra {
        t = t.env(k, v);
    }
    t
}

fn run(ws: &Workspace, args: &[&str]) -> Test {
    run_with(ws, args, &[])
}

/// A scenario with the distinctive credentials and Canvas token.
fn test() -> Test {
    Test::new().sandbox(config())
}

/// A job with one step looping over `n` schema requests (a route the client paces at 500/min).
fn schema_loop(n: usize, concurrency: usize, gateway: &str) -> String {
    let tables = ["accounts", "courses", "enrollments", "users", "submissions"];
    let list: Vec<String> = (0..n)
        .map(|i| format!("\"{}\"", tables[i % tables.len()]))
        .collect();
    format!(
        r#"name = "schemas"
{gateway}
[vars]
tables = [{}]

[[step]]
id = "schemas"
for_each = "tables"
as = "table"
concurrency = {concurrency}
get = "/dap/query/canvas/table/{{{{ table }}}}/schema"
outputs = {{ version = "$.version" }}
"#,
        list.join(", ")
    )
}

const TABLES_JOB: &str = r#"name = "tables"
[[step]]
id = "tables"
get = "/dap/query/canvas/table"
outputs = { tables = "$.tables" }
save = { to = "tables.json", output = "tables" }
"#;

fn route(ws: &Workspace, key: &str) -> u64 {
    ws.counters().routes.get(key).copied().unwrap_or(0)
}

const SCHEMA_ROUTE: &str = "GET /dap/query/{namespace}/table/{table}/schema";

/// Asserts that neither the secrets nor any token appear in `text`.
#[track_caller]
fn assert_clean(what: &str, text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    for needle in [CLIENT_SECRET, TEST_SECRET, CANVAS_TOKEN, TOKEN_PREFIX] {
        assert!(
            !text.contains(needle),
            "{what} contains `{needle}`:\n{text}"
        );
    }
}

/// The builder's check (the secret, its Basic form, the Canvas token, any token) and
/// [`assert_nothing_leaks`] (downloads decompressed too).
#[track_caller]
fn leaks_nothing(t: &Outcome) {
    t.no_secret();
    assert_nothing_leaks(&t.ws, t);
}

/// Asserts that the run's output and every file under the workspace (reports, state, saved
/// files, downloads decompressed) are free of secrets and tokens.
#[track_caller]
fn assert_nothing_leaks(ws: &Workspace, r: &Outcome) {
    assert_clean("stdout", r.stdout.as_bytes());
    assert_clean("stderr", r.stderr.as_bytes());
    for rel in files_under(ws.path()) {
        let bytes = std::fs::read(ws.path().join(&rel)).unwrap();
        let bytes = if rel.ends_with(".gz") {
            use std::io::Read as _;
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut out)
                .unwrap();
            out
        } else {
            bytes
        };
        assert_clean(&rel, &bytes);
    }
}

#[test]
fn short_lived_tokens_are_renewed_without_a_login_storm() {
    let ttl = Duration::from_secs(1);
    let ws = Workspace::new(SandboxConfig {
        token_ttl: ttl,
        latency: Duration::from_millis(250),
        ..config()
    });
    let job = ws.job("long.toml", &schema_loop(240, 16, ""));
    let started = Instant::now();
    let r = run(&ws, &[job.to_str().unwrap()])
        .status(0)
        .stderr_has(&["logins"])
        .run();
    let elapsed = started.elapsed();
    let c = ws.counters();
    assert_eq!(route(&ws, SCHEMA_ROUTE) - c.unauthorized, 240, "{c:?}");
    let bound = (elapsed.as_secs_f64() / ttl.as_secs_f64()).floor() as u64 + 2;
    assert!(
        elapsed >= 3 * ttl,
        "the run must outlive several tokens: {elapsed:?}"
    );
    assert!(
        c.logins >= 2 && c.logins <= bound,
        "{} logins in {elapsed:?} with {ttl:?} tokens (bound {bound}); {} 401s",
        c.logins,
        c.unauthorized
    );
    assert_eq!(c.login_failures, 0);
    assert!(
        r.stderr.contains(&format!("{} logins", c.logins)),
        "{}",
        r.stderr
    );
    eprintln!(
        "measured: {} logins, {} 401 replays, {elapsed:?}, ttl {ttl:?}",
        c.logins, c.unauthorized
    );
}

#[test]
fn an_early_revocation_costs_one_login_and_one_replay() {
    let t = test()
        .faults(Faults {
            revoke_after: Some(3),
            ..Default::default()
        })
        .job("revoke.toml", &schema_loop(6, 1, ""))
        .command(&["{job}"])
        .status(0)
        .run();
    let c = t.ws.counters();
    assert_eq!(c.logins, 2, "{c:?}");
    assert_eq!(c.unauthorized, 1, "{c:?}");
    assert_eq!(route(&t.ws, SCHEMA_ROUTE), 7, "6 requests and one replay");
}

#[test]
fn concurrent_items_share_one_renewal_after_a_revocation() {
    let ws = Workspace::new(SandboxConfig {
        latency: Duration::from_millis(50),
        ..config()
    });
    let job = ws.job("revoke16.toml", &schema_loop(96, 16, ""));
    std::thread::scope(|s| {
        let sandbox = ws.sandbox();
        s.spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                let done = sandbox
                    .counters()
                    .routes
                    .get(SCHEMA_ROUTE)
                    .copied()
                    .unwrap_or(0);
                if done >= 32 {
                    sandbox.revoke_tokens();
                    return;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        run(&ws, &[job.to_str().unwrap()]).status(0).run()
    });
    let c = ws.counters();
    assert_eq!(c.logins, 2, "single-flight renewal: {c:?}");
    assert!(c.unauthorized >= 1 && c.unauthorized <= 16, "{c:?}");
    assert_eq!(route(&ws, SCHEMA_ROUTE), 96 + c.unauthorized);
}

#[test]
fn a_verbose_nightly_run_leaks_no_secret_and_sends_no_token_to_the_object_store() {
    let t = test()
        .example("nightly.toml")
        .command(&[
            "run",
            "-vv",
            "{job}",
            "--output-dir",
            "out",
            "--report",
            "json=report.json",
            "--report",
            "junit=report.xml",
        ])
        // The client id is not secret and shows in the logs; only the secret is masked.
        .status(0)
        .stderr_has(&[CLIENT_ID])
        .run();
    leaks_nothing(&t);
    let c = t.ws.counters();
    assert_eq!(c.logins, 1);
    assert!(c.object_downloads > 0, "{c:?}");
    assert_eq!(
        c.object_auth_rejected, 0,
        "a token went to the object store"
    );
    assert_eq!(c.x_instauth, 0);
    assert!(t.ws.path().join("report.json").exists());
    assert!(t.state().is_some());
}

#[test]
fn a_rejected_login_is_exit_3_names_the_client_and_happens_once() {
    let t = test()
        .job("loop.toml", &schema_loop(40, 16, ""))
        .env("DAP_CLIENT_SECRET", "Wrong-S3cret-Canary-0000")
        .command(&[
            "-vv",
            "{job}",
            "--report",
            "json=report.json",
            "--report",
            "junit=report.xml",
        ])
        .status(3)
        .stderr_has(&[
        &format!(
            "client id `{CLIENT_ID}` (from environment variable DAP_CLIENT_ID), secret from environment variable DAP_CLIENT_SECRET"
        ),
        "login rejected by the gateway",
    ]).run();
    leaks_nothing(&t);
    assert!(!t.stderr.contains("Wrong-S3cret-Canary-0000"));
    let c = t.ws.counters();
    assert_eq!(c.login_failures, 1, "no login storm: {c:?}");
    assert_eq!(route(&t.ws, SCHEMA_ROUTE), 0);
    assert!(
        !t.ws
            .read("report.json")
            .contains("Wrong-S3cret-Canary-0000")
    );
    assert!(!t.ws.read("report.xml").contains("Wrong-S3cret-Canary-0000"));
}

#[test]
fn a_client_id_from_the_job_file_is_named_as_such() {
    let t = test()
        .job(
            "file.toml",
            &format!(
                "[gateway]\nclient_id = \"not-{CLIENT_ID}\"\n{}",
                TABLES_JOB.replace("name = \"tables\"\n", "")
            ),
        )
        .command(&["{job}"])
        .status(3)
        .stderr_has(&[&format!(
        "client id `not-{CLIENT_ID}` (from the job file), secret from environment variable DAP_CLIENT_SECRET"
    )]).run();
    leaks_nothing(&t);
}

#[test]
fn a_fresh_token_rejected_again_is_exit_3() {
    let ws = Workspace::new(SandboxConfig {
        latency: Duration::from_millis(40),
        ..config()
    });
    let job = ws.job("loop.toml", &schema_loop(8, 4, ""));
    let stop = AtomicBool::new(false);
    let r = std::thread::scope(|s| {
        let sandbox = ws.sandbox();
        let stop = &stop;
        // Every token dies while its request waits in the sandbox's latency.
        s.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                sandbox.revoke_tokens();
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let r = run(
            &ws,
            &["-vv", job.to_str().unwrap(), "--report", "junit=report.xml"],
        )
        .status(3)
        .stderr_has(&["the gateway rejected a fresh token (401 after logging in again)"])
        .run();
        stop.store(true, Ordering::Relaxed);
        r
    });
    let c = ws.counters();
    assert_eq!(c.logins, 2, "one login, one renewal, then give up: {c:?}");
    assert_nothing_leaks(&ws, &r);
}

fn cache_files(ws: &Workspace) -> Vec<std::path::PathBuf> {
    let dir = ws.path().join(".cache/dap-run");
    std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn read_cache(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The cache holds a token the sandbox issued.
#[track_caller]
fn assert_cache_holds_a_sandbox_token(path: &Path) {
    let v = read_cache(path);
    assert!(
        v["access_token"]
            .as_str()
            .unwrap()
            .starts_with(TOKEN_PREFIX),
        "{v}"
    );
}

fn edit_cache(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v = read_cache(path);
    edit(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn the_token_cache_is_reused_and_replaced_when_expired_tampered_or_rejected() {
    let ws = Workspace::new(config());
    let job = ws.job(
        "cached.toml",
        &TABLES_JOB.replace(
            "name = \"tables\"\n",
            "name = \"tables\"\n[gateway]\ntoken_cache = true\n",
        ),
    );
    let job = job.to_str().unwrap();
    run(&ws, &[job]).status(0).run();
    let r = run(&ws, &[job]).status(0).run();
    assert_eq!(ws.counters().logins, 1, "two runs, one login");
    assert!(r.stderr.contains(", 0 logins,"), "{}", r.stderr);

    let files = cache_files(&ws);
    assert_eq!(files.len(), 1, "{files:?}");
    let cache = &files[0];
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    assert_clean(
        "the cache file's key",
        cache.file_name().unwrap().to_string_lossy().as_bytes(),
    );

    // Expired: a new login, and the file is rewritten with a later expiry.
    edit_cache(cache, |v| v["expires_at"] = (now_secs() - 60).into());
    run(&ws, &[job]).status(0).run();
    assert_eq!(ws.counters().logins, 2);
    assert!(read_cache(cache)["expires_at"].as_u64().unwrap() > now_secs());

    // Tampered beyond reading: ignored and replaced.
    std::fs::write(cache, "{ not json").unwrap();
    run(&ws, &[job])
        .status(0)
        .stderr_has(&["ignoring an unreadable token cache; it will be replaced"])
        .run();
    assert_eq!(ws.counters().logins, 3);
    assert_cache_holds_a_sandbox_token(cache);

    // A readable, unexpired token that the gateway rejects: 401, a fresh login, a new file.
    edit_cache(cache, |v| {
        v["access_token"] = "eyJforged.token.value".into()
    });
    run(&ws, &[job]).status(0).run();
    let c = ws.counters();
    assert_eq!((c.logins, c.unauthorized), (4, 1), "{c:?}");
    assert_cache_holds_a_sandbox_token(cache);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
}

#[test]
fn a_token_cache_path_is_relative_to_the_job_file() {
    let ws = Workspace::new(config());
    std::fs::create_dir_all(ws.path().join("jobs")).unwrap();
    let job = ws.job(
        "jobs/cached.toml",
        &TABLES_JOB.replace(
            "name = \"tables\"\n",
            "name = \"tables\"\n[gateway]\ntoken_cache = \"private/token.json\"\n",
        ),
    );
    run(&ws, &[job.to_str().unwrap()]).status(0).run();
    run(&ws, &[job.to_str().unwrap()]).status(0).run();
    assert_eq!(ws.counters().logins, 1);
    assert!(ws.path().join("jobs/private/token.json").is_file());
}

fn inst_access_job(canvas_url: &str) -> String {
    TABLES_JOB.replace(
        "name = \"tables\"\n",
        &format!(
            "name = \"tables\"\n[gateway]\nauth = \"inst_access\"\ncanvas_url = \"{canvas_url}\"\n"
        ),
    )
}

/// The tables job minting InstAccess tokens at the sandbox's Canvas.
fn inst_access() -> Test {
    test().job_with("inst.toml", |ws| {
        inst_access_job(&ws.sandbox().canvas_url())
    })
}

#[test]
fn inst_access_mints_once_and_never_logs_in() {
    let t = inst_access()
        .env("CANVAS_API_TOKEN", CANVAS_TOKEN)
        .command(&["-vv", "{job}", "--report", "json=report.json"])
        .status(0)
        .stderr_has(&[", 1 login,"])
        .run();
    leaks_nothing(&t);
    let c = t.ws.counters();
    assert_eq!(
        (c.canvas_mints, c.logins, c.unauthorized),
        (1, 0, 0),
        "{c:?}"
    );
}

#[test]
fn inst_access_mints_again_after_a_revocation() {
    let t = test()
        .faults(Faults {
            revoke_after: Some(2),
            ..Default::default()
        })
        .job_with("inst.toml", |ws| {
            let canvas = ws.sandbox().canvas_url();
            schema_loop(
                5,
                1,
                &format!("[gateway]\nauth = \"inst_access\"\ncanvas_url = \"{canvas}\"\n"),
            )
        })
        .env("CANVAS_API_TOKEN", CANVAS_TOKEN)
        .command(&["{job}"])
        .status(0)
        .run();
    let c = t.ws.counters();
    assert_eq!(
        (c.canvas_mints, c.unauthorized, c.logins),
        (2, 1, 0),
        "{c:?}"
    );
}

#[test]
fn inst_access_with_a_bad_canvas_token_is_exit_3() {
    let t = inst_access()
        .env("CANVAS_API_TOKEN", "Wrong-Canvas-Token-Canary")
        .command(&["-vv", "{job}"])
        .status(3)
        .stderr_has(&[
            "Canvas refused to mint an InstAccess token (401 Unauthorized)",
            "Canvas API token from environment variable CANVAS_API_TOKEN",
        ])
        .stderr_lacks(&["Wrong-Canvas-Token-Canary"])
        .run();
    t.no_secret();
    assert_eq!(t.ws.counters().requests, 0, "nothing reached the gateway");
}

#[test]
fn plain_http_to_a_remote_canvas_is_refused() {
    let t = test()
        .job("inst.toml", &inst_access_job("http://canvas.example.com"))
        .env("CANVAS_API_TOKEN", CANVAS_TOKEN)
        .command(&["{job}"])
        .status(2)
        .stderr_has(&[
            "refusing to send credentials to the Canvas `http://canvas.example.com/` over plain http",
        ])
        .run();
    t.no_secret();
    assert_eq!(t.ws.counters().requests, 0);
}

#[test]
fn a_job_cannot_send_its_own_authorization_or_x_instauth() {
    let ws = Workspace::new(config());
    for header in ["x-instauth", "Authorization"] {
        let job = ws.job(
            "headers.toml",
            &TABLES_JOB.replace(
                "name = \"tables\"\n",
                &format!("name = \"tables\"\n[defaults]\nheaders = {{ \"{header}\" = \"{{{{ env.T }}}}\" }}\n"),
            ),
        );
        ws.dap()
            .args(&["check", job.to_str().unwrap()])
            .status(2)
            .stderr_has(&[&format!("header `{header}` is set by dap-run")])
            .run();
    }
}

/// A rejected login in a 40-item loop is one error, not one per item: items not yet started
/// when authentication fails are skipped, not failed again.
#[test]
fn a_rejected_login_in_a_loop_is_reported_once_not_per_item() {
    let ws = Workspace::default_sandbox();
    let tables: Vec<String> = (0..40).map(|i| format!("\"t{i}\"")).collect();
    let job = ws.job(
        "loop.toml",
        &format!(
            "[vars]\ntables = [{}]\n[[step]]\nid = \"schema\"\nfor_each = \"tables\"\nconcurrency = 4\nget = \"/dap/query/canvas/table/{{{{ item }}}}/schema\"\n",
            tables.join(", ")
        ),
    );
    let run = ws
        .dap()
        .env("DAP_CLIENT_SECRET", "wrong-secret-value")
        .args(&[job.to_str().unwrap(), "--report", "junit=junit.xml"])
        .status(3)
        .stderr_has(&["login rejected", "not run after the authentication failure"])
        .run();
    let copies = run.stderr.matches("login rejected").count();
    assert!(
        copies <= 5,
        "{copies} copies of the login error:\n{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("not run after the authentication failure"),
        "{}",
        run.stderr
    );
    assert_eq!(ws.counters().login_failures, 1);
    let junit = ws.read("junit.xml");
    assert!(junit.contains("<skipped"), "{junit}");
}
