//! The project file `dap-run.toml`: shared `[gateway]` settings for its jobs, and a literal
//! secret in it reported where it is.

use crate::common::*;

#[test]
fn a_project_file_shares_the_gateway_settings_of_its_jobs() {
    let ws = Workspace::default_sandbox();
    // The project names the gateway and its credentials' variables; the jobs say nothing of
    // it. Without the project the jobs would go to the default gateway.
    std::fs::write(
        ws.path().join("dap-run.toml"),
        format!(
            "[gateway]\nurl = \"{}\"\nclient_id = \"{{{{ env.PROJECT_ID }}}}\"\nclient_secret = \"{{{{ env.PROJECT_SECRET }}}}\"\ntimeout = \"20s\"\n",
            ws.sandbox().url()
        ),
    )
    .unwrap();
    let a = tables_job(&ws, "a.toml", "a", &[]);
    let b = tables_job(&ws, "b.toml", "b", &[]);
    ws.dap()
        .env_remove("DAP_API_URL")
        .env_remove("DAP_CLIENT_ID")
        .env_remove("DAP_CLIENT_SECRET")
        .env("PROJECT_ID", "sandbox")
        .env("PROJECT_SECRET", TEST_SECRET)
        .args(&["run", a.to_str().unwrap(), b.to_str().unwrap()])
        .status(0)
        .run();
    assert_eq!(ws.counters().logins, 2);
    let plan = ws
        .dap()
        .args(&["plan", a.to_str().unwrap()])
        .status(0)
        .run();
    assert!(plan.stdout.contains(&ws.sandbox().url()), "{}", plan.stdout);
    assert!(plan.stdout.contains("20s"), "{}", plan.stdout);

    // A job overrides a key: its own timeout wins, the rest is inherited.
    let text = std::fs::read_to_string(&a).unwrap();
    let over = ws.job(
        "over.toml",
        &text
            .replacen("[vars]", "[gateway]\ntimeout = \"5s\"\n\n[vars]", 1)
            .replace("name = \"a\"", "name = \"over\""),
    );
    let plan = ws
        .dap()
        .args(&["plan", over.to_str().unwrap()])
        .status(0)
        .run();
    assert!(
        plan.stdout.contains("5s") && !plan.stdout.contains("20s"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains(&ws.sandbox().url()), "{}", plan.stdout);

    // A mistake in the project file is reported in the project file, with the job's own.
    std::fs::write(
        ws.path().join("dap-run.toml"),
        "[gateway]\nurl = \"https://example.com\"\ntimeout = \"soon\"\nauth = \"client_credential\"\n",
    )
    .unwrap();
    let bad = ws.job(
        "bad.toml",
        "[[step]]\nid = \"x\"\nget = \"/dap/{{ namespce }}\"\n",
    );
    ws.dap()
        .args(&["check", bad.to_str().unwrap()])
        .status(2)
        .stderr_has(&["dap-run.toml:3:11"])
        .stderr_has(&["dap-run.toml:4:8"])
        .stderr_has(&["bad.toml:3:"])
        .stderr_has(&["error: 3 problems found"])
        .run();
    // And the project file itself is not a job.
    ws.dap()
        .args(&["check", ws.path().join("dap-run.toml").to_str().unwrap()])
        .status(2)
        .stderr_has(&["is the project file"])
        .run();
}

/// A client secret written in the project file is reported in the project file (not as
/// "written in the job file"), at its line and column,
/// once however many jobs inherit it, and the secret itself is not printed; one in a job file
/// (a Canvas token too) is reported in the job file.
#[test]
fn a_literal_secret_in_the_project_file_is_reported_there() {
    const LITERAL: &str = "literal-s3cret-0b5e";
    let project = format!("[gateway]\ntimeout = \"20s\"\nclient_secret = \"{LITERAL}\"\n");
    let job = |name: &str| format!("name = \"{name}\"\n{ONE_STEP}");
    let t = Test::new()
        .file("jobs/dap-run.toml", &project)
        .file("jobs/a.toml", &job("a"))
        .file("jobs/b.toml", &job("b"))
        .command(&["check", "jobs/a.toml", "jobs/b.toml"])
        .status(2)
        .stderr_has(&[
        "error: the client secret is written in the project file\n --> jobs/dap-run.toml:3:17\n",
        "3 | client_secret = ***\n",
        "= help: read it from the environment: `client_secret = \"{{ env.DAP_CLIENT_SECRET }}\"`",
        "error: 1 problem found; nothing was sent",
    ]).run();
    t.no_secret();
    assert!(!t.stderr.contains("job file"), "{}", t.stderr);
    assert!(!t.stderr.contains(LITERAL), "{}", t.stderr);
    // `run` refuses it before sending anything.
    let t = Test::new()
        .file("jobs/dap-run.toml", &project)
        .file("jobs/a.toml", &job("a"))
        .command(&["run", "jobs/a.toml"])
        .status(2)
        .stderr_has(&["jobs/dap-run.toml:3:17"])
        .run();
    t.no_secret();
    assert!(!t.stderr.contains(LITERAL), "{}", t.stderr);
    assert_eq!(t.ws.counters().requests, 0);
    // In a job file, the job file is named.
    Test::new()
        .job(
            "inst.toml",
            &format!(
                "[gateway]\nauth = \"inst_access\"\ncanvas_url = \"https://c.example\"\ncanvas_token = \"{LITERAL}\"\n{ONE_STEP}"
            ),
        )
        .command(&["check", "{job}"])
        .status(2)
        .stderr_has(&["error: the Canvas API token is written in the job file\n --> "])
        .stderr_has(&["inst.toml:4:16", "4 | canvas_token = ***\n"]).run()
        .no_secret();
}
