//! What the program says about itself agrees with its definitions: `--help`, the man pages and
//! the manual (docs/exit-codes.md, docs/commands.md) list the exit codes of the `ExitCode` enum (with its texts and its order), the
//! environment variables of the clap arguments (`env`) and of `cli::ENVIRONMENT`, and the man
//! page describes the whole job file. Each text is read from the binary or the file and
//! compared with the definitions in code, so a copy that drifts fails here.

use std::path::Path;

use dap_run::error::ExitCode;

use crate::common::*;

/// Every variable dap-run documents, from the definitions: those declared on flags and the
/// others.
fn variables() -> Vec<String> {
    let mut names: Vec<String> = dap_run::cli::flag_environment()
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    for v in dap_run::cli::ENVIRONMENT {
        names.extend(v.names.iter().map(|n| (*n).to_owned()));
    }
    names
}

/// Text with roff's escapes and fonts taken out and every run of whitespace one space, so
/// that wrapped or escaped text compares with the definitions.
fn plain(text: &str) -> String {
    text.replace("\\fB", "")
        .replace("\\fR", "")
        .replace("\\fI", "")
        .replace("\\-", "-")
        .replace("\\e", "\\")
        .replace("\\&", "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A man page section: from `.SH NAME` to the next `.SH`.
fn section<'a>(page: &'a str, name: &str) -> &'a str {
    let start = page
        .find(&format!(".SH {name}\n"))
        .unwrap_or_else(|| panic!("no section {name}:\n{page}"));
    let rest = &page[start + 4..];
    &rest[..rest.find("\n.SH ").unwrap_or(rest.len())]
}

/// `dap-run ARGS` with no gateway: exit 0.
fn dap_run(args: &[&str]) -> Outcome {
    Workspace::bare().dap().args(args).status(0).run()
}

/// The order of the codes from the most serious, worked out from the enum's `severity()`.
fn order_by_severity() -> Vec<Vec<i32>> {
    let mut codes = ExitCode::ALL.to_vec();
    codes.sort_by_key(|c| (std::cmp::Reverse(c.severity()), c.code()));
    let mut ranks: Vec<Vec<i32>> = Vec::new();
    for c in codes {
        match ranks.last_mut() {
            Some(rank)
                if ExitCode::ALL
                    .iter()
                    .find(|x| x.code() == rank[0])
                    .is_some_and(|x| x.severity() == c.severity()) =>
            {
                rank.push(c.code())
            }
            _ => ranks.push(vec![c.code()]),
        }
    }
    ranks
}

/// `70, 130/143, 3, ...` as the texts write it.
fn order_text() -> String {
    order_by_severity()
        .iter()
        .map(|r| {
            r.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn help_lists_every_exit_code_and_every_variable() {
    let help = plain(&dap_run(&["--help"]).stdout);
    for code in ExitCode::ALL {
        let entry = format!("{} {}", code.code(), code.summary());
        assert!(help.contains(&entry), "--help lacks `{entry}`:\n{help}");
    }
    assert!(
        help.contains(&format!("in the order {}.", order_text())),
        "{help}"
    );
    for name in variables() {
        assert!(help.contains(&name), "--help lacks {name}:\n{help}");
    }
}

#[test]
fn help_never_shows_the_value_of_a_variable() {
    let ws = Workspace::bare();
    for args in [&["--help"][..], &["run", "--help"], &["replica", "--help"]] {
        let run = ws
            .dap()
            .env("DAP_CONNECTION_STRING", "postgresql://u:pw-in-env-9c1@h/db")
            .env("DAP_API_URL", "https://gateway.example/u-9c1")
            .args(args)
            .status(0)
            .run();
        assert!(!run.stdout.contains("9c1"), "{}", run.stdout);
        assert!(
            run.stdout.contains("DAP_CONNECTION_STRING"),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn the_man_page_lists_every_exit_code_every_variable_and_the_whole_job_file() {
    let page = dap_run(&["man"]).stdout;
    let exit = plain(section(&page, "\"EXIT STATUS\"")).replace(".TP ", "");
    for code in ExitCode::ALL {
        // Code in backticks is set in bold.
        let entry = format!("{} {}", code.code(), code.meaning().replace('`', ""));
        assert!(
            exit.contains(&entry),
            "EXIT STATUS lacks `{entry}`:\n{exit}"
        );
    }
    assert!(
        exit.contains(&format!("in the order {}.", order_text())),
        "{exit}"
    );

    let env = plain(section(&page, "ENVIRONMENT"));
    for name in variables() {
        assert!(env.contains(&name), "ENVIRONMENT lacks {name}:\n{env}");
    }

    let job = section(&page, "\"JOB FILE\"");
    let job_plain = plain(job);
    // Every key of the committed JSON Schema (the job file's every table, at every depth),
    // found here by walking the file, not by the man page's own walk of the model.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/job.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut keys = std::collections::BTreeSet::new();
    schema_keys(&schema, &mut keys);
    assert!(keys.len() > 50, "{keys:?}");
    for key in &keys {
        assert!(
            job.contains(&format!(".TP\n\\fB{}\\fR\n", key.replace('-', "\\-"))),
            "JOB FILE lacks the schema's key `{key}`"
        );
    }
    for table in dap_run::man::job_file_tables() {
        assert!(
            job_plain.contains(&format!(".SS {}", table.heading.replace('`', ""))),
            "JOB FILE lacks {}",
            table.heading
        );
        for (key, _) in &table.keys {
            assert!(
                job.contains(&format!(".TP\n\\fB{}\\fR\n", key.replace('-', "\\-"))),
                "JOB FILE lacks `{key}` of {}",
                table.heading
            );
        }
    }
    // What was missing once.
    for heading in [".SS [database]", ".SS \\fBstep.load\\fR", ".SS [[step]]"] {
        assert!(job.contains(heading), "JOB FILE lacks {heading}");
    }
    // `dap-run man run` has the exit status too, the same.
    let run_page = dap_run(&["man", "run"]).stdout;
    assert_eq!(
        section(&run_page, "\"EXIT STATUS\""),
        section(&page, "\"EXIT STATUS\"")
    );
}

/// The names of every `properties` object anywhere in a JSON Schema.
fn schema_keys(node: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match node {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(properties)) = map.get("properties") {
                out.extend(properties.keys().cloned());
            }
            for v in map.values() {
                schema_keys(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| schema_keys(v, out)),
        _ => {}
    }
}

/// A page of the manual.
fn manual(page: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(page)).unwrap()
}

/// The rows of the first Markdown table after `heading`, each as its cells.
fn table_after(text: &str, marker: &str) -> Vec<Vec<String>> {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("no `{marker}` in the page"));
    text[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn the_manuals_exit_code_table_is_the_enum() {
    let text = manual("docs/exit-codes.md");
    let rows = table_after(&text, "# Exit codes");
    let want: Vec<Vec<String>> = ExitCode::ALL
        .iter()
        .map(|c| vec![c.code().to_string(), c.meaning().to_owned()])
        .collect();
    assert_eq!(rows, want);
    let prose = plain(&text);
    assert!(
        prose.contains(&format!("in the order {}", order_text())),
        "docs/exit-codes.md's order is not the enum's ({})",
        order_text()
    );
}

#[test]
fn the_manuals_environment_table_names_every_variable_and_no_other() {
    let rows = table_after(&manual("docs/commands.md"), "## Environment");
    let mut named: Vec<String> = rows
        .iter()
        .flat_map(|r| r[0].split(", ").map(|n| n.trim_matches('`').to_owned()))
        .collect();
    let mut want = variables();
    named.sort();
    want.sort();
    assert_eq!(named, want);
}

#[test]
fn the_default_credentials_read_documented_variables() {
    use dap_run::job::model::Auth;
    let mut found = Vec::new();
    for auth in [
        "",
        "[gateway]\nauth = \"inst_access\"\ncanvas_url = \"https://c.example\"\n",
    ] {
        let text = format!("{auth}[[step]]\nid = \"a\"\nget = \"/x\"\n");
        let job = dap_run::job::load_str(Path::new("job.toml"), &text, &Default::default())
            .expect("a valid job");
        let templates = match &job.gateway.auth {
            Auth::ClientCredentials {
                client_id,
                client_secret,
            } => vec![client_id.source.clone(), client_secret.source.clone()],
            Auth::InstAccess { canvas_token, .. } => vec![canvas_token.source.clone()],
        };
        for t in templates {
            let name = t
                .trim_start_matches("{{")
                .trim_end_matches("}}")
                .trim()
                .strip_prefix("env.")
                .unwrap_or_else(|| panic!("`{t}` reads no variable"))
                .to_owned();
            found.push(name);
        }
    }
    assert_eq!(
        found,
        ["DAP_CLIENT_ID", "DAP_CLIENT_SECRET", "CANVAS_API_TOKEN"]
    );
    let documented = variables();
    for name in found {
        assert!(documented.contains(&name), "{name} is not documented");
    }
}

#[test]
fn man_pages_for_every_subcommand_with_job_file_environment_and_exit_status() {
    let ws = Workspace::bare();
    let top = ws.dap().args(&["man"]).status(0).run();
    for section in [
        ".SH \"JOB FILE\"",
        ".SH ENVIRONMENT",
        ".SH \"EXIT STATUS\"",
        ".SH \"SEE ALSO\"",
    ] {
        assert!(top.stdout.contains(section), "{section}");
    }
    for code in dap_run::error::ExitCode::ALL.map(|c| c.code()) {
        assert!(
            top.stdout.contains(&format!(".TP\n\\fB{code}\\fR\n")),
            "exit {code}"
        );
    }
    for var in [
        "DAP_CLIENT_ID",
        "DAP_API_URL",
        "CANVAS_API_TOKEN",
        "NO_COLOR",
    ] {
        assert!(top.stdout.contains(var), "{var}");
    }
    let run = ws.dap().args(&["man", "run"]).status(0).run();
    assert!(run.stdout.contains(".TH dap-run-run 1"), "{}", run.stdout);
    assert!(run.stdout.contains("\\-\\-report"));
    ws.dap()
        .args(&["man", "nope"])
        .status(2)
        .stderr_has(&["no man page `nope`; the pages are: run, check, plan"])
        .run();

    // Every page the top page points at exists, and renders without a roff warning.
    let pages = ws.path().join("man");
    ws.dap()
        .args(&["man", "--dir", pages.to_str().unwrap()])
        .status(0)
        .run();
    let mut names: Vec<String> = files_under(&pages);
    names.sort();
    assert_eq!(
        names,
        [
            "dap-run-check.1",
            "dap-run-completions.1",
            "dap-run-man.1",
            "dap-run-plan.1",
            "dap-run-replica.1",
            "dap-run-run.1",
            "dap-run-sandbox.1",
            "dap-run.1"
        ]
    );
    for see in top
        .stdout
        .split("\\fB")
        .filter_map(|s| s.split_once("\\fR(1)"))
        .map(|(p, _)| p.replace("\\-", "-"))
    {
        assert!(
            pages.join(format!("{see}.1")).is_file(),
            "SEE ALSO {see}(1) has no page"
        );
    }
    if !tool_available("groff", "groff-base") {
        return;
    }
    for name in &names {
        let out = std::process::Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
            .arg(pages.join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
