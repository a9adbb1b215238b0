//! The reference pages list what the code defines: every key of the job file (the model the
//! man page's JOB FILE is made from), every flag of the commands and of the sandbox (clap),
//! the column types the loader creates, and the tests the guarantees page names. A key, flag
//! or type added to the code without its line in the manual fails here.

use dap_run::load::layout::{Layout, mysql_type, pg_type_name, sqlite_type};

use super::markdown::{code_spans, read, root, table_after};
use crate::common::rust_files;

/// The long flags of a subcommand, `--help` and `--version` left out.
fn long_flags(sub: &str) -> Vec<String> {
    let cmd = dap_run::cli::command();
    let sub = cmd
        .get_subcommands()
        .find(|s| s.get_name() == sub)
        .unwrap_or_else(|| panic!("no subcommand {sub}"));
    sub.get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| a.get_long())
        .filter(|l| !["help", "version"].contains(l))
        .map(|l| format!("--{l}"))
        .collect()
}

/// The flags named in the first cells of the tables of a page section (code spans that start
/// with `--`, up to a space or `=`).
fn flags_in_first_cells(page: &str, heading: &str) -> Vec<String> {
    table_after(&read(page), heading)
        .iter()
        .flat_map(|row| code_spans(&row[0]))
        .filter(|c| c.starts_with("--"))
        .map(|c| c.split([' ', '=']).next().unwrap().to_owned())
        .collect()
}

#[test]
fn the_job_file_page_describes_every_key_of_the_model() {
    let page = read("docs/job-file.md");
    let mut missing = Vec::new();
    for table in dap_run::man::job_file_tables() {
        let heading = if table.heading == "top level" {
            "Top level".to_owned()
        } else {
            format!("`{}`", table.heading.trim_matches('`'))
        };
        let rows = table_after(&page, &heading);
        let named: Vec<String> = rows.iter().flat_map(|r| code_spans(&r[0])).collect();
        for (key, _) in &table.keys {
            if !named.contains(key) {
                missing.push(format!("{heading}: `{key}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "keys of the job file that docs/job-file.md does not describe (a row whose first cell names them, in the table under the section's heading):\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_commands_page_lists_every_flag() {
    let listed = flags_in_first_cells("docs/commands.md", "Flags");
    for sub in ["run", "check", "plan", "replica"] {
        for flag in long_flags(sub) {
            assert!(
                listed.contains(&flag),
                "docs/commands.md's Flags table lacks `{flag}` of `dap-run {sub}`"
            );
        }
    }
}

#[test]
fn the_sandbox_page_lists_every_knob() {
    let listed = flags_in_first_cells("docs/sandbox.md", "Knobs");
    let mut want = long_flags("sandbox");
    want.retain(|f| !["--quiet", "--verbose", "--log-format"].contains(&f.as_str()));
    let missing: Vec<&String> = want.iter().filter(|f| !listed.contains(f)).collect();
    assert!(
        missing.is_empty(),
        "docs/sandbox.md's Knobs table lacks {missing:?}"
    );
    let unknown: Vec<&String> = listed.iter().filter(|f| !want.contains(f)).collect();
    assert!(
        unknown.is_empty(),
        "docs/sandbox.md lists flags the sandbox does not have: {unknown:?}"
    );
}

/// Each row of the type table: the column's JSON Schema (first cell), and what PostgreSQL,
/// MySQL and SQLite get, as the loader names them for a column `<column>` of a table
/// `<table>` in the namespace `<namespace>`.
#[test]
fn the_type_table_is_what_the_loader_creates() {
    let rows = table_after(&read("docs/replica.md"), "Tables and column types");
    assert!(rows.len() >= 20, "{rows:?}");
    for row in rows {
        let spans: Vec<Vec<String>> = row.iter().take(4).map(|c| code_spans(c)).collect();
        let column: serde_json::Value = serde_json::from_str(&spans[0][0])
            .unwrap_or_else(|e| panic!("`{}` is not JSON: {e}", spans[0][0]));
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "key": {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"}}, "required": ["id"]},
                "value": {"type": "object", "properties": {"<column>": column}},
            }
        });
        let layout = Layout::from_schema("<namespace>", "<table>", &schema)
            .unwrap_or_else(|e| panic!("{}: {e}", spans[0][0]));
        let ty = &layout.column("<column>").expect("the column").ty;
        let got = [
            pg_type_name("<namespace>", ty),
            mysql_type(ty),
            sqlite_type(ty),
        ];
        let want: Vec<&str> = spans[1..].iter().map(|s| s[0].as_str()).collect();
        assert_eq!(got.to_vec(), want, "the row of `{}`", spans[0][0]);
    }
}

/// The names a `proved by` cell gives: test functions (`module::name` or `name`) and files.
fn named_tests(cell: &str) -> Vec<String> {
    code_spans(cell)
        .into_iter()
        .filter(|c| !c.contains([' ', '*', '…']) && (c.contains('_') || c.ends_with(".rs")))
        // An environment variable (`DAP_RUN_TEST_PANIC`) is no test.
        .filter(|c| c.chars().any(|ch| ch.is_ascii_lowercase()))
        .collect()
}

#[test]
fn every_test_the_guarantees_page_names_exists() {
    let mut sources = String::new();
    for dir in ["tests", "src"] {
        for file in rust_files(&root().join(dir)) {
            sources.push_str(&std::fs::read_to_string(file).unwrap());
        }
    }
    let rows = table_after(&read("docs/guarantees.md"), "Guarantees");
    assert!(rows.len() > 10);
    let mut missing = Vec::new();
    for row in &rows {
        for name in named_tests(&row[1]) {
            let found = if name.ends_with(".rs") {
                root().join(&name).exists()
            } else {
                let f = name.rsplit("::").next().unwrap();
                sources.contains(&format!("fn {f}("))
            };
            if !found {
                missing.push(name);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/guarantees.md names tests that do not exist: {missing:?}"
    );
}
