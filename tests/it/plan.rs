//! `dap-run plan`: a snapshot of the plan of every example, in both formats, and
//! proof that the plan is the same bytes on any machine and shows no secret.
//!
//! New or changed snapshots: `INSTA_UPDATE=always cargo test --test it plan::`, review the
//! `tests/it/snapshots/it__plan__*.snap` diff, commit. In CI (`CI=true`) a missing or changed snapshot
//! fails.

use std::path::Path;

use crate::common::*;

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

/// `dap-run plan` through the binary, from `dir`, with `env`: exit 0, nothing on stderr.
fn plan(dir: &Path, job: &Path, format: &str, env: &[(&str, &str)]) -> Outcome {
    let mut t = Workspace::bare().dap().current_dir(dir).args(&[
        "plan",
        "--format",
        format,
        job.to_str().unwrap(),
    ]);
    for (k, v) in env {
        t = t.env(k, v);
    }
    t.status(0).stderr("").run()
}

#[test]
fn plan_of_every_example_matches_its_snapshot() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for path in example_jobs() {
        let rel = path.strip_prefix(root).unwrap();
        let name = stem(&path);
        let text = plan(root, rel, "text", &[]).stdout;
        insta::assert_snapshot!(format!("{name}_text"), text);
        let json = plan(root, rel, "json", &[]).stdout;
        serde_json::from_str::<serde_json::Value>(&json).expect("--format json is JSON");
        insta::assert_snapshot!(format!("{name}_json"), json);
    }
}

#[test]
fn every_example_has_committed_snapshots() {
    let snaps = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/snapshots");
    let mut missing = Vec::new();
    for path in example_jobs() {
        for format in ["text", "json"] {
            let snap = snaps.join(format!("it__plan__{}_{format}.snap", stem(&path)));
            if !snap.is_file() {
                missing.push(snap.display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "examples without a plan snapshot (run `INSTA_UPDATE=always cargo test --test it plan::`, review, commit):\n{}",
        missing.join("\n")
    );
}

#[test]
fn plan_is_the_same_bytes_on_two_machines() {
    let other = tempfile::tempdir().unwrap();
    let machine_a = [
        ("DAP_CLIENT_ID", "client-a"),
        ("DAP_CLIENT_SECRET", "secret-aaaa"),
        ("DAP_API_URL", "https://a.example.com"),
        ("TZ", "UTC"),
    ];
    let machine_b = [
        ("DAP_CLIENT_ID", "client-b"),
        ("DAP_CLIENT_SECRET", "secret-bbbb"),
        ("DAP_API_URL", "http://127.0.0.1:9"),
        ("TZ", "Pacific/Auckland"),
        ("CANVAS_API_TOKEN", "canvas-bbbb"),
        ("LANG", "de_DE.UTF-8"),
    ];
    for path in example_jobs() {
        for format in ["text", "json"] {
            // Machine A: from the examples folder, relative path, HOME there.
            let a = plan(
                &examples_dir(),
                Path::new(path.file_name().unwrap()),
                format,
                &machine_a,
            );
            // Machine B: another folder, absolute path, another HOME and environment.
            let mut b_env = machine_b.to_vec();
            let home = other.path().to_str().unwrap();
            b_env.push(("HOME", home));
            let b = plan(other.path(), &path, format, &b_env);
            assert_eq!(
                a.stdout,
                b.stdout,
                "{} --format {format} differs",
                path.display()
            );
            for (_, value) in machine_a.iter().chain(&machine_b) {
                if value.contains('-') {
                    assert!(
                        !a.stdout.contains(value),
                        "environment value `{value}` in the plan"
                    );
                }
            }
            assert!(!a.stdout.contains(home), "a local path in the plan");
            assert!(
                !a.stdout.contains(examples_dir().to_str().unwrap()),
                "a local path in the plan"
            );
        }
    }
}

const SECRETS_JOB: &str = r#"
name = "secrets"
description = """
Two lines of description,
indented under their key."""

[gateway]
client_id = "literal-client"
client_secret = "{{ env.MY_SECRET }}"

[defaults]
headers = { "X-Api-Key" = "key-literal-123", "X-Trace" = "{{ env.TRACE_ID }}" }

[vars]
namespace = "canvas"

[[step]]
id = "one"
get = "/dap/query/{{ namespace }}/table"
headers = { Cookie = "session=cookie-literal-456" }
query = { q = "{{ env.HOME }}" }
json = { n = 5, s = "5", list = "{{ namespace }}" }
"#;

#[test]
fn plan_shows_secrets_as_stars_and_env_as_names() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("secrets.toml");
    std::fs::write(&job, SECRETS_JOB).unwrap();
    let env = [
        ("TRACE_ID", "trace-value-789"),
        ("MY_SECRET", "hunter2-literal-secret"),
        ("DAP_CLIENT_SECRET", "env-secret-000"),
    ];
    let text = plan(dir.path(), &job, "text", &env).stdout;
    let json = plan(dir.path(), &job, "json", &env).stdout;
    for out in [&text, &json] {
        for secret in [
            "hunter2-literal-secret",
            "key-literal-123",
            "cookie-literal-456",
            "trace-value-789",
            "env-secret-000",
        ] {
            assert!(!out.contains(secret), "`{secret}` in the plan:\n{out}");
        }
        assert!(
            out.contains("{{ env.TRACE_ID }}"),
            "env shown by name:\n{out}"
        );
        assert!(out.contains("{{ env.HOME }}"), "env shown by name:\n{out}");
    }
    insta::assert_snapshot!("secrets_text", text);
}

#[test]
fn plan_applies_var_overrides() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Workspace::bare()
        .dap()
        .current_dir(root)
        .args(&[
            "plan",
            "examples/tables.toml",
            "--var",
            "namespace=catalog",
            "--var",
            r#"required=["x"]"#,
        ])
        .status(0)
        .stdout_has(&["namespace: \"catalog\"", "required: [\"x\"]"])
        .run();
}

/// The library example of docs/ci.md: `job::load` + `plan::render` give what `dap-run plan` prints.
#[test]
fn library_plan_is_the_cli_plan() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for path in example_jobs() {
        let job = dap_run::job::load(&path, &Default::default()).expect("example loads");
        for (format, name) in [
            (dap_run::plan::PlanFormat::Text, "text"),
            (dap_run::plan::PlanFormat::Json, "json"),
        ] {
            let cli = plan(root, &path, name, &[]).stdout;
            assert_eq!(
                dap_run::plan::render(&job, format),
                cli,
                "{}",
                path.display()
            );
        }
    }
}
