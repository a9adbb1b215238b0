//! Secrets: the client secret (also as the base64 of `id:secret` in a Basic header) and tokens
//! appear in no output of any example, and in none of a run against a gateway that echoes them.

use crate::common::*;
use crate::hostile_gateway::{assert_no_secrets, hostile, run_hostile};

#[test]
fn secrets_and_tokens_appear_in_no_output_of_any_example() {
    let secret = "cs-KNOWN-sandbox-client-secret-9b2c";
    let ws = Workspace::new(SandboxConfig {
        client_id: "client-KNOWN-id".into(),
        client_secret: secret.into(),
        ..Default::default()
    });
    let basic = "Y2xpZW50LUtOT1dOLWlk"; // base64 of the client id's start: part of the Basic header
    for example in ["tables.toml", "schemas.toml", "nightly.toml"] {
        let job = ws.example(example);
        let stem = example.trim_end_matches(".toml");
        let run = ws
            .dap()
            .args(&[job.to_str().unwrap(), "--output-dir", "out", "-vv"])
            .args(&[
                "--report",
                &format!("json={stem}.report.json"),
                "--report",
                &format!("junit={stem}.report.xml"),
            ])
            .status(0)
            .run();
        assert_no_secrets(ws.path(), &run, &[secret, basic]);
        let plan = ws
            .dap()
            .args(&["plan", job.to_str().unwrap(), "-vv"])
            .status(0)
            .run();
        assert_no_secrets(ws.path(), &plan, &[secret, basic]);
    }
    assert!(ws.path().join("nightly.state.json").exists());
    let c = ws.counters();
    assert!(c.object_downloads > 0);
    assert_eq!(
        c.object_auth_rejected, 0,
        "Authorization reached the object store"
    );
}

#[test]
fn a_401_after_a_fresh_login_is_exit_3_and_prints_no_token() {
    let h = hostile::start();
    let _ = run_hostile(
        &h,
        "[[step]]\nid = \"get\"\nget = \"/unauthorized\"\n",
        &[],
        3,
        &["step `get`"],
    );
}

#[test]
fn a_500_that_echoes_the_authorization_header_prints_no_token() {
    let h = hostile::start();
    for route in ["/echo500", "/echo500json"] {
        let _ = run_hostile(
            &h,
            &format!("[[step]]\nid = \"get\"\nget = \"{route}\"\n"),
            &[],
            4,
            &["500"],
        );
    }
}

#[test]
fn a_200_that_echoes_the_token_is_not_saved_or_reported() {
    let h = hostile::start();
    let steps = "[[step]]\nid = \"get\"\nget = \"/echo200\"\noutputs = { echo = \"$.echo\", token = \"$.token\" }\nsave = [\"body.json\", { to = \"echo.json\", output = \"echo\" }]\ncheck = { that = \"token == 'x'\", message = \"got {{ token }}\" }\n";
    let _ = run_hostile(&h, steps, &[], 1, &[]);
}

#[test]
fn a_streamed_save_of_an_echoed_token_is_scrubbed() {
    // A step that only saves its body streams it to disk; the echoed token is still scrubbed.
    let h = hostile::start();
    let steps = "[[step]]\nid = \"get\"\nget = \"/echo200\"\nsave = \"body.json\"\n";
    let (d, _) = run_hostile(&h, steps, &[], 0, &[]);
    let body = std::fs::read_to_string(d.path().join("out/body.json")).unwrap();
    assert!(body.contains("***"), "{body}");
}
