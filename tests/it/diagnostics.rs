//! Exact text of `dap-run check` diagnostics for broken job files, and the rule that
//! an invalid job sends nothing.

use crate::common::*;

/// Runs `dap-run check job.toml` on `text` in a fresh folder: exit 2, nothing sent; returns
/// its stderr.
fn check(text: &str) -> String {
    let ws = Workspace::bare();
    ws.job("job.toml", text);
    ws.dap()
        .args(&["check", "job.toml"])
        .status(2)
        .stderr_has(&["nothing was sent"])
        .run()
        .stderr
}

macro_rules! diagnostic_snapshot {
    ($name:ident, $text:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(stringify!($name), check($text));
        }
    };
}

diagnostic_snapshot!(
    toml_syntax_error,
    "name = \"broken\"\n[[step]\nid = \"a\"\n"
);

diagnostic_snapshot!(
    unknown_keys_all_reported,
    r#"nmae = "typo"

[[step]]
id = "tables"
gett = "/dap/query/canvas/table"
outputs = { tables = "$.tables" }
"#
);

// An unknown key is one problem among the others: the rest of the file is checked as if it
// were absent.
diagnostic_snapshot!(
    an_unknown_key_is_one_problem_among_the_others,
    r#"[vars]
namespace = "canvas"
tables = ["users"]

[[step]]
id = "query"
for_each = "tables"
concurency = 4
post = "/dap/query/{{ namespce }}/table/{{ item }}/data"
outputs = { job_id = "$.id" }

[[step]]
id = "wait"
for_each = "query"
get = "/dap/job/{{ item.job_id }}"
poll = { until = "status == 'complete'", every = "soon" }
outputs = { status = "$.status" }
"#
);

// A mistyped key that would have defined names (`[vars]`, `outputs`, `for_each`) is the one
// problem reported: the names it holds are not reported as undefined where they are used.
diagnostic_snapshot!(
    a_mistyped_key_does_not_cascade,
    r#"[vras]
namespace = "canvas"

[[step]]
id = "tables"
get = "/dap/query/{{ namespace }}/table"
outptus = { tables = "$.tables" }
check = "tables | length > 0"

[[step]]
id = "schemas"
foreach = "tables"
gett = "/dap/query/canvas/table/{{ item }}/schema"
"#
);

diagnostic_snapshot!(
    undefined_variable_with_suggestion,
    r#"[vars]
namespace = "canvas"

[[step]]
id = "tables"
get = "/dap/query/{{ namespce }}/table"
"#
);

// One bad JSONPath, one error: the output still defines its name for the checks, saves and
// steps that use it.
diagnostic_snapshot!(
    bad_jsonpath,
    r#"[[step]]
id = "tables"
get = "/dap/query/canvas/table"
outputs = { tables = "$.tables[" }
check = "tables | length > 0"
save = { to = "tables.json", output = "tables" }

[[step]]
id = "schemas"
for_each = "tables"
get = "/dap/query/canvas/table/{{ item }}/schema"
"#
);

// Values of the wrong type, said in the job file's words, with their bounds.
diagnostic_snapshot!(
    values_of_the_wrong_type_in_the_job_files_words,
    r#"name = 1

[gateway]
timeout = 30
retry = 3
auth = 2

[defaults]
concurrency = 0

[[step]]
id = "tables"
get = "/dap/query/canvas/table"
outputs = { tables = "$.tables" }

[[step]]
id = "schemas"
for_each = "tables"
concurrency = "eight"
get = "/dap/query/canvas/table/{{ item }}/schema"
download = { urls = "$.u", to = "x", decompress = "yes", concurrency = 1.5 }
"#
);

diagnostic_snapshot!(
    duplicate_step_id,
    r#"[[step]]
id = "tables"
get = "/dap/query/canvas/table"

[[step]]
id = "tables"
get = "/dap/query/canvas_logs/table"
"#
);

diagnostic_snapshot!(
    escaping_save_path,
    r#"[[step]]
id = "tables"
get = "/dap/query/canvas/table"
save = "../../etc/tables.json"
"#
);

diagnostic_snapshot!(
    output_of_a_later_step,
    r#"[[step]]
id = "schema"
get = "/dap/query/canvas/table/{{ tables[0] }}/schema"

[[step]]
id = "list"
get = "/dap/query/canvas/table"
outputs = { tables = "$.tables" }
"#
);

diagnostic_snapshot!(
    several_problems_at_once,
    r#"[vars]
namespace = "canvas"

[[step]]
id = "list"
get = "/dap/query/{{ namespace }}/table"
outputs = { tables = "$.tables" }
check = "'accounts' in tabels"

[[step]]
id = "schema"
for_each = "tables"
as = "table"
get = "/dap/query/{{ namespace }}/table/{{ table }}/schema"
save = "/tmp/{{ table }}.json"
poll = { until = "true", every = "5 parsecs" }
"#
);

#[test]
fn invalid_job_sends_nothing() {
    let ws = Workspace::default_sandbox();
    let job = ws.job(
        "job.toml",
        "[[step]]\nid = \"a\"\nget = \"/dap/{{ nope }}\"\n",
    );
    ws.dap()
        .args(&[job.to_str().unwrap()])
        .status(2)
        .stderr_has(&["undefined variable `nope`"])
        .run();
    assert_eq!(
        ws.counters().requests,
        0,
        "an invalid job must send nothing"
    );
}

#[test]
fn missing_table_exits_1_naming_it() {
    let ws = Workspace::new(SandboxConfig {
        hidden_tables: vec!["submissions".into(), "users".into()],
        ..Default::default()
    });
    let job = ws.example("tables.toml");
    ws.dap()
        .args(&[job.to_str().unwrap(), "--output-dir", "out"])
        .status(1)
        .stderr_has(&["missing from `canvas`: users, submissions"])
        .run();
    // The list is saved before the check fails: CI can archive it.
    assert!(ws.read("out/tables.json").contains("accounts"));
    assert_eq!(ws.counters().logins, 1);
}

#[test]
fn schemas_example_saves_every_table() {
    let ws = Workspace::default_sandbox();
    let job = ws.example("schemas.toml");
    ws.dap()
        .args(&[job.to_str().unwrap(), "--output-dir", "out"])
        .status(0)
        .run();
    let files = files_under(&ws.path().join("out/schemas"));
    let tables: usize = 90;
    assert!(
        files.len() >= tables - 10,
        "{} schemas: {files:?}",
        files.len()
    );
    let accounts: serde_json::Value =
        serde_json::from_str(&ws.read("out/schemas/accounts.json")).unwrap();
    assert!(accounts.get("schema").is_some());
    assert_eq!(ws.counters().logins, 1, "one login for the whole run");
}

#[test]
fn path_values_stay_one_segment() {
    let ws = Workspace::default_sandbox();
    let job = ws.job(
        "job.toml",
        r#"[vars]
table = "a/../../ids/auth/login"
[[step]]
id = "schema"
get = "/dap/query/canvas/table/{{ table }}/schema"
"#,
    );
    // The gateway sees one (unknown) table name, never a path that climbs out.
    ws.dap()
        .args(&[job.to_str().unwrap(), "--output-dir", "out", "-v"])
        .status(7)
        .stderr_has(&["a%2F..%2F..%2Fids%2Fauth%2Flogin"])
        .run();
}

#[test]
fn var_overrides_parse_json() {
    let ws = Workspace::default_sandbox();
    let job = ws.example("tables.toml");
    ws.dap()
        .args(&[
            job.to_str().unwrap(),
            "--output-dir",
            "out",
            "--var",
            r#"required=["accounts","nope"]"#,
        ])
        .status(1)
        .stderr_has(&["missing from `canvas`: nope"])
        .run();
    ws.dap()
        .args(&[job.to_str().unwrap(), "--var", "namespce=x"])
        .status(2)
        .stderr_has(&["did you mean `namespace`?"])
        .run();
}
