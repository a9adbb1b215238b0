//! The command line: `--dry-run`, shell completions (and what bash completes), the man page,
//! logging flags before the subcommand.

use std::path::Path;

use crate::common::*;

#[test]
fn dry_run_prints_requests_and_sends_nothing() {
    let t = Test::new()
        .example("nightly.toml")
        .args(&["--dry-run"])
        .status(0)
        .run();
    t.left_clean(false);
    let c = t.ws.counters();
    assert_eq!((c.requests, c.logins), (0, 0), "a dry run sends nothing");
    let lines: Vec<&str> = t.stdout.lines().collect();
    assert!(
        lines[0].starts_with("# dry run of `nightly` against http://127.0.0.1:"),
        "{}",
        t.stdout
    );
    let posts: Vec<&&str> = lines.iter().filter(|l| l.starts_with("POST ")).collect();
    assert_eq!(posts.len(), 5, "{}", t.stdout);
    assert!(
        posts[0].ends_with("/dap/query/canvas/table/accounts/data {\"format\":\"jsonl\"}"),
        "{}",
        t.stdout
    );
    assert_eq!(
        lines.last().unwrap(),
        &"# step `wait` loops over the results of an earlier step: stopping here"
    );
    assert!(!t.out().exists(), "no files");
}

#[test]
fn completions_and_man_page_are_generated() {
    let ws = Workspace::bare();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let r = ws.dap().args(&["completions", shell]).status(0).run();
        assert!(r.stdout.contains("dap-run"), "{shell}");
        assert!(r.stdout.contains("report"), "{shell}: flags are completed");
    }
    let r = ws.dap().args(&["man"]).status(0).run();
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH dap-run"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("dry"), "{}", r.stdout);
    ws.dap()
        .args(&["completions", "tcsh"])
        .status(2)
        .stderr_has(&["'tcsh'"])
        .run();
}

/// Regression: `dap-run -q run job.toml` and `dap-run -vv check ...` were rejected by clap
/// because the logging flags counted as run options conflicting with the subcommand.
#[test]
fn logging_flags_work_before_the_subcommand() {
    let ws = Workspace::bare();
    ws.example("tables.toml");
    for args in [
        &["-vv", "check", "tables.toml"][..],
        &["-q", "check", "tables.toml"],
        &["check", "-q", "tables.toml"],
    ] {
        ws.dap().args(args).status(0).run();
    }
    ws.dap()
        .args(&["-q", "run", "tables.toml", "--dry-run"])
        .status(0)
        .stdout_has(&["GET https://api-gateway.instructure.com/dap/query/canvas/table"])
        .run();
    // Run options before another subcommand are an error, not silently ignored.
    ws.dap()
        .args(&["--output-dir", "o", "check", "tables.toml"])
        .status(2)
        .stderr_has(&["before the subcommand"])
        .run();
}

/// What bash completes for the words of a command line, with the script `dap-run completions
/// bash` prints loaded as a user's shell would.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let quoted = quoted.join(" ");
    let program = format!(
        r#"source '{}'
COMP_WORDS=({quoted}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}
complete -p dap-run >/dev/null || exit 3
fn=$(complete -p dap-run | sed -E 's/.*-F ([^ ]+).*/\1/')
"$fn" dap-run "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
        script.display()
    );
    let out = std::process::Command::new("bash")
        .arg("--norc")
        .arg("-c")
        .arg(program)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_subcommand_options() {
    let ws = Workspace::bare();
    let r = ws.dap().args(&["completions", "bash"]).status(0).run();
    let script = ws.path().join("dap-run.bash");
    std::fs::write(&script, &r.stdout).unwrap();
    assert_eq!(
        bash_complete(&script, &["dap-run", "run", "--re"]),
        ["--report"]
    );
    assert_eq!(
        bash_complete(&script, &["dap-run", "check", "--v"]),
        ["--var", "--verbose"]
    );
    assert_eq!(
        bash_complete(&script, &["dap-run", "plan", "--fo"]),
        ["--format"]
    );
    assert_eq!(
        bash_complete(&script, &["dap-run", "plan", "--format", ""]),
        ["text", "json"]
    );
    assert_eq!(bash_complete(&script, &["dap-run", "--dry"]), ["--dry-run"]);
    assert_eq!(bash_complete(&script, &["dap-run", "pl"]), ["plan"]);
}
