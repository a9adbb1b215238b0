//! The errors that end a command before anything is sent (the command line, reading job files,
//! resolving the gateway, the credentials and the replica): their exact text and exit code,
//! through the binary, as one transcript snapshot, which pins their wording.

use std::path::Path;

use crate::common::*;

/// One command: the environment it adds to a bare one, and its arguments.
struct Case {
    env: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
}

const fn case(env: &'static [(&'static str, &'static str)], args: &'static [&'static str]) -> Case {
    Case { env, args }
}

const CREDENTIALS: &[(&str, &str)] = &[("DAP_CLIENT_ID", "id"), ("DAP_CLIENT_SECRET", "secret")];

const CASES: &[Case] = &[
    // The command line.
    case(&[], &["run"]),
    case(
        &[],
        &["run", "nightly.toml", "tables.toml", "--output-dir", "x"],
    ),
    case(&[], &["run", "nightly.toml", "--var", "nothing"]),
    case(&[], &["run", "nightly.toml", "--var", "1a=2"]),
    case(&[], &["man", "nope"]),
    case(&[], &["replica", "nightly.toml"]),
    case(&[], &["sandbox", "--schema-change", "users@3s"]),
    case(&[], &["sandbox", "--schema-change", "canvas.users"]),
    // Job files.
    case(&[], &["run", "missing.toml"]),
    case(&[], &["run", "missing.toml", "other.toml"]),
    case(&[], &["run", "latin1.toml"]),
    case(&[], &["run", "big.toml"]),
    case(&[], &["run", "dap-run.toml"]),
    case(&[], &["run", "nightly.toml", "b/nightly.toml"]),
    case(&[], &["run", "s1/job.toml", "s2/job.toml"]),
    // The gateway, the credentials, the replica.
    case(&[], &["run", "nightly.toml"]),
    case(&[("DAP_CLIENT_ID", " ")], &["run", "nightly.toml"]),
    case(
        &[("DAP_CLIENT_ID", "id"), ("DAP_CLIENT_SECRET", "")],
        &["run", "nightly.toml"],
    ),
    case(
        CREDENTIALS,
        &["run", "nightly.toml", "--gateway-url", "http://10.0.0.1"],
    ),
    case(
        CREDENTIALS,
        &["run", "nightly.toml", "--gateway-url", "ftp://10.0.0.1"],
    ),
    case(
        CREDENTIALS,
        &["run", "nightly.toml", "--gateway-url", "not a url"],
    ),
    case(CREDENTIALS, &["run", "unset_url.toml"]),
    case(
        &[("CANVAS_URL", "not a url"), ("CANVAS_API_TOKEN", "t")],
        &["run", "canvas.toml", "--gateway-url", "https://127.0.0.1:9"],
    ),
    case(
        CREDENTIALS,
        &[
            "run",
            "database.toml",
            "--gateway-url",
            "https://127.0.0.1:9",
        ],
    ),
    case(
        CREDENTIALS,
        &[
            "run",
            "replicate.toml",
            "--gateway-url",
            "https://127.0.0.1:9",
            "--database",
            "sqlite:",
        ],
    ),
];

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn example(name: &str) -> String {
    std::fs::read_to_string(examples_dir().join(name)).unwrap()
}

/// A workspace without a gateway, with the files the cases name.
fn workspace() -> Workspace {
    let ws = Workspace::bare();
    let dir = ws.path();
    let nightly = example("nightly.toml");
    for name in ["nightly.toml", "tables.toml", "replicate.toml"] {
        write(dir, name, example(name).as_bytes());
    }
    write(dir, "b/nightly.toml", nightly.as_bytes());
    write(dir, "latin1.toml", b"name = \"caf\xe9\"\n");
    write(dir, "big.toml", &vec![b'#'; 4 * 1024 * 1024 + 1]);
    write(dir, "dap-run.toml", b"[gateway]\n");
    // Two jobs of different names whose state would be one file.
    let state_dir = dir.join("state");
    for (sub, name) in [("s1", "one"), ("s2", "two")] {
        let text = nightly.replacen("name = \"nightly\"", &format!("name = \"{name}\""), 1);
        let text = format!("state_dir = {:?}\n{text}", state_dir.display().to_string());
        write(dir, &format!("{sub}/job.toml"), text.as_bytes());
    }
    let step = "[[step]]\nid = \"a\"\nget = \"/dap/query/canvas/table\"\n";
    write(
        dir,
        "unset_url.toml",
        format!("[gateway]\nurl = \"{{{{ env.NOT_SET_ANYWHERE }}}}\"\n{step}").as_bytes(),
    );
    write(
        dir,
        "canvas.toml",
        format!(
            "[gateway]\nauth = \"inst_access\"\ncanvas_url = \"{{{{ env.CANVAS_URL }}}}\"\n{step}"
        )
        .as_bytes(),
    );
    let replicate = example("replicate.toml");
    let with_url = replicate.replacen(
        "# url = \"postgresql://dap:{{ env.DAP_DB_PASSWORD }}",
        "url = \"postgresql://dap:{{ env.DAP_DB_PASSWORD }}",
        1,
    );
    assert_ne!(with_url, replicate, "the example's commented database URL");
    write(dir, "database.toml", with_url.as_bytes());
    ws
}

/// Every error that ends a command before a run, with its exit code, as users read them.
#[test]
fn errors_before_a_run_read_as_before() {
    let ws = workspace();
    let mut transcript = String::new();
    for c in CASES {
        let mut t = ws.dap().args(c.args);
        for (k, v) in c.env {
            t = t.env(k, v);
        }
        // Every one is a usage error; the transcript pins its text.
        let run = t.status(2).stderr_has(&["error"]).run();
        let env: String = c.env.iter().map(|(k, v)| format!("{k}={v:?} ")).collect();
        transcript.push_str(&format!(
            "$ {env}dap-run {}\nexit {}\n{}\n",
            c.args.join(" "),
            run.code,
            run.stderr
        ));
    }
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.add_filter(&regex_escape(&ws.path().display().to_string()), "[ws]");
    // Not a terminal: each line of the error carries the time and level, as in a cron log.
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[time]");
    settings.bind(|| insta::assert_snapshot!("it__usage__errors_before_a_run", transcript));
}

/// `dap-run chek job.toml`: no file `chek`, so the word was meant as a subcommand; nothing is
/// read or sent, exit 2, and the closest subcommand is named.
#[test]
fn a_mistyped_subcommand_is_named_with_the_one_meant() {
    for (typo, name) in [("chek", "check"), ("paln", "plan")] {
        let t = Test::new()
            .example("tables.toml")
            .command(&[typo, "{job}"])
            .status(2)
            .stderr_snapshot(&format!("mistyped_subcommand_{name}"))
            .run();
        assert_eq!(t.ws.counters().requests, 0);
    }
    // A file of that name is a job file, whatever its name.
    Test::new()
        .file(
            "chek",
            "[[step]]\nid = \"a\"\nget = \"/dap/query/canvas/table\"\n",
        )
        .command(&["chek", "--output-dir", "out"])
        .status(0)
        .run();
}

/// A `--var` of another type than its declaration in `[vars]` fails `check`, `plan` and `run`
/// alike, with exit 2, nothing sent, and the JSON to write; `[users]` does not silently become
/// the string `"[users]"`.
#[test]
fn a_var_of_another_type_than_declared_fails_with_the_json_to_write() {
    for (command, name) in [
        (&["check", "{job}"][..], "check"),
        (&["plan", "{job}"], "plan"),
        (&["run", "{job}", "--output-dir", "out"], "run"),
    ] {
        for (arg, case) in [("tables=users", "word"), ("tables=[users]", "bare_list")] {
            let t = Test::new()
                .example("replicate.toml")
                .command(command)
                .args(&["--var", arg])
                .status(2)
                .stderr_snapshot(&format!("var_of_another_type_{name}_{case}"))
                .run();
            assert_eq!(t.ws.counters().requests, 0);
            assert_eq!(t.ws.counters().logins, 0);
        }
    }
    // The declared type given as JSON: accepted.
    Test::new()
        .example("replicate.toml")
        .command(&["check", "{job}"])
        .args(&["--var", r#"tables=["users"]"#, "--var", "namespace=canvas"])
        .status(0)
        .run();
}
